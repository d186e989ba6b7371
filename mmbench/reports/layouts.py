"""The paper layouts of ``mmbench leaderboard --layout``: built from the store, never by retraining.

- ``patterns`` (the OMG-Agent paper's Table 1): rows = methods, columns = the 7 fixed patterns in
  the paper's order (A, V, L, VA, LA, LV, LVA) x ACC2 / F1 / ACC7 (Non0 by default), plus ``Avg``:
  the mean over the 6 incomplete patterns, taken per seed and then over seeds, so it has a std.
- ``rates`` (its Appendix Table 2): rows = methods, columns = the missing rates of ``random`` and
  ``frame`` (one table each), followed by a robustness summary table (:mod:`mmbench.reports.robustness`).

Every table holds the ``mean`` floor and the ``fusion`` reference: a reference the store lacks is
still a row, of "—", and the caption says "not run". Cells are mean ± std over seeds; best and second
best are marked only where significant (:mod:`mmbench.reports.statistics`; the caption names the
test). Formats: md, csv, json, latex and html (html fragments, for the page to embed).
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mmbench.constants import MODALITIES, TABLE_PATTERN_ORDER
from mmbench.data.registry import DATASETS
from mmbench.reports import robustness, statistics
from mmbench.reports.aggregate import aggregate, counted_runs
from mmbench.reports.leaderboard import HEADERS, _markdown, default_metrics, format_cell, table_title

LAYOUTS: tuple[str, ...] = ("patterns", "rates")
PROTOCOLS_OF: dict[str, tuple[str, ...]] = {"patterns": ("fixed",), "rates": ("random", "frame")}
#: The floor and the lower bound: rows of every table, run or not.
REFERENCE_METHODS: tuple[str, ...] = ("mean", "fusion")
AVERAGE = "Avg"
INCOMPLETE_PATTERNS: tuple[str, ...] = tuple(p for p in TABLE_PATTERN_ORDER if len(p) < len(MODALITIES))
MISSING = "—"
ROBUSTNESS_NOTE = ("AUC: trapezoid area under the metric-vs-rate curve / rate span; Drop: lowest-rate minus "
                   "highest-rate value (positive = worse); both per seed, mean ± std. RelRob: MultiBench's relative "
                   "robustness (area of the mean curve, min-max normalised over these rows). EffRob: MultiBench's "
                   "effective robustness against {reference} (sum over rates, per seed). See docs/metrics.md.")
#: How each format shows a mark (md: ``**bold**`` / ``_underscores_``; csv: a word, as csv has no markup).
MARKUP: dict[str, dict[str, str]] = {
    "md": {"best": "**{}**", "second": "_{}_"},
    "latex": {"best": r"\textbf{{{}}}", "second": r"\underline{{{}}}"},
    "html": {"best": "<b>{}</b>", "second": "<u>{}</u>"},
    "csv": {"best": "{} [best]", "second": "{} [2nd]"},
}


@dataclass
class LayoutTable:
    """One printed table: its title, caption, the cell texts, each cell's mark, and its JSON records."""

    title: str
    notes: list[str]
    table: pd.DataFrame  # index = row labels, columns = headers; cell texts
    marks: pd.DataFrame | None = None  # same shape: "best", "second" or ""
    records: list[dict] = field(default_factory=list)

    @property
    def caption(self) -> str:
        return " ".join(self.notes)


def seed_values(store, *, dataset: str | None = None, protocols: tuple[str, ...] = (),
                metrics: list[str] | None = None, include_oracle: bool = False) -> pd.DataFrame:
    """One row per counted run, tested condition and metric (test split): the values a cell averages."""
    runs = counted_runs(store.runs())
    runs = runs[runs["counted"] & runs["protocol"].isin(protocols)]
    if not include_oracle:
        runs = runs[runs["selection"] != "test-oracle"]
    if dataset:
        runs = runs[runs["dataset"] == dataset]
    table = store.long_table().drop(columns=["config_id"], errors="ignore")
    table = table[table["split"] == "test"]
    if metrics:
        table = table[table["metric"].isin(metrics)]
    return table.merge(runs[["run_id", "config_id", "artifacts_dir"]], on="run_id")


