"""The benchmark's figures, drawn from the aggregated store (``mmbench plot``; the HTML page embeds them).

Four figures per dataset, each written as PNG and PDF:

- ``rates_*``: a metric vs the missing rate (``random`` / ``frame``), mean with a ±1 std band over
  seeds, one line per method (the OMG-Agent paper's Figure 3);
- ``patterns_*``: grouped bars per availability pattern (``fixed``), error bars = std over seeds;
- ``reconstruction_*``: MSE of the recovered features per missing modality, beside zero- and
  mean-imputation (``rec_mse_<m>``, ``rec_mse_<m>_zero``, ``rec_mse_<m>_mean``; ``fixed``);
- ``matrix_*``: the train-rate x test-rate heat map of ``--eval-rates`` runs (:mod:`mmbench.reports.matrix`);
- ``cost_*``: accuracy vs cost (training time, parameters, inference time; log scale) with the
  Pareto front marked as a step line through the non-dominated configurations.

Every number comes from :func:`mmbench.reports.aggregate.aggregate`: each line or bar is one
(method, config_id) row under its table label, so configurations are never mixed. Colours and fonts
come from :mod:`mmbench.reports.palette`; a figure whose inputs the store lacks is skipped with a
stated reason.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from mmbench.constants import MODALITIES, MODALITY_NAMES, TABLE_PATTERN_ORDER
from mmbench.data.registry import DATASETS
from mmbench.metrics.functional import HIGHER_IS_BETTER
from mmbench.reports.matrix import matrix_heatmaps
from mmbench.reports.palette import (FIGURE_RC, axis_label, compact_number, config_hatch, config_linestyle,
                                     display_scale, figure_legend, method_sort_key, method_styles, metric_name,
                                     new_figure, save_figure, seed_text, set_title)

#: One figure per (dataset, protocol, training setting, selection).
FIGURE_KEYS = ["dataset", "protocol", "train_setting", "selection"]
#: Cost metrics (mmbench.metrics.cost) drawn against accuracy, one panel each, when the store has them.
COST_METRICS: tuple[str, ...] = ("train_s", "params", "infer_ms")
RATE_AXES: dict[str, str] = {"random": "missing rate (fraction of modality inputs removed)",
                             "frame": "missing rate (fraction of time steps removed)"}
REFERENCES: tuple[tuple[str, str, str, str], ...] = (  # (label, metric suffix, colour, hatch)
    ("zero imputation", "_zero", "#DDDDDD", "//"), ("mean imputation", "_mean", "#999999", ".."))
SKIPPED: dict[str, str] = {
    "rates": "no random/frame protocol results for these metrics",
    "patterns": "no fixed-protocol results for these metrics",
    "reconstruction": "no rec_mse_<m> metrics (only methods that recover features store them)",
    "matrix": "no --eval-rates results (a model tested beyond its training rate)",
    "cost": f"no cost metrics ({', '.join(COST_METRICS)}) at the fixed protocol; runs recorded before costs lack them",
}


@dataclass
class Series:
    """One line or bar set: its legend label, look, and values by condition (in the stored unit)."""

    label: str
    color: str
    values: pd.DataFrame  # indexed by condition: mean, std
    linestyle: object = "-"
    marker: str = "o"
    hatch: str | None = None


def default_plot_metrics(dataset: str) -> list[str]:
    """ACC2 (Non0 on MOSI/MOSEI, plain on CH-SIMS) and MAE."""
    family = DATASETS[dataset].family if dataset in DATASETS else "mosi"
    return ["acc2" if family == "sims" else "acc2_non0", "mae"]


def pareto_front(costs: Sequence[float], scores: Sequence[float], *, higher_is_better: bool = True) -> list[int]:
    """Indices of the non-dominated points, by increasing cost (lower cost and better score win).

    A point is dominated when another costs no more, scores no worse, and is strictly better in one.

    Example:
        >>> pareto_front([1, 2, 3, 4], [0.5, 0.4, 0.7, 0.7])
        [0, 2]
    """
    sign = 1.0 if higher_is_better else -1.0
    points = [(float(c), sign * float(s)) for c, s in zip(costs, scores)]
    front = [i for i, (c, s) in enumerate(points)
             if not any(c2 <= c and s2 >= s and (c2 < c or s2 > s) for c2, s2 in points)]
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


def _method_series(rows: pd.DataFrame) -> list[Series]:
    """One series per table row of ``rows`` (one metric): a (method, config_id) and, for ``--eval-rates``
    runs, its training condition (the label says which), in legend order.

    Where the series do not all average the same number of seeds, each label says its own.
    """
    styles = method_styles(rows["method"].unique())
    seeds = rows.groupby("label")["n_seeds"].max()
    seeds_differ = seeds.nunique() > 1
    series = []
    for method in sorted(rows["method"].unique(), key=method_sort_key):
        of_method = rows[rows["method"] == method]
        for index, label in enumerate(sorted(of_method["label"].unique())):
            values = of_method[of_method["label"] == label].set_index("condition")
            values = pd.DataFrame({"mean": pd.to_numeric(values["mean"]), "std": pd.to_numeric(values["std"]),
                                   "n_seeds": values["n_seeds"]})
            style = styles[method]
            if seeds_differ:
                label = f"{label} ({seed_text([int(seeds[label])])})"
            series.append(Series(label, style.color, values, config_linestyle(style, index), style.marker,
                                 config_hatch(index)))
    return series


def _stem(kind: str, key: tuple, *parts: str) -> str:
    dataset, protocol, setting, selection = key
    words = [kind, dataset, protocol, setting, *parts] + ([selection] if selection != "valid" else [])
    return "_".join(words)


def rate_curves(rows: pd.DataFrame, metrics: Sequence[str]) -> list[tuple[str, Figure]]:
    """Metric vs missing rate with a ±1 std band, one panel per metric (random and frame protocols)."""
    figures = []
    curves = rows[rows["protocol"].isin(list(RATE_AXES)) & rows["metric"].isin(list(metrics))]
    for key, group in curves.groupby(FIGURE_KEYS, sort=True):
        present = [m for m in metrics if m in set(group["metric"])]
        figure = new_figure(len(present))
        for axes, metric in zip(figure.axes, present):
            scale = display_scale(metric)
            for line in _method_series(group[group["metric"] == metric]):
                values = line.values.sort_index(key=lambda c: c.astype(float))
                rates, mean, std = values.index.astype(float), values["mean"] * scale, values["std"] * scale
                axes.plot(rates, mean, color=line.color, linestyle=line.linestyle, marker=line.marker,
                          markersize=5, label=line.label)
                if std.notna().any():
                    axes.fill_between(rates, mean - std, mean + std, color=line.color, alpha=0.15, linewidth=0)
            rates = sorted({float(c) for c in group["condition"]})
            axes.set_xticks(rates, [f"{r:.1f}" for r in rates])
            axes.set_xlabel(RATE_AXES[key[1]])
            axes.set_ylabel(axis_label(metric))
        figure_legend(figure)
        set_title(figure, group, " and ".join(map(metric_name, present)) + " vs missing rate")
        figures.append((_stem("rates", key), figure))
    return figures


def _grouped_bars(axes, series: list[Series], groups: list[str], scale: float) -> None:
    """Bars of every series side by side within each group (condition), std as error bars."""
    width = 0.8 / max(1, len(series))
    for index, bars in enumerate(series):
        values = bars.values.reindex(groups)
        positions = np.arange(len(groups)) - 0.4 + width * (index + 0.5)
        std = values["std"] * scale  # NaN (one seed, a reference) draws no error bar
        axes.bar(positions, values["mean"] * scale, width, yerr=std, color=bars.color, hatch=bars.hatch,
                 edgecolor="#333333" if bars.hatch else bars.color, linewidth=0.6, label=bars.label,
                 error_kw={"elinewidth": 1.0, "capsize": 2, "ecolor": "#333333"})
    axes.set_xticks(np.arange(len(groups)), groups)
    axes.grid(axis="x", visible=False)


def pattern_bars(rows: pd.DataFrame, metrics: Sequence[str]) -> list[tuple[str, Figure]]:
    """Grouped bars per availability pattern (fixed protocol), one figure per metric."""
    figures = []
    fixed = rows[(rows["protocol"] == "fixed") & rows["condition"].isin(TABLE_PATTERN_ORDER)]
    for key, group in fixed.groupby(FIGURE_KEYS, sort=True):
        for metric in [m for m in metrics if m in set(group["metric"])]:
            of_metric = group[group["metric"] == metric]
            patterns = [p for p in TABLE_PATTERN_ORDER if p in set(of_metric["condition"])]
            bars = len(patterns) * of_metric["config_id"].nunique()
            figure = new_figure(1, panel_width=min(11.0, max(6.0, 0.18 * bars)), height=4.2)
            axes = figure.axes[0]
            _grouped_bars(axes, _method_series(of_metric), patterns, display_scale(metric))
            axes.set_xlabel("available modalities (L language, V vision, A audio)")
            axes.set_ylabel(axis_label(metric))
            figure_legend(figure)
            set_title(figure, of_metric, f"{metric_name(metric)} per availability pattern")
            figures.append((_stem("patterns", key, metric), figure))
    return figures


def _reference_series(rows: pd.DataFrame, modality: str, log: Callable[[str], None]) -> list[Series]:
    """Zero and mean imputation: the same for every method on one test set, so one bar set each."""
    series = []
    for label, suffix, color, hatch in REFERENCES:
        values = rows[rows["metric"] == f"rec_mse_{modality}{suffix}"].groupby("condition")["mean"]
        if values.ngroups == 0:
            continue
        spread = (values.max() - values.min()).abs().max()
        if spread > 1e-9 * max(1.0, values.mean().abs().max()):
            log(f"note: {label} of {modality} differs across configurations (other test samples?); "
                "the bars show their mean")
        frame = pd.DataFrame({"mean": values.mean(), "std": np.nan})
        series.append(Series(label, color, frame, hatch=hatch))
    return series


def reconstruction_bars(rows: pd.DataFrame, log: Callable[[str], None] = print) -> list[tuple[str, Figure]]:
    """MSE of recovered features per missing modality and pattern, beside zero/mean imputation (fixed)."""
    figures = []
    fixed = rows[(rows["protocol"] == "fixed") & rows["metric"].str.startswith("rec_mse_")]
    for key, group in fixed.groupby(FIGURE_KEYS, sort=True):
        modalities = [m for m in MODALITIES if f"rec_mse_{m}" in set(group["metric"])]
        if not modalities:
            continue
        figure = new_figure(len(modalities), panel_width=4.0)
        for axes, modality in zip(figure.axes, modalities):
            recovered = group[group["metric"] == f"rec_mse_{modality}"]
            patterns = [p for p in TABLE_PATTERN_ORDER if p in set(recovered["condition"])]
            series = _method_series(recovered) + _reference_series(group, modality, log)
            _grouped_bars(axes, series, patterns, 1.0)
            axes.set_title(f"{MODALITY_NAMES[modality]} ({modality}) missing")
            axes.set_xlabel("available modalities")
            axes.set_ylabel(f"MSE of recovered {modality} features\n(squared feature units; lower is better)")
        figure_legend(figure)
        recovered_rows = group[group["metric"].isin([f"rec_mse_{m}" for m in modalities])]
        set_title(figure, recovered_rows, "reconstruction fidelity of the missing modality")
        figures.append((_stem("reconstruction", key), figure))
    return figures


def _cost_points(group: pd.DataFrame, score_metric: str, cost: str, at: str) -> pd.DataFrame:
    """One row per configuration: its cost, score and score std, label, method."""
    def at_condition(metric: str) -> pd.DataFrame:
        values = group[group["metric"] == metric]
        if at != "mean":
            return values[values["condition"] == at].set_index("config_id")
        patterns = values[values["condition"].isin(TABLE_PATTERN_ORDER)]
        means = patterns.groupby("config_id")[["mean"]].mean()  # mean over patterns; std has no meaning here
        firsts = patterns.groupby("config_id")[["label", "method", "n_seeds"]].first()
        return means.join(firsts).assign(std=np.nan)

    score, spent = at_condition(score_metric), at_condition(cost)
    points = pd.DataFrame({"cost": spent["mean"], "score": score["mean"], "std": pd.to_numeric(score["std"]),
                           "n_seeds": score["n_seeds"], "label": score["label"], "method": score["method"]})
    return points.dropna(subset=["cost", "score"])


def _cost_panel(axes, points: pd.DataFrame, score_metric: str, higher_is_better: bool) -> None:
    """Each configuration as a point (± std), the Pareto front as a step line with ringed points."""
    scale = display_scale(score_metric)
    styles = method_styles(points["method"].unique())
    for point in points.itertuples():
        style = styles[point.method]
        axes.errorbar(point.cost, point.score * scale, yerr=None if pd.isna(point.std) else point.std * scale,
                      color=style.color, marker=style.marker, markersize=8, linestyle="none", capsize=2,
                      label=point.label, zorder=3)
    front = points.iloc[pareto_front(points["cost"], points["score"], higher_is_better=higher_is_better)]
    # where="post": at cost c the best attainable score is that of the last front point costing <= c.
    axes.step(front["cost"], front["score"] * scale, where="post", color="#555555", linewidth=1.2, linestyle="--",
              marker="o", markersize=15, markerfacecolor="none", zorder=2, label="Pareto front")
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(FuncFormatter(compact_number))
    axes.xaxis.set_minor_formatter(FuncFormatter(compact_number) if _decades(points["cost"]) < 1.5 else NullFormatter())
    axes.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    axes.margins(x=0.15, y=0.15)


def _decades(values: pd.Series) -> float:
    return float(np.log10(values.max() / values.min())) if len(values) else 0.0


def cost_scatter(rows: pd.DataFrame, score_metric: str, *, at: str = "LVA",
                 log: Callable[[str], None] = print) -> list[tuple[str, Figure]]:
    """Score (at pattern ``at``, or ``"mean"`` over the patterns) vs each cost, Pareto front marked."""
    figures = []
    fixed = rows[rows["protocol"] == "fixed"]
    for key, group in fixed.groupby(FIGURE_KEYS, sort=True):
        costs = [c for c in COST_METRICS if c in set(group["metric"])]
        if costs and score_metric in set(group["metric"]):
            figures.append((_stem("cost", key, score_metric), _cost_figure(group, score_metric, costs, at, log)))
    return figures


def _cost_figure(group: pd.DataFrame, score_metric: str, costs: list[str], at: str,
                 log: Callable[[str], None]) -> Figure:
    figure = new_figure(len(costs), panel_width=4.2)
    scores = group[group["metric"] == score_metric].sort_values("method", key=lambda m: m.map(method_sort_key))
    seeds_differ = scores["n_seeds"].nunique() > 1  # then every label says its own number of seeds
    order = [f"{label} ({seed_text([n])})" if seeds_differ else label
             for label, n in scores.groupby("label", sort=False)["n_seeds"].max().items()]
    without: set[str] = set()
    for axes, cost in zip(figure.axes, costs):
        points = _cost_points(group, score_metric, cost, at)
        without |= set(scores["label"]) - set(points["label"])
        hidden = points[points["cost"] <= 0]  # a log axis cannot show 0 (the `mean` predictor trains in 0 s)
        points = points[points["cost"] > 0].sort_values("method", key=lambda m: m.map(method_sort_key))
        if seeds_differ:
            points["label"] = [f"{label} ({seed_text([n])})" for label, n in zip(points["label"], points["n_seeds"])]
        _cost_panel(axes, points, score_metric, HIGHER_IS_BETTER.get(score_metric, True))
        zero_note = f"\n(0 for {', '.join(hidden['label'])}: not shown)" if not hidden.empty else ""
        axes.set_xlabel(axis_label(cost) + zero_note)
        axes.set_ylabel(axis_label(score_metric) + (f" at {at}" if at != "mean" else ", mean over patterns"))
    if without:
        log(f"note: {', '.join(sorted(without))} on {group['dataset'].iloc[0]} lack {' or '.join(costs)} "
            "(recorded before costs?): not in the cost figure")
    figure_legend(figure, order)
    set_title(figure, scores, f"{metric_name(score_metric)} vs cost")
    return figure


def _aggregated(store_or_rows, dataset: str | None) -> pd.DataFrame:
    if isinstance(store_or_rows, pd.DataFrame):
        rows = store_or_rows
        return rows[rows["dataset"] == dataset] if dataset else rows
    from mmbench.reports.aggregate import aggregate

    return aggregate(store_or_rows, dataset=dataset)


def _stderr(message: str) -> None:
    print(f"figures: {message}", file=sys.stderr)


def make_figures(store_or_rows, out_dir: Path | str, *, dataset: str | None = None,
                 metrics: Sequence[str] | None = None, log: Callable[[str], None] = _stderr) -> list[Path]:
    """Draw every figure the results allow; write PNG + PDF under ``out_dir``; return the PNG paths.

    Args:
        store_or_rows: a :class:`~mmbench.results.ResultStore`, or rows of
            :func:`~mmbench.reports.aggregate.aggregate`.
        out_dir: folder for the files (created if absent).
        dataset: only this dataset (default: every dataset in the results).
        metrics: metrics of the rate curves and pattern bars; the first is also the accuracy of the
            cost figure (default: :func:`default_plot_metrics` of each dataset).
        log: receives one line per skipped figure and per note (default: stderr).
    """
    rows = _aggregated(store_or_rows, dataset)
    if rows.empty:
        log("no finished results to plot" + (f" for dataset {dataset}" if dataset else ""))
        return []
    paths: list[Path] = []
    with matplotlib.rc_context(FIGURE_RC):
        for name, of_dataset in rows.groupby("dataset", sort=True):
            chosen = list(metrics or default_plot_metrics(name))
            built = {"rates": rate_curves(of_dataset, chosen), "patterns": pattern_bars(of_dataset, chosen),
                     "reconstruction": reconstruction_bars(of_dataset, log),
                     "cost": cost_scatter(of_dataset, chosen[0], log=log),
                     "matrix": matrix_heatmaps(of_dataset, chosen)}
            for kind, figures in built.items():
                if not figures:
                    log(f"skipped {kind} figure for {name}: {SKIPPED[kind]}")
                paths += [save_figure(figure, Path(out_dir), stem) for stem, figure in figures]
    return paths
