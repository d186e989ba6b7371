"""The leaderboard as one self-contained static HTML page (``mmbench leaderboard --format html --out DIR``).

One file, ``DIR/index.html``, that opens with no network: the style and script are inline
(:mod:`mmbench.reports.page_assets`), the figures are embedded as ``data:image/png`` URIs, and nothing
points at a URL. It shows one table per (dataset, protocol, training setting, selection), methods x
(condition, metric), cells as in the text tables (mean ± std over seeds); select boxes filter by
dataset, protocol, training setting and metric; a click on a header sorts by that column; every
header links to the definition of its metric further down; a footer says what produced the numbers.
Every text that reaches the page goes through :func:`html.escape`.
"""
from __future__ import annotations

import base64
import datetime
import html
import math
import re
from pathlib import Path

import pandas as pd

from mmbench import __version__
from mmbench.constants import TABLE_PATTERN_ORDER
from mmbench.reports import page_assets
from mmbench.reports.leaderboard import HEADERS, default_metrics, format_cell, table_title

#: Column order of the metrics inside one condition (others follow alphabetically).
METRIC_ORDER = ("acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "acc7", "acc5", "acc3", "acc2", "f1", "mae", "corr")
#: Cost metrics (mmbench.metrics.cost.COST_METRICS; not imported, that module pulls in torch): lower is better.
COST_METRICS = ("train_s", "infer_ms", "params", "peak_mem_mb")
#: The filters, in page order: select name -> aggregate column.
FILTERS = {"dataset": "dataset", "protocol": "protocol", "setting": "train_setting"}


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def definition_key(metric: str) -> str:
    """The definitions entry of a metric: reconstruction keys drop their modality (rec_mse_L_zero -> rec_mse_zero)."""
    return re.sub(r"^(rec_(?:mse|cos))_[LVA]", r"\1", metric)


def is_lower_better(metric: str) -> bool:
    return metric == "mae" or metric.startswith("rec_mse") or metric in COST_METRICS


def _condition_order(protocol: str, conditions) -> list[str]:
    present = set(conditions)
    if protocol == "fixed":
        known = [c for c in TABLE_PATTERN_ORDER if c in present]
        return known + sorted(present - set(known))

    def rate_first(condition: str):
        try:
            return (0, float(condition), condition)
        except ValueError:  # imbalanced conditions ("L0.3-V0.5-A0.7") sort as text after the rates
            return (1, 0.0, condition)
    return sorted(present, key=rate_first)


def _metric_order(metrics) -> list[str]:
    present = set(metrics)
    return [m for m in METRIC_ORDER if m in present] + sorted(present - set(METRIC_ORDER))


def _header_cell(condition: str, metric: str, paper: bool) -> str:
    name = HEADERS.get(metric, metric)
    better = "lower" if is_lower_better(metric) else "higher"
    return (f'<th scope="col" data-metric="{esc(metric)}" data-paper="{int(paper)}" data-better="{better}">'
            f'<button type="button" class="sort" title="sort by this column">{esc(condition)} {esc(name)}</button>'
            f'<a class="def" href="#def-{esc(definition_key(metric))}" title="definition of {esc(name)}">?</a></th>')


def _value_cell(metric: str, paper: bool, row) -> str:
    attributes = f'data-metric="{esc(metric)}" data-paper="{int(paper)}"'
    if row is None or row["mean"] is None or (isinstance(row["mean"], float) and math.isnan(row["mean"])):
        return f'<td {attributes} class="missing">—</td>'
    seeds = int(row["n_seeds"])
    return (f'<td {attributes} data-sort="{float(row["mean"])!r}" title="{seeds} seed{"s" * (seeds != 1)}">'
            f'{esc(format_cell(metric, float(row["mean"]), row["std"]))}</td>')


def _board(number: int, group: pd.DataFrame, dataset: str, protocol: str, setting: str, selection: str) -> str:
    """One table: methods x (condition, metric), in a section the filters show or hide."""
    labels = group["label"] if "label" in group else group["method"]
    group = group.assign(label=labels)
    paper_metrics = set(default_metrics(dataset))
    columns = [(c, m) for c in _condition_order(protocol, group["condition"]) for m in _metric_order(group["metric"])
               if ((group["condition"] == c) & (group["metric"] == m)).any()]
    by_cell = {(r["label"], r["condition"], r["metric"]): r for r in group.to_dict("records")}
    head = ['<th scope="col" data-kind="text"><button type="button" class="sort" title="sort by this column">'
            'method</button><a class="def" href="#def-method" title="what a row is">?</a></th>']
    head += [_header_cell(c, m, m in paper_metrics) for c, m in columns]
    body = []
    for label in sorted(group["label"].unique()):
        cells = [_value_cell(m, m in paper_metrics, by_cell.get((label, c, m))) for c, m in columns]
        body.append(f'<tr><th scope="row" data-sort="{esc(label)}">{esc(label)}</th>{"".join(cells)}</tr>')
    synthetic = " synthetic" if bool(group["synthetic"].any()) else ""
    return (f'<section class="board{synthetic}" id="table-{number}" data-dataset="{esc(dataset)}" '
            f'data-protocol="{esc(protocol)}" data-setting="{esc(setting)}" data-selection="{esc(selection)}">\n'
            f'<h2>{esc(table_title(group, dataset, protocol, setting, selection))}</h2>\n<div class="scroll"><table>'
            f'<thead><tr>{"".join(head)}</tr></thead>\n<tbody>\n' + "\n".join(body) + "\n</tbody></table></div>\n"
            "</section>")


def _select(name: str, label: str, options: list[tuple[str, str]], chosen: str) -> str:
    items = "".join(f'<option value="{esc(v)}"{" selected" * (v == chosen)}>{esc(text)}</option>'
                    for v, text in options)
    return f'<label>{esc(label)}<select data-filter="{esc(name)}" name="{esc(name)}">{items}</select></label>'


def _filters(rows: pd.DataFrame) -> str:
    selects = [_select(name, name if name != "setting" else "training setting",
                       [("", "all")] + [(v, v) for v in sorted(rows[column].astype(str).unique())], "")
               for name, column in FILTERS.items()]
    has_paper = any(m in default_metrics(d) for d, m in zip(rows["dataset"], rows["metric"]))
    metrics = [("paper", "the paper's three (ACC2, F1, ACC7)"), ("all", "all")]
    metrics += [(m, HEADERS.get(m, m)) for m in _metric_order(rows["metric"])]
    selects.append(_select("metric", "metric", metrics, "paper" if has_paper else "all"))
    return f'<form id="filters">{"".join(selects)}<span id="shown-count" class="note"></span></form>'


def _figures(paths: list[Path], datasets: set[str]) -> str:
    """PNG figures inlined as data URIs (a PDF twin of a figure is for papers, not the page).

    A figure whose file name holds one dataset's name (``patterns_mosi-synth_fixed_...``) follows the
    dataset filter; any other figure is always shown.
    """
    items = []
    for path in (Path(p) for p in paths):
        if path.suffix.lower() != ".png":
            continue
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        caption = path.stem.replace("_", " ")
        named = datasets & set(path.stem.split("_"))
        dataset = f' data-dataset="{esc(named.pop())}"' if len(named) == 1 else ""
        items.append(f'<figure{dataset}><img src="data:image/png;base64,{data}" alt="{esc(caption)}">'
                     f'<figcaption>{esc(caption)}</figcaption></figure>')
    return f'<section id="figures"><h2>Figures</h2>{"".join(items)}</section>' if items else ""


def _definitions(metrics) -> str:
    entries = dict(page_assets.DEFINITIONS)
    for metric in metrics:  # a metric this page has no sentence for still gets its anchor
        entries.setdefault(definition_key(metric), (metric, "See docs/metrics.md."))
    items = "".join(f'<dt id="def-{esc(key)}">{esc(title)}</dt><dd>{esc(text)}</dd>'
                    for key, (title, text) in entries.items())
    return f'<section id="definitions"><h2>Definitions</h2><dl class="definitions">{items}</dl></section>'


def _footer(provenance: dict) -> str:
    """Every provenance entry, one line each; a dict value (data sha256 per dataset) becomes a sub-list."""
    lines = []
    for key, value in provenance.items():
        if isinstance(value, dict):
            text = "; ".join(f"{esc(k)}: <code>{esc(_joined(v))}</code>" for k, v in value.items()) or "none"
        else:
            text = esc(_joined(value) or "none")
        lines.append(f"<li><strong>{esc(key.replace('_', ' '))}</strong>: {text}</li>")
    return f'<footer id="provenance"><h2>Provenance</h2><ul>{"".join(lines)}</ul></footer>'


def _joined(value) -> str:
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple, set)) else str(value)


