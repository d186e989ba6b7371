"""What the leaderboard page carries besides the numbers: its style, its script and its definitions.

Kept apart from :mod:`mmbench.reports.page` (which assembles the HTML) so each stays short. The page
must open with no network, so the style and script are inlined, written by hand, and use nothing
but the browser (no library, no font, no URL). The definitions restate ``docs/metrics.md`` in one
sentence each; the page links every column header to the entry of its metric.
"""
from __future__ import annotations

STYLE = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --head: #f6f8fa; --warn: #9a6700; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, sans-serif; color: var(--ink); margin: 0 auto; padding: 1.5rem;
       max-width: 1400px; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 .5rem; }
.note, footer { color: var(--muted); font-size: .9rem; }
#filters { display: flex; flex-wrap: wrap; gap: .5rem 1.2rem; align-items: center; margin: .8rem 0;
           padding: .6rem .8rem; background: var(--head); border: 1px solid var(--line); border-radius: 6px; }
#filters select { font: inherit; margin-left: .3rem; }
.scroll { overflow-x: auto; }
/* Separate borders drawn on two sides only: collapsed borders would let scrolled text show past the sticky column. */
table { border-collapse: separate; border-spacing: 0; font-variant-numeric: tabular-nums;
        border-top: 1px solid var(--line); border-left: 1px solid var(--line); }
th, td { border: solid var(--line); border-width: 0 1px 1px 0; padding: .25rem .5rem; text-align: right;
         white-space: nowrap; }
