"""Reported vs reproduced: the numbers papers print beside this suite's, and why they may differ.

``results/published/published.csv`` holds one row per (source, dataset, method, protocol, condition,
metric) in this suite's keys and units (fractions for accuracies and F1, plain MAE and Corr); its
README says where every number comes from. :func:`compare` pairs each published row with the
aggregate rows (:func:`mmbench.reports.aggregate.aggregate`) of the same dataset family, method,
protocol, condition and metric, gives the difference (reproduced - published, stored unit) and says in
``caveats`` every reason the two are not like for like. Synthetic and semi-synthetic data are always
named there: such a row is never like for like.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd

import mmbench
from mmbench.constants import PROTOCOLS, TABLE_PATTERN_ORDER
from mmbench.data.registry import DATASETS
from mmbench.reports.leaderboard import HEADERS, PLAIN_METRICS, format_cell, render_titled

PUBLISHED_CSV = Path(mmbench.__file__).parents[1] / "results" / "published" / "published.csv"
COLUMNS = ("source", "citation", "dataset", "method", "protocol", "condition", "metric", "has0_non0", "value",
           "features", "feature_set", "selection", "notes", "page_table")
#: Metric keys a paper's number may carry: this suite's keys, plus bare ``acc2``/``f1`` when the paper
#: does not say Has0 or Non0 (``has0_non0 = unknown``).
PUBLISHED_METRICS = ("acc2", "acc2_has0", "acc2_non0", "f1", "f1_has0", "f1_non0", "acc7", "acc5", "acc3",
                     "mae", "corr")
PAPER_SELECTIONS = ("valid", "test", "unknown")
#: The condition of a number averaged over the 6 incomplete fixed patterns (CorrKD reports it).
MEAN_INCOMPLETE = "mean-incomplete"
INCOMPLETE_PATTERNS = tuple(p for p in TABLE_PATTERN_ORDER if p != "LVA")
#: Published model -> the registered method that stands in for it, and what differs.
STAND_INS = {"bc-lstm": ("fusion", "other model: the suite's fusion (one utterance at a time) stands in for "
                                   "bc-LSTM (a bidirectional LSTM over the utterances of a video)")}
#: Suite dataset -> (feature set key, what it is); synthetic sets are named by their provenance instead.
SUITE_FEATURES = {
    "mosi-bclstm": ("bc-lstm", "bc-LSTM utterance features (text CNN 100, 3D-CNN 100, openSMILE 73; "
                               "62/31-video split)"),
    "mosi-text": ("minilm-text", "MiniLM transcript embedding with synthetic vision/audio"),
    "mosei-text": ("minilm-text", "MiniLM transcript embedding with synthetic vision/audio"),
}
#: Extra differences when the feature set is the paper's own (dataset -> note).
SAME_FEATURES_NOTES = {"mosi-bclstm": "training data: 52 of the paper's 62 training videos (10 held out for "
                                      "validation; the paper had no validation split)"}
OUTPUT_COLUMNS = ["source", "paper_dataset", "paper_method", "paper_metric", "published", "dataset", "method",
                  "label", "config_id", "protocol", "condition", "train_setting", "selection", "metric", "mean",
                  "std", "n_seeds", "difference", "synthetic", "like_for_like", "caveats", "page_table",
                  "citation"]


class PublishedTableError(ValueError):
    """A published-numbers file that does not hold what this module expects (names file, row and field)."""


def load_published(path: Path | str = PUBLISHED_CSV) -> pd.DataFrame:
    """The published numbers, validated; ``value`` as float in the stored unit.

    Raises:
        PublishedTableError: naming the file, the line and the field, with what was expected and found.
    """
    path = Path(path)
    if not path.is_file():
        raise PublishedTableError(f"{path}: no such file (published numbers are read from the repository's "
                                  "results/published/; run from a clone, not an installed wheel)")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise PublishedTableError(f"{path}: missing column(s) {', '.join(missing)}; "
                                      f"expected {', '.join(COLUMNS)}")
        records = [_checked(path, line, row) for line, row in enumerate(reader, start=2)]
    return pd.DataFrame.from_records(records, columns=list(reader.fieldnames))


def _checked(path: Path, line: int, row: dict) -> dict:
    def fail(field: str, expected: str) -> PublishedTableError:
        return PublishedTableError(f"{path}, line {line}, field {field!r}: expected {expected}, "
                                   f"found {row.get(field)!r}")

    for field in ("source", "citation", "dataset", "method", "protocol", "condition", "metric", "value"):
        if not (row.get(field) or "").strip():
            raise fail(field, "a value")
    choices = {"dataset": ("mosi", "mosei", "sims"), "protocol": PROTOCOLS, "metric": PUBLISHED_METRICS,
               "selection": PAPER_SELECTIONS, "has0_non0": ("has0", "non0", "unknown", "")}
    for field, allowed in choices.items():
        if row[field] not in allowed:
            raise fail(field, "one of " + ", ".join(repr(a) for a in allowed))
    try:
        value = float(row["value"])
    except ValueError:
        raise fail("value", "a number") from None
    if not math.isfinite(value) or (row["metric"] not in PLAIN_METRICS and not 0.0 <= value <= 1.0):
        raise fail("value", f"a fraction in [0, 1] for {row['metric']} (the stored unit, not percent)")
    return {**row, "value": value}


def compare(rows: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """One row per (published row, matching aggregate row), with the difference and the caveats.

    A published ``mosi`` row matches this suite's datasets of the ``mosi`` family (``mosi``,
    ``mosi-bclstm``, ``mosi-synth``, ``mosi-text``; likewise ``mosei`` and ``sims``); a bare
    ``acc2``/``f1`` (Has0/Non0 unknown) matches both variants; a published model this suite lacks
    matches its stand-in (:data:`STAND_INS`). ``difference`` = reproduced mean - published value,
    in the stored unit. Published rows without a match are left out.
    """
    suite = _with_mean_incomplete(rows)
    if suite.empty or published.empty:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    suite = suite.assign(family=[DATASETS[d].family if d in DATASETS else None for d in suite["dataset"]])
    paper = published.rename(columns={"dataset": "paper_dataset", "method": "paper_method",
                                      "metric": "paper_metric", "value": "published",
                                      "selection": "paper_selection", "protocol": "paper_protocol",
                                      "condition": "paper_condition"})
    paper["method"] = [[m, STAND_INS[m][0]] if m in STAND_INS else [m] for m in paper["paper_method"]]
    paper["metric"] = [[m, f"{m}_has0", f"{m}_non0"] if m in ("acc2", "f1") else [m] for m in paper["paper_metric"]]
    paper = paper.explode("method").explode("metric")
    matched = paper.merge(suite, left_on=["paper_dataset", "method", "paper_protocol", "paper_condition", "metric"],
                          right_on=["family", "method", "protocol", "condition", "metric"])
    if matched.empty:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    matched["difference"] = matched["mean"] - matched["published"]
    matched["caveats"] = [_caveats(r) for r in matched.to_dict("records")]
    matched["like_for_like"] = matched["caveats"].eq("")
    matched["synthetic"] = [bool(s) or _provenance(d) != "real" for s, d in zip(matched["synthetic"],
                                                                                  matched["dataset"])]
    order = {c: i for i, c in enumerate([*TABLE_PATTERN_ORDER, MEAN_INCOMPLETE])}
    matched["_order"] = [order.get(c, len(order)) if p == "fixed" else float(c) if _is_rate(c) else len(order)
                         for c, p in zip(matched["condition"], matched["protocol"])]
    metric_order = {m: i for i, m in enumerate(PUBLISHED_METRICS)}
    matched["_metric_order"] = [metric_order[m] for m in matched["paper_metric"]]
    matched = matched.sort_values(["dataset", "source", "method", "protocol", "_order", "_metric_order", "metric"])
    return matched.reindex(columns=OUTPUT_COLUMNS).reset_index(drop=True)


def _with_mean_incomplete(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` plus, per configuration and metric of the fixed protocol with all 6 incomplete patterns,
    a :data:`MEAN_INCOMPLETE` row: the mean of those 6 means (the papers' "average" column; no std)."""
    fixed = rows[(rows["protocol"] == "fixed") & rows["condition"].isin(INCOMPLETE_PATTERNS)]
    keys = ["dataset", "method", "label", "protocol", "train_setting", "selection", "metric", "config_id"]
    if fixed.empty:
        return rows
    means = fixed.groupby(keys, dropna=False).agg(mean=("mean", "mean"), n_patterns=("condition", "nunique"),
                                                   n_seeds=("n_seeds", "min"), synthetic=("synthetic", "max"),
                                                   n_test=("n_test", "max")).reset_index()
    means = means[means.pop("n_patterns") == len(INCOMPLETE_PATTERNS)]
    means = means.assign(condition=MEAN_INCOMPLETE, train_condition=MEAN_INCOMPLETE, std=None)
    return pd.concat([rows, means], ignore_index=True)