def write_page(rows: pd.DataFrame, out_dir: Path, figures: list[Path], provenance: dict) -> Path:
    """Write ``out_dir/index.html`` from aggregate rows (:func:`mmbench.reports.aggregate.aggregate`).

    Args:
        rows: one row per (dataset, method, protocol, condition, setting, selection, metric, config).
        out_dir: created if absent.
        figures: image files to embed; PNGs are inlined, other suffixes (PDF twins) are ignored.
        provenance: footer lines, e.g. :func:`store_provenance`; a dict value becomes one line of pairs.

    Returns:
        The path of the page.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    groups = rows.groupby(["dataset", "protocol", "train_setting", "selection"], sort=True) if len(rows) else []
    boards = [_board(i, group, *keys) for i, (keys, group) in enumerate(groups, start=1)]
    content = "\n".join(boards) or '<p class="note">No finished runs in this store for the chosen filters.</p>'
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>mmbench leaderboard</title><style>{page_assets.STYLE}</style></head>
<body>
<header><h1>mmbench leaderboard</h1>
<p class="note">Mean ± std over seeds (accuracies and F1 in percent, MAE and Corr plain). Click a column header
to sort (best first, then reversed; "—" = not evaluated, always last); "?" opens a column's definition.</p>
{_filters(rows) if len(rows) else ""}</header>
<main>
{content}
{_figures(figures, set(rows["dataset"]) if len(rows) else set())}
{_definitions(rows["metric"].unique() if len(rows) else [])}
</main>
{_footer(provenance)}
<script>{page_assets.SCRIPT}</script>
</body></html>
"""
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def store_provenance(runs: pd.DataFrame, rows: pd.DataFrame) -> dict:
    """The footer's facts from the counted runs behind ``rows`` (:func:`aggregate.counted_runs` output)."""
    used = runs[runs["counted"] & runs["config_id"].isin(set(rows["config_id"]))] if len(rows) else runs.iloc[:0]
    synthetic = sorted(set(rows.loc[rows["synthetic"].astype(bool), "dataset"])) if len(rows) else []
    return {
        "page built": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC} by mmbench {__version__}",
        "results produced by mmbench": sorted(set(used["package_version"].dropna().astype(str))) or ["unknown"],
        "git commit": sorted(set(used["git_commit"].dropna().astype(str))) or ["not recorded"],
        "data sha256": {d: sorted(set(g["data_sha256"].astype(str))) for d, g in used.groupby("dataset")},
        "synthetic rows": [f"every row of {d} (synthetic or semi-synthetic data; its titles say so)"
                           for d in synthetic] or ["none"],
    }
