"""Leaderboard tables: rows = methods, columns = conditions x metrics, cells = mean ± std over seeds.

``fixed`` columns follow the OMG-Agent paper's pattern order (A, V, L, VA, LA, LV, LVA); ``random``
and ``frame`` columns are the rates. Accuracies and F1 print in percent with one decimal, MAE and
Corr as plain values. A table from synthetic or semi-synthetic data says so in its title.
"""
from __future__ import annotations

import json
import math

import pandas as pd

from mmbench.constants import TABLE_PATTERN_ORDER
from mmbench.data.registry import DATASETS
from mmbench.data.types import quality_summary

DEFAULT_METRICS = {"mosi": ["acc2_non0", "f1_non0", "acc7"], "sims": ["acc2", "f1", "acc5"]}
PLAIN_METRICS = ("mae", "corr", "mei", "mli")  # printed as stored, 3 decimals (the rest x100, 1 decimal)
MMSA_METRICS = ["acc2_has0/non0", "f1_has0/non0", "acc7", "mae", "corr"]
HEADERS = {"acc2_has0/non0": "ACC2 (Has0/Non0)", "f1_has0/non0": "F1 (Has0/Non0)", "acc2_has0": "ACC2 (Has0)", "acc2_non0": "ACC2 (Non0)", "f1_has0": "F1 (Has0)", "f1_non0": "F1 (Non0)",
           "acc7": "ACC7", "acc5": "ACC5", "acc3": "ACC3", "acc2": "ACC2", "f1": "F1", "mae": "MAE", "corr": "Corr"}
JSON_KEYS = ["dataset", "method", "label", "config_id", "protocol", "condition", "train_condition", "train_setting",
             "selection", "metric", "mean", "std", "n_seeds", "n_failed", "n_superseded", "n_stale", "synthetic",
             "achieved_rate", "achieved_rates", "data_quality"]


def default_metrics(dataset: str) -> list[str]:
    family = DATASETS[dataset].family if dataset in DATASETS else "mosi"
    return DEFAULT_METRICS["sims" if family == "sims" else "mosi"]


def _significant(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits, never in exponent form (0.01234 -> 0.0123, 1234.5 -> 1234)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:.0f}"
    return f"{value:.{max(0, digits - 1 - math.floor(math.log10(abs(value))))}f}"


#: Costs (mmbench.metrics.cost) print as plain numbers: seconds and MiB whole, ms to 3 significant
#: digits, parameters as an integer with thousands separators.
COST_FORMATS = {"train_s": "{:.0f}".format, "infer_ms": _significant, "params": "{:,.0f}".format,
                "peak_mem_mb": "{:.0f}".format}


def format_cell(metric: str, mean: float, std: float | None) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"  # undefined, e.g. the equity index of a model whose modalities all contribute nothing
    has_std = std is not None and not (isinstance(std, float) and math.isnan(std))
    if metric in COST_FORMATS:
        text = COST_FORMATS[metric](mean)
        return f"{text} ± {COST_FORMATS[metric](std)}" if has_std else text
    scale, digits = (1.0, 3) if metric in PLAIN_METRICS or metric.startswith("rec_") else (100.0, 1)
    text = f"{mean * scale:.{digits}f}"
    if has_std:
        text += f" ± {std * scale:.{digits}f}"
    return text


def _condition_order(protocol: str, conditions) -> list[str]:
    if protocol == "fixed":
        return [c for c in TABLE_PATTERN_ORDER if c in set(conditions)]
    if protocol == "imbalanced":  # "L0.3-V0.5-A0.7": as text, that is by the L, then V, then A rate
        return sorted(set(conditions))
    return sorted(set(conditions), key=float)


def table_title(rows: pd.DataFrame, dataset: str, protocol: str, train_setting: str, selection: str) -> str:
    spec = DATASETS.get(dataset)
    provenance = spec.provenance if spec else "real"
    tag = {"synthetic": " [SYNTHETIC data]",
           "semi-synthetic": f" [SEMI-SYNTHETIC data: {spec.description if spec else ''}]"}.get(provenance, "")
    n_test = int(rows["n_test"].max()) if "n_test" in rows and rows["n_test"].notna().any() else "?"
    n_seeds = sorted(set(rows["n_seeds"].astype(int)))
    oracle = " — TEST-ORACLE selection (checkpoint chosen on the test set)" if selection == "test-oracle" else ""
    notes = _count_note(rows, "n_superseded", "repeated run(s) of one key and seed: only the newest counted")
    notes += _count_note(rows, "n_stale", "run(s) of an older code version left out")
    quality = sorted({quality_summary(json.loads(q)) for q in rows.get("data_quality", pd.Series(dtype=object))
                      if isinstance(q, str) and q not in ("", "{}")})
    if quality:
        notes += f"; DATA QUALITY: {' | '.join(quality)}"
    return (f"{dataset}{tag}: {protocol} protocol, train setting {train_setting}, test N = {n_test}, "
            f"seeds per cell = {'/'.join(map(str, n_seeds))}{oracle}{notes}")


