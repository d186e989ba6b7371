"""The train-rate x test-rate matrix of ``--eval-rates`` runs: a table and its heat map.

A run trained at one condition (``--rates``) and tested at several (``--eval-rates``) fills one row of
the matrix; the diagonal is the usual per-rate result, the rest is how a model trained at one rate
holds up at the others. One matrix per (dataset, protocol, training setting, selection, method
configuration, metric); each cell averages that configuration's seeds only.
"""
from __future__ import annotations

import pandas as pd

from mmbench.reports.leaderboard import HEADERS, PLAIN_METRICS, format_cell, render_titled, table_title

#: One matrix per these columns (``label`` is the method configuration without its ``[train r]`` part).
MATRIX_KEYS = ["dataset", "protocol", "train_setting", "selection", "config_id", "metric"]


def matrix_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The aggregate rows of configurations tested beyond their training condition."""
    if rows.empty:
        return rows
    rows = rows[rows["protocol"] != "fixed"]  # a fixed model's train and test patterns are another story
    widened = set(rows.loc[rows["condition"] != rows["train_condition"], "config_id"])
    return rows[rows["config_id"].isin(widened)]


def _order(conditions) -> list[str]:
    return sorted(set(conditions), key=lambda c: (len(c) > 3, c))  # plain rates first, then imbalanced ids


def matrices(rows: pd.DataFrame, metrics: list[str] | None = None) -> list[tuple[str, str, pd.DataFrame]]:
    """(title, metric, table of mean ± std: rows = train condition, columns = test condition)."""
    rows = matrix_rows(rows)
    if metrics:
        rows = rows[rows["metric"].isin(metrics)]
    out = []
    for (dataset, protocol, setting, selection, _, metric), group in rows.groupby(MATRIX_KEYS, sort=True):
        label = group["label"].iloc[0].rsplit(" [train ", 1)[0]
        table = pd.DataFrame(index=_order(group["train_condition"]), columns=_order(group["condition"]),
                             dtype=object)
        for row in group.itertuples():
            table.loc[row.train_condition, row.condition] = format_cell(metric, row.mean, row.std)
        table = table.fillna("—")
        table.index.name = "train \\ test"
        title = (f"{label}, {HEADERS.get(metric, metric)}: train rate x test rate — "
                 f"{table_title(group, dataset, protocol, setting, selection)}")
        out.append((title, metric, table))
    return out


def render_matrices(rows: pd.DataFrame, fmt: str, metrics: list[str] | None = None) -> str:
    found = matrices(rows, metrics)
    if not found:
        return "no --eval-rates results in this store for the chosen filters"
    if fmt == "json":
        return "\n".join(table.to_json(orient="index") for _, _, table in found)
    return render_titled([(title, table) for title, _, table in found], fmt)


def matrix_heatmaps(rows: pd.DataFrame, metrics: list[str]) -> list[tuple[str, object]]:
    """(file stem, matplotlib Figure) per matrix: colour = mean, each cell annotated."""
    from mmbench.reports.palette import metric_name, new_figure, set_title

    figures = []
    selected = matrix_rows(rows)
    selected = selected[selected["metric"].isin(metrics)]
    for key, group in selected.groupby(MATRIX_KEYS, sort=True):
        metric = key[-1]
        scale = 1.0 if metric in PLAIN_METRICS else 100.0
        means = group.pivot_table(index="train_condition", columns="condition", values="mean") * scale
        means = means.reindex(index=_order(means.index), columns=_order(means.columns))
        figure = new_figure(1, panel_width=max(4.5, 0.75 * len(means.columns) + 2), height=max(3.2, 0.5 * len(means) + 2))
        axes = figure.axes[0]
        axes.grid(False)  # grid lines would cut through the cells
        lower_is_better = metric in ("mae",)
        image = axes.imshow(means.to_numpy(dtype=float), cmap="viridis_r" if lower_is_better else "viridis",
                            aspect="auto")
        axes.set_xticks(range(len(means.columns)), means.columns, rotation=45 if len(means.columns) > 6 else 0)
        axes.set_yticks(range(len(means.index)), means.index)
        axes.set_xlabel("test missing rate")
        axes.set_ylabel("training missing rate")
        for (i, j), value in pd.DataFrame(means.to_numpy()).stack().items():
            red, green, blue, _ = image.cmap(image.norm(value))
            dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5  # the cell's luminance picks the text colour
            axes.text(j, i, f"{value:.{3 if scale == 1 else 1}f}", ha="center", va="center", fontsize=10,
                      color="white" if dark else "black")
        colorbar = figure.colorbar(image, ax=axes)
        colorbar.set_label(metric_name(metric) + ("" if scale == 1 else " (%)"))
        label = group["label"].iloc[0].rsplit(" [train ", 1)[0]
        set_title(figure, group, f"{label}: {metric_name(metric)}, train rate x test rate")
        dataset, protocol, setting = key[0], key[1], key[2]
        figures.append((f"matrix_{dataset}_{protocol}_{setting}_{label.replace(' ', '_')}_{metric}", figure))
    return figures