def layout_tables(store, layout: str, *, dataset: str | None = None, protocol: str | None = None,
                  metrics: list[str] | None = None, include_oracle: bool = False,
                  significance: bool = False) -> list[LayoutTable]:
    """The tables of ``layout`` (``patterns`` or ``rates``) for every dataset, setting and selection in the store."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose {' or '.join(LAYOUTS)}")
    protocols = PROTOCOLS_OF[layout]
    if protocol:
        if protocol not in protocols:
            raise ValueError(f"--layout {layout} shows the {'/'.join(protocols)} protocol, not {protocol!r}")
        protocols = (protocol,)
    rows = aggregate(store, dataset=dataset, metrics=metrics, include_oracle=include_oracle)
    rows = rows[rows["protocol"].isin(protocols)]
    seeds = seed_values(store, dataset=dataset, protocols=protocols, metrics=metrics, include_oracle=include_oracle)
    seeds = seeds.merge(rows[["config_id", "label"]].drop_duplicates(), on="config_id")
    predictions = statistics.Predictions(store.results_dir)
    table_keys = ["dataset", "protocol", "train_setting", "selection"]
    seeds_of = {key: group for key, group in seeds.groupby(table_keys)}
    tables = []
    for (name, proto, setting, selection), group in rows.groupby(table_keys):
        wanted = metrics or default_metrics(name)
        in_table = seeds_of.get((name, proto, setting, selection), seeds.iloc[:0])
        in_table = in_table[in_table["metric"].isin(wanted)]
        if in_table.empty:
            continue
        title = f"{layout} layout — " + table_title(group[group["metric"].isin(wanted)], name, proto, setting,
                                                      selection)
        builder = _TableBuilder(layout, in_table, group, wanted, predictions, significance)
        tables.append(builder.table(title))
        if layout == "rates":
            tables.append(builder.robustness_table(title))
    return tables


class _TableBuilder:
    """Cells, marks and reference rows of one table (one dataset, protocol, setting and selection)."""

    def __init__(self, layout: str, seeds: pd.DataFrame, rows: pd.DataFrame, metrics: list[str],
                 predictions: statistics.Predictions, significance: bool):
        self.layout, self.seeds, self.rows, self.metrics = layout, seeds, rows, metrics
        self.predictions, self.significance = predictions, significance
        dataset = rows["dataset"].iloc[0]
        self.family = DATASETS[dataset].family if dataset in DATASETS else "mosi"
        self.methods = dict(zip(seeds["label"], seeds["method"]))
        self.missing_references = [m for m in REFERENCE_METHODS if m not in set(self.methods.values())]
        references = [[label for label in sorted(self.methods) if self.methods[label] == m] or [m]
                      for m in REFERENCE_METHODS]  # a reference not run is a row of its own name
        self.labels = ([label for labels in references for label in labels]
                       + sorted(label for label, m in self.methods.items() if m not in REFERENCE_METHODS))

    def conditions(self) -> list[tuple[str, tuple[str, ...]]]:
        """(column name, the tested conditions it averages) in print order."""
        if self.layout == "patterns":
            return [(p, (p,)) for p in TABLE_PATTERN_ORDER] + [(AVERAGE, INCOMPLETE_PATTERNS)]
        return [(rate, (rate,)) for rate in sorted(set(self.seeds["condition"]), key=float)]

    def cell(self, label: str, conditions: tuple[str, ...], metric: str) -> tuple[dict, dict]:
        """A cell's value per seed (the mean over ``conditions``, which a seed must all hold) and its runs."""
        rows = self.seeds[(self.seeds["label"] == label) & (self.seeds["metric"] == metric)
                          & self.seeds["condition"].isin(conditions)]
        values, runs = {}, {}
        for seed, per_seed in rows.groupby("seed"):
            if set(per_seed["condition"]) == set(conditions):
                values[int(seed)] = float(per_seed["value"].mean())
                runs[int(seed)] = (per_seed["run_id"].iloc[0], per_seed["artifacts_dir"].iloc[0])
        return values, runs

    def candidates(self, conditions: tuple[str, ...], metric: str) -> list[statistics.Candidate]:
        """The rows holding a value in one column, each able to load its predictions averaged over given seeds."""
        found = []
        for label in self.labels:
            values, runs = self.cell(label, conditions, metric)
            if values:
                found.append(statistics.Candidate(
                    label, values, lambda seeds, runs=runs: self.predictions.averaged(runs, seeds, conditions)))
        return found

    def table(self, title: str) -> LayoutTable:
        """The layout's table: one column per (condition, metric), every reference row included."""
        from mmbench.metrics.functional import HIGHER_IS_BETTER

        bootstrap = statistics.Bootstrap(self.family)
        table = pd.DataFrame(MISSING, index=pd.Index(self.labels, name="method"), columns=[], dtype=object)
        marks, records, tests = table.copy(), [], set()
        for column, conditions in self.conditions():
            for metric in self.metrics:
                header = f"{column} {HEADERS.get(metric, metric)}"
                table[header], marks[header] = MISSING, ""
                candidates = self.candidates(conditions, metric)
                column_marks = statistics.ColumnMarks()
                if self.significance:
                    column_marks = statistics.mark_column(candidates, metric, HIGHER_IS_BETTER.get(metric), bootstrap)
                    tests |= column_marks.tests
                for candidate in candidates:
                    table.loc[candidate.label, header] = _cell_text(metric, candidate.values)
                    marks.loc[candidate.label, header] = column_marks.marks.get(candidate.label, "")
                    records.append(self._record(candidate, column, metric, column_marks))
        return LayoutTable(title, self._notes(tests), table, marks, records + self._not_run_records())

    def _record(self, candidate: statistics.Candidate, column: str, metric: str,
                column_marks: statistics.ColumnMarks) -> dict:
        """The JSON object of one cell: the leaderboard's keys, the interval, the tests and the mark."""
        rows = self.rows[(self.rows["label"] == candidate.label) & (self.rows["metric"] == metric)]
        base = rows[rows["condition"] == column]
        record = _json_ready((base if len(base) else rows).iloc[0].to_dict())
        values = list(candidate.values.values())
        interval = statistics.t_interval(values)
        comparison = column_marks.against_best.get(candidate.label, statistics.Comparison())
        record.update(layout=self.layout, condition=column, metric=metric, mean=float(np.mean(values)),
                      std=float(np.std(values, ddof=1)) if len(values) > 1 else None, n_seeds=len(values),
                      ci95_low=interval[0] if interval else None, ci95_high=interval[1] if interval else None,
                      mark=column_marks.marks.get(candidate.label), p_vs_best_ttest=comparison.p_ttest,
                      p_vs_best_bootstrap=comparison.p_bootstrap, test_vs_best=comparison.test)
        if not len(base):  # the Avg column: no single tested condition
            record.update(train_condition=None, achieved_rate=None,
                          n_failed=int(rows["n_failed"].max()) if len(rows) else 0)
        return record

    def _not_run_records(self) -> list[dict]:
        first = _json_ready(self.rows.iloc[0].to_dict())
        keys = ("dataset", "protocol", "train_setting", "selection", "synthetic")
        return [{**{k: first.get(k) for k in keys}, "layout": self.layout, "method": method, "label": method,
                 "mean": None, "std": None, "n_seeds": 0, "note": "not run"} for method in self.missing_references]

    def _notes(self, tests: set[str]) -> list[str]:
        notes = ["Cells: mean ± std over seeds (ddof 1); 95 % t-intervals over seeds in --format json."]
        if self.layout == "patterns":
            notes.append(f"{AVERAGE}: mean over the {len(INCOMPLETE_PATTERNS)} incomplete patterns "
                         f"({', '.join(INCOMPLETE_PATTERNS)}), per seed, then over seeds.")
        notes.append(_significance_note(self.significance, tests))
        notes += [f"{method}: not run." for method in self.missing_references]
        return notes

    def robustness_table(self, title: str) -> LayoutTable:
        """The robustness summaries of every row, per metric (printed after the rates table)."""
        from mmbench.metrics.functional import HIGHER_IS_BETTER

        fusion = [label for label in self.labels if self.methods.get(label) == "fusion"]
        # several fusion configurations: the one with the most results is the reference
        reference = max(fusion, key=lambda label: (self.seeds["label"] == label).sum()) if fusion else None
        curves = self.seeds.assign(rate=self.seeds["condition"].astype(float))
        columns, texts, records = [], {}, []
        for metric in self.metrics:
            summary = robustness.summarise(curves[curves["metric"] == metric], HIGHER_IS_BETTER.get(metric, True),
                                           reference)
            for name in robustness.SUMMARIES:
                header = f"{HEADERS.get(metric, metric)} {robustness.HEADERS[name]}"
                columns.append(header)
                for row in summary[summary["summary"] == name].itertuples():
                    texts[row.label, header] = (f"{row.mean:.3f}" if name == "relative_robustness"
                                                else format_cell(metric, row.mean, row.std))
                    records.append(self._summary_record(row, metric, name, reference))
        table = pd.DataFrame([[texts.get((label, c), MISSING) for c in columns] for label in self.labels],
                             index=pd.Index(self.labels, name="method"), columns=columns)
        notes = [ROBUSTNESS_NOTE.format(reference=reference or "fusion")]
        notes += ["fusion: not run, so no EffRob." if method == "fusion" else f"{method}: not run."
                  for method in self.missing_references]
        marks = pd.DataFrame("", index=table.index, columns=table.columns)
        return LayoutTable(title.replace("rates layout", "robustness summary", 1), notes, table, marks, records)

    def _summary_record(self, row, metric: str, summary: str, reference: str | None) -> dict:
        first = self.rows.iloc[0]
        return {"dataset": first["dataset"], "protocol": first["protocol"], "train_setting": first["train_setting"],
                "selection": first["selection"], "synthetic": bool(first["synthetic"]), "layout": self.layout,
                "method": self.methods[row.label], "label": row.label, "metric": metric, "summary": summary,
                "condition": None, "mean": row.mean, "std": row.std, "n_seeds": int(row.n_seeds),
                "reference": reference}