def _count_note(rows: pd.DataFrame, column: str, text: str) -> str:
    if column not in rows:
        return ""
    total = int(rows.drop_duplicates(["config_id", "train_condition"])[column].sum())
    return f"; {total} {text}" if total else ""


def with_cells(rows: pd.DataFrame, style: str = "plain") -> pd.DataFrame:
    """Add the printed ``cell`` of every row; ``style="mmsa"`` pairs Has0/Non0 in one cell, as MMSA prints."""
    rows = rows.copy()
    rows["cell"] = [format_cell(r.metric, r.mean, r.std) for r in rows.itertuples()]
    if style != "mmsa":
        return rows
    keys = ["dataset", "method", "protocol", "condition", "train_setting", "selection", "config_id"]
    paired = []
    for stem in ("acc2", "f1"):
        has0, non0 = rows[rows["metric"] == f"{stem}_has0"], rows[rows["metric"] == f"{stem}_non0"]
        both = has0.merge(non0[keys + ["cell"]], on=keys, suffixes=("", "_non0"))
        both["cell"] = both["cell"].str.split(" ±").str[0] + "/" + both["cell_non0"].str.split(" ±").str[0]
        both["metric"] = f"{stem}_has0/non0"
        paired.append(both.drop(columns=["cell_non0"]))
    return pd.concat([rows, *paired], ignore_index=True)


def build_tables(rows: pd.DataFrame, metrics: list[str] | None = None,
                 style: str = "plain") -> list[tuple[str, pd.DataFrame]]:
    """(title, table) per (dataset, protocol, train setting, selection) present in ``rows``."""
    rows = with_cells(rows, style)
    tables = []
    for (dataset, protocol, setting, selection), group in rows.groupby(
            ["dataset", "protocol", "train_setting", "selection"], sort=True):
        wanted = metrics or (MMSA_METRICS if style == "mmsa" and default_metrics(dataset)[0] == "acc2_non0"
                             else default_metrics(dataset))
        group = group[group["metric"].isin(wanted)]
        if group.empty:
            continue
        conditions = _condition_order(protocol, group["condition"])
        present = set(zip(group["condition"], group["metric"]))
        columns = [(c, m) for c in conditions for m in wanted if (c, m) in present]
        labels = group["label"] if "label" in group else group["method"]
        table = pd.DataFrame(index=sorted(labels.unique()),
                             columns=[f"{c} {HEADERS.get(m, m)}" for c, m in columns], dtype=object)
        for label, row in zip(labels, group.itertuples()):
            table.loc[label, f"{row.condition} {HEADERS.get(row.metric, row.metric)}"] = row.cell
        table = table.fillna("—")
        table.index.name = "method"
        tables.append((table_title(group, dataset, protocol, setting, selection), table))
    return tables


def render(rows: pd.DataFrame, fmt: str, metrics: list[str] | None = None, style: str = "plain") -> str:
    """The leaderboard in ``md``, ``csv``, ``json``, ``latex`` or ``html``."""
    if fmt == "json":
        records = rows.reindex(columns=JSON_KEYS).astype(object).where(rows.reindex(columns=JSON_KEYS).notna(),
                                                                      None).to_dict("records")
        for record in records:
            record["synthetic"] = bool(record["synthetic"])
            if isinstance(record.get("data_quality"), str):
                record["data_quality"] = json.loads(record["data_quality"])
        return json.dumps(records, indent=1)
    if rows.empty:
        return "no finished runs in this store for the chosen filters"
    return render_titled(build_tables(rows, metrics, style), fmt)


def render_titled(tables: list[tuple[str, pd.DataFrame]], fmt: str, *, index: bool = True) -> str:
    """Titled tables in ``md``, ``csv``, ``latex`` or ``html``: every text view of the reports."""
    parts = []
    for title, table in tables:
        if fmt == "md":
            parts.append(f"### {title}\n\n{_markdown(table, index=index)}")
        elif fmt == "csv":
            parts.append(f"# {title}\n{table.to_csv(index=index)}")
        elif fmt == "latex":
            parts.append(f"% {title}\n{table.to_latex(index=index)}")
        elif fmt == "html":
            parts.append(f"<h3>{title}</h3>\n{table.to_html(index=index)}")
        else:
            raise ValueError(f"unknown format {fmt!r}; choose md, csv, json, latex or html")
    return "\n\n".join(parts)


def _markdown(table: pd.DataFrame, *, index: bool = True) -> str:
    """A markdown table without needing the optional ``tabulate`` package."""
    header = [table.index.name or "method", *table.columns] if index else list(table.columns)
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([*([str(i)] if index else []), *map(str, row)]) + " |" for i, row in table.iterrows()]
    return "\n".join(lines)
