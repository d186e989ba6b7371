#!/usr/bin/env bash
# The reference leaderboard of this repository, in two steps (run from the repository root):
#
#   results/reference/make.sh sweep  [STORE]   # train: resumable; hours on 2 CPU cores (see README.md here)
#   results/reference/make.sh render [STORE]   # tables, figures, page and the exported long table
#
# STORE defaults to runs/reference. `render` reads only the store, so it can run while the sweep fills
# it; every table and figure can also be rebuilt from the committed long table alone:
#   mmbench leaderboard --results results/reference/long_table.csv.gz --layout patterns
set -euo pipefail
step=${1:?usage: results/reference/make.sh sweep|render [STORE]}
store=${2:-runs/reference}
out=results/reference
datasets=mosi-bclstm,mosi-synth

case "$step" in
  sweep)
    mmbench data fetch mosi-bclstm --from ../shared/data
    mmbench plan --dataset mosi-synth      # OMG-Agent's plan cache (|Omega| = 5), shared by every run
    mmbench plan --dataset mosi-bclstm
    mmbench run --dataset "$datasets" --method all --protocol fixed,random --rates 0.0,0.3,0.5,0.7 \
      --seeds 1111,1112,1113 --results "$store" --no-leaderboard
    ;;
  render)
    mkdir -p "$out"
    mmbench export --results "$store" --format csv --out "$out/long_table.csv.gz"
    mmbench leaderboard --results "$store" --layout patterns --significance --format md > "$out/patterns.md"
    mmbench leaderboard --results "$store" --layout rates --significance --format md > "$out/rates.md"
    mmbench leaderboard --results "$store" --protocol fixed --metric acc2_non0,mae,mei,train_s,infer_ms,params \
      --format md > "$out/cost_and_equity.md"
    mmbench leaderboard --results "$store" --compare-published --format md > "$out/published.md"
    rm -rf "$out/figures" "$out/page"
    mmbench plot --results "$store" --out "$out/figures" > /dev/null
    mmbench leaderboard --results "$store" --format html --out "$out/page" > /dev/null
    echo "wrote $out: long_table.csv.gz, patterns.md, rates.md, cost_and_equity.md, published.md, figures/, page/index.html"
    ;;
  *) echo "unknown step $step: choose sweep or render" >&2; exit 2 ;;
esac