def _cell_text(metric: str, values: dict[int, float]) -> str:
    if not values:
        return MISSING
    numbers = list(values.values())
    return format_cell(metric, float(np.mean(numbers)), float(np.std(numbers, ddof=1)) if len(numbers) > 1 else None)


def _significance_note(significance: bool, tests: set[str]) -> str:
    if not significance:
        return "No significance marks (add --significance to mark best and second best where significant)."
    decided = " and ".join(sorted(tests)) if tests else (
        f"{statistics.BOOTSTRAP}, else {statistics.T_TEST} where predictions are missing")
    return (f"Bold: best, underlined: second best, each marked only where it differs from the next row at "
            f"alpha = {statistics.ALPHA} ({decided}; bootstrap: {statistics.N_RESAMPLES} resamples, predictions "
            f"averaged over the shared seeds, two-sided).")


def _json_ready(record: dict) -> dict:
    clean = {k: (None if v is not None and not isinstance(v, (str, dict, list)) and pd.isna(v) else v)
             for k, v in record.items()}
    clean = {k: (v.item() if hasattr(v, "item") else v) for k, v in clean.items()}
    if isinstance(clean.get("data_quality"), str):
        clean["data_quality"] = json.loads(clean["data_quality"])
    if "synthetic" in clean:
        clean["synthetic"] = bool(clean["synthetic"])
    return clean


