"""The modality equity index (MEI) of each fixed-protocol run, as rows the tables aggregate like any metric.

MEI (definition: :mod:`mmbench.metrics.balance`, docs/metrics.md) is computed per run from its own
seven test patterns, then averaged over seeds like every other cell; its condition is ``all`` (a
property of the model over every pattern, not of one pattern).
"""
from __future__ import annotations

import pandas as pd

from mmbench.metrics.balance import equity_index

#: The metric MEI is measured on, per metric family: the first of these the run has.
EQUITY_BASES = ("acc2_non0", "acc2")
EQUITY_METRIC = "mei"


def equity_rows(table: pd.DataFrame) -> pd.DataFrame:
    """One ``mei`` row per fixed-protocol run of the long ``table`` that has all seven patterns."""
    fixed = table[(table["protocol"] == "fixed") & table["metric"].isin(EQUITY_BASES)]
    rows = []
    for _, run in fixed.groupby("run_id", sort=False):
        base = next(m for m in EQUITY_BASES if m in set(run["metric"]))
        values = run[run["metric"] == base].set_index("condition")["value"]
        if len(values) < 7:
            continue
        row = run.iloc[0].copy()
        row["condition"] = row["train_condition"] = "all"
        row["metric"], row["value"], row["achieved_rate"] = EQUITY_METRIC, equity_index(values.to_dict()), None
        rows.append(row)
    return pd.DataFrame(rows, columns=table.columns)