def _caveats(row: dict) -> str:
    """Every reason the published and the reproduced number are not like for like ('' when none)."""
    dataset, reasons = row["dataset"], []
    provenance = _provenance(dataset)
    if provenance != "real" or row.get("synthetic"):
        what = DATASETS[dataset].description if dataset in DATASETS else dataset
        reasons.append(f"{'SEMI-SYNTHETIC' if provenance == 'semi-synthetic' else 'SYNTHETIC'} data ({what}): "
                       "not the paper's data")
    feature_set, described = SUITE_FEATURES.get(dataset, ("pickle", "the feature pickle read from --data-dir"))
    if provenance == "real" and feature_set == "pickle":
        reasons.append(f"features unverified: the paper used {row['features']}; check this run's file with "
                       f"`mmbench data inspect {dataset}`")
    elif provenance == "real" and feature_set != row["feature_set"]:
        reasons.append(f"other features: {dataset} = {described}; paper = {row['features']}")
    elif provenance == "real" and dataset in SAME_FEATURES_NOTES:
        reasons.append(SAME_FEATURES_NOTES[dataset])
    if row["method"] != row["paper_method"]:
        reasons.append(STAND_INS[row["paper_method"]][1])
    if row["paper_selection"] == "test" and row["selection"] != "test-oracle":
        reasons.append(f"test-set selection in the paper (checkpoint chosen on test, optimistic); this suite "
                       f"selects on {row['selection']}")
    elif row["paper_selection"] == "unknown":
        reasons.append("the paper does not say how its checkpoint was chosen")
    elif row["selection"] == "test-oracle":
        reasons.append("this suite's row is test-oracle; the paper selected on validation")
    if row["has0_non0"] == "unknown" and row["metric"] != row["paper_metric"]:
        reasons.append(f"Has0/Non0 unknown: the paper's {row['paper_metric']} against this suite's {row['metric']}")
    reasons += _protocol_caveats(row)
    return "; ".join(reasons)