def render_layout(tables: list[LayoutTable], fmt: str) -> str:
    """The tables in ``md``, ``csv``, ``json``, ``latex`` or ``html`` (fragments for a page to embed)."""
    if fmt == "json":
        return json.dumps([record for table in tables for record in table.records], indent=1)
    if not tables:
        return "no finished runs in this store for the chosen filters and layout"
    if fmt not in MARKUP:
        raise ValueError(f"unknown format {fmt!r}; choose md, csv, json, latex or html")
    return "\n\n".join(_render_one(table, fmt) for table in tables)


def _render_one(layout_table: LayoutTable, fmt: str) -> str:
    escape = {"latex": _latex_escape, "html": html.escape}.get(fmt, str)
    table = layout_table.table.map(escape)
    for (label, header), mark in layout_table.marks.stack().items():
        if mark:
            table.loc[label, header] = MARKUP[fmt][mark].format(table.loc[label, header])
    title, caption = layout_table.title, layout_table.caption
    if fmt == "md":
        return f"### {title}\n\n{_markdown(table)}\n\n{caption}"
    if fmt == "csv":
        return f"# {title}\n# {caption}\n{table.to_csv()}"
    if fmt == "html":
        table.index = [html.escape(str(label)) for label in table.index]
        table.columns = [html.escape(str(column)) for column in table.columns]
        return (f"<h3>{html.escape(title)}</h3>\n{table.to_html(escape=False)}\n"
                f"<p class=\"caption\">{html.escape(caption)}</p>")
    table.index = [_latex_escape(str(label)) for label in table.index]
    table.columns = [_latex_escape(str(column)) for column in table.columns]
    return f"% {title}\n" + table.to_latex(escape=False, caption=_latex_escape(f"{title}. {caption}"))


def _latex_escape(text: str) -> str:
    """Text safe inside a LaTeX table, in one pass (the marks are added after escaping)."""
    return _LATEX_SPECIAL.sub(lambda match: _LATEX_ESCAPES[match.group()], text)


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$",
                  "—": "--"}
_LATEX_SPECIAL = re.compile("|".join(re.escape(char) for char in _LATEX_ESCAPES))