thead th { background: var(--head); vertical-align: bottom; }
tbody th { text-align: left; font-weight: 600; background: #fff; }
/* The method column stays in view while a wide table scrolls sideways. */
tbody th, thead th:first-child { position: sticky; left: 0; z-index: 1; }
button.sort { font: inherit; font-weight: 600; border: 0; background: none; cursor: pointer; padding: 0;
              color: inherit; text-align: inherit; }
th[aria-sort="ascending"] button.sort::after { content: " \\25B2"; }
th[aria-sort="descending"] button.sort::after { content: " \\25BC"; }
a.def { font-size: .8rem; text-decoration: none; margin-left: .2rem; }
td.missing { color: var(--muted); }
section.synthetic h2 { color: var(--warn); }
[hidden] { display: none !important; }
figure { display: inline-block; margin: 0 1rem 1rem 0; vertical-align: top; }
figure img { max-width: 640px; width: 100%; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: .9rem; }
dl.definitions dt { font-weight: 600; margin-top: .5rem; }
dl.definitions dt:target { background: #fff8c5; }
dl.definitions dd { margin: 0 0 0 1.2rem; }
footer { border-top: 1px solid var(--line); margin-top: 2rem; padding-top: .8rem; }
footer code { font-size: .8rem; word-break: break-all; }
"""

#: The page's behaviour: the four filters and the click-to-sort headers (no dependency, no network).
SCRIPT = """
"use strict";
(function () {
  const filters = Array.from(document.querySelectorAll("select[data-filter]"));

  function wanted(name) {
    const select = filters.find((s) => s.dataset.filter === name);
    return select ? select.value : "";
  }

  function keepsColumn(cell, metric) {
    if (metric === "all") return true;
    if (metric === "paper") return cell.dataset.paper === "1";
    return cell.dataset.metric === metric;
  }

  function applyFilters() {
    const metric = wanted("metric");
    let shownRows = 0;
    for (const section of document.querySelectorAll("section.board")) {
      for (const cell of section.querySelectorAll("[data-metric]")) cell.hidden = !keepsColumn(cell, metric);
      const matches = ["dataset", "protocol", "setting"].every(
        (key) => wanted(key) === "" || section.dataset[key] === wanted(key));
      // A table with no column left for the chosen metric is hidden with the others.
      section.hidden = !matches || !section.querySelector("thead th[data-metric]:not([hidden])");
      if (!section.hidden) shownRows += section.querySelectorAll("tbody tr").length;
    }
    for (const figure of document.querySelectorAll("figure[data-dataset]")) {
      figure.hidden = wanted("dataset") !== "" && figure.dataset.dataset !== wanted("dataset");
    }
    document.getElementById("shown-count").textContent = shownRows + " rows shown";
  }

  // Numeric columns sort on the mean (data-sort); a cell without one ("—") goes last either way.
  function compareRows(a, b, index, numeric, ascending) {
    const keyA = a.cells[index].dataset.sort, keyB = b.cells[index].dataset.sort;
    const missingA = keyA === undefined || keyA === "", missingB = keyB === undefined || keyB === "";
    if (missingA || missingB) return missingA - missingB;
    const order = numeric ? parseFloat(keyA) - parseFloat(keyB) : keyA.localeCompare(keyB);
    return ascending ? order : -order;
  }

  function sortBy(header) {
    const table = header.closest("table");
    const index = Array.from(header.parentNode.children).indexOf(header);
    const numeric = header.dataset.kind !== "text";
    const current = header.getAttribute("aria-sort");
    // The first click puts the best value first; the next one reverses.
    const bestFirst = numeric && header.dataset.better !== "lower" ? "descending" : "ascending";
    const direction = current === null ? bestFirst : (current === "ascending" ? "descending" : "ascending");
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort((a, b) => compareRows(a, b, index, numeric, direction === "ascending"));
    for (const row of rows) body.appendChild(row);
    for (const other of header.parentNode.children) other.removeAttribute("aria-sort");
    header.setAttribute("aria-sort", direction);
  }

  for (const button of document.querySelectorAll("thead button.sort")) {
    button.addEventListener("click", () => sortBy(button.closest("th")));
  }
  for (const select of filters) select.addEventListener("change", applyFilters);
  applyFilters();
})();
"""

#: Anchor key -> (heading, one-sentence definition). Metric keys per docs/metrics.md; the
#: reconstruction keys drop their modality letter (``rec_mse_L_zero`` -> ``rec_mse_zero``).
DEFINITIONS: dict[str, tuple[str, str]] = {
    "method": ("method", "The method's registry name, followed in brackets by what sets its configuration apart "
               "(another profile, budget, data file or --set) when one table holds several. A cell is the mean "
               "± sample std (ddof 1) over the seeds of one configuration; the std is left out for one seed."),
    "condition": ("condition", "Fixed protocol: the pattern id names the modalities available at test time "
                  "(L language, V vision, A audio; LVA = complete). Random and frame protocols: the missing "
                  "rate, the share of modality entries (time steps for frame) removed by the saved masks."),
    "acc2_has0": ("ACC2 (Has0)", "Binary accuracy, negative vs non-negative: mean(1[p >= 0] == 1[y >= 0]) over all "
                  "test samples; a label of exactly 0 counts as non-negative. Percent."),
    "acc2_non0": ("ACC2 (Non0)", "Binary accuracy, negative vs positive: mean(1[p > 0] == 1[y > 0]) over the test "
                  "samples whose label is not 0 (MMSA's non_zeros); what papers writing only 'Acc-2' mean. Percent."),
    "f1_has0": ("F1 (Has0)", "Weighted F1 (each class weighted by its support among the labels) of the Has0 "
                "classes 1[y >= 0] vs 1[p >= 0], all test samples. Percent."),
    "f1_non0": ("F1 (Non0)", "Weighted F1 of the Non0 classes 1[y > 0] vs 1[p > 0], samples with a non-zero label "
                "only. Percent."),
    "acc7": ("ACC7", "Seven-class accuracy: round(clip(p, -3, 3)) == round(clip(y, -3, 3)), round half to even, "
             "all samples. Percent."),
    "acc5": ("ACC5", "Five-class accuracy. MOSI/MOSEI: round(clip(p, -2, 2)) == round(clip(y, -2, 2)); CH-SIMS: "
             "MMSA's five bins with edges -0.7, -0.1, 0.1, 0.7. Percent."),
    "acc3": ("ACC3", "CH-SIMS three-class accuracy over the bins [-1, -0.1], (-0.1, 0.1], (0.1, 1]. Percent."),
    "acc2": ("ACC2", "CH-SIMS binary accuracy of clip(v, -1, 1) > 0 (MMSA's Mult_acc_2). Percent."),
    "f1": ("F1", "CH-SIMS weighted F1 of the ACC2 classes (labels first). Percent."),
    "mae": ("MAE", "Mean absolute error mean(|p - y|) on the label scale (CH-SIMS: after clipping to [-1, 1]); "
            "lower is better. Plain value, not x100."),
    "corr": ("Corr", "Pearson correlation of predictions and labels, in float64; 0.0 for a constant prediction. "
             "Plain value."),
    "rec_mse": ("rec_mse_<m>", "Reconstruction MSE of modality m on the test samples where m is missing: per "
                "sample mean((recovered - true)^2), averaged over samples; lower is better."),
    "rec_cos": ("rec_cos_<m>", "Cosine similarity of the recovered and the true features of modality m, per "
                "sample, averaged over the samples where m is missing."),
    "rec_mse_zero": ("rec_mse_<m>_zero", "The reconstruction MSE of zero imputation, mean(true^2): the reference "
                     "a method's recovery should beat."),
    "rec_mse_mean": ("rec_mse_<m>_mean", "The reconstruction MSE of imputing the training-mean feature."),
    "rec_cos_mean": ("rec_cos_<m>_mean", "The cosine similarity of the training-mean feature to the true one."),
    "train_s": ("train_s", "Wall seconds of the whole fit, pretraining stages and validation included (0 for a "
                "method with nothing to train); lower is better."),
    "infer_ms": ("infer_ms", "Wall milliseconds per test sample of one condition's prediction pass."),
    "params": ("params", "Parameters of the method's module, frozen ones included."),
    "peak_mem_mb": ("peak_mem_mb", "Peak memory during the run in MiB: resident set size on CPU, "
                    "torch.cuda.max_memory_allocated on CUDA."),
    "mei": ("mei", "Modality equity index of a fixed-protocol model, in [0, 1]: the balance of each modality's "
            "contribution (mean ACC2 gain of adding it to a pattern that lacks it); 1 = L, V and A add equally, "
            "0 = one modality carries everything."),
    "mli": ("mli", "Modality learning index, in [0, 1]: the mean over training epochs of the balance of the "
            "per-modality gradient norms of the parameters a method declares per modality; 1 = balanced."),
}