def _protocol_caveats(row: dict) -> list[str]:
    reasons = []
    if row["protocol"] == "random":
        reasons.append("protocol definition differs: the suite draws IMDer's missing-two/missing-one fractions "
                       "per sample over the whole split (IMDer: per batch of a shuffled loader)")
        if _is_rate(row["condition"]) and float(row["condition"]) > 2 / 3:
            reasons.append("MR above 2/3 cannot keep one modality per sample: the suite caps it at 2/3")
    if row["condition"] == MEAN_INCOMPLETE:
        reasons.append("the suite's value is the mean of its 6 incomplete-pattern means (no std)")
    return reasons


def _provenance(dataset: str) -> str:
    return DATASETS[dataset].provenance if dataset in DATASETS else "real"


def _is_rate(condition: str) -> bool:
    try:
        float(condition)
    except (TypeError, ValueError):
        return False
    return True


def render_comparison(table: pd.DataFrame, fmt: str) -> str:
    """The comparison as ``json`` (stored units) or a ``md``/``csv``/``latex``/``html`` table per dataset
    (accuracies in percent with one decimal; the difference in percentage points)."""
    if fmt == "json":
        records = table.astype(object).where(table.notna(), None).to_dict("records")
        for record in records:
            record["synthetic"], record["like_for_like"] = bool(record["synthetic"]), bool(record["like_for_like"])
        return json.dumps(records, indent=1)
    if table.empty:
        return "no published number matches a finished run in this store for the chosen filters"
    tables = [(_title(dataset, group), _display(group)) for dataset, group in table.groupby("dataset", sort=False)]
    return render_titled(tables, fmt, index=False)


def _title(dataset: str, group: pd.DataFrame) -> str:
    provenance = _provenance(dataset)
    tag = "" if provenance == "real" else f" [{provenance.upper()} data: never like for like with a paper]"
    n_like = int(group["like_for_like"].sum())
    return (f"{dataset}{tag}: reported vs reproduced, {len(group)} pair(s), {n_like} like for like; accuracies "
            "in percent, difference = reproduced - published (points)")


def _display(group: pd.DataFrame) -> pd.DataFrame:
    def metric_name(paper: str, suite: str) -> str:
        return HEADERS.get(suite, suite) if paper == suite else f"{paper} as {HEADERS.get(suite, suite)}"

    scale = [1.0 if m in PLAIN_METRICS else 100.0 for m in group["metric"]]
    return pd.DataFrame({
        "paper": [f"{s} {t}" for s, t in zip(group["source"], group["page_table"])],
        "paper method": group["paper_method"].values, "method": group["label"].fillna(group["method"]).values,
        "protocol": group["protocol"].values, "condition": group["condition"].values,
        "metric": [metric_name(p, s) for p, s in zip(group["paper_metric"], group["metric"])],
        "published": [format_cell(m, v, None) for m, v in zip(group["metric"], group["published"])],
        "reproduced": [format_cell(m, v, s) for m, v, s in zip(group["metric"], group["mean"], group["std"])],
        "difference": [f"{d * k:+.{1 if k > 1 else 3}f}" for d, k in zip(group["difference"], scale)],
        "seeds": group["n_seeds"].astype(int).values,
        "like for like": ["yes" if x else "no" for x in group["like_for_like"]],
        "caveats": group["caveats"].values,
    })
