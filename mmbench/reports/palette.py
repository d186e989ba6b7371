"""The look every figure shares: a colour per method, fonts, axis labels with units, titles, legends, files.

A method keeps its colour in every figure and every call, so a reader who learnt that IMDer is
indigo in the rate curves finds it indigo in the bars. The colours are fixed, not drawn in order of
appearance:

- the reference methods: ``mean`` (the floor) grey and dashed, ``fusion`` (the lower bound) black;
- the methods of the README's table, in that order, take Paul Tol's colour-blind-safe "muted"
  palette (https://personal.sron.nl/~pault/);
- any other name (ablation variants, methods registered later, names only the store knows) takes
  the next free colour of an extension pool (Okabe-Ito, then tab10), in a deterministic order:
  registered names sorted, then unregistered names sorted. Markers cycle with another period, so
  (colour, marker) pairs stay distinct past the pool's length.

Several configurations of one method (``fusion [quick]`` beside ``fusion [paper]``) keep the
method's colour and differ by line style (curves) or hatching (bars).

Every axis names its unit (accuracies in percent, MAE in label units, costs in seconds, counts or
milliseconds), every title says which data (flagging synthetic data), protocol, training setting and
how many seeds, and the one legend of a figure sits outside its panels so it never hides data.
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mmbench.registry import method_names


@dataclass(frozen=True)
class MethodStyle:
    """How one method is drawn: ``color``, the curve's ``linestyle`` and its ``marker``."""

    color: str
    linestyle: str = "-"
    marker: str = "o"


#: Order of the README's method table: the order of the fixed colours and of every legend.
METHOD_ORDER: tuple[str, ...] = ("mean", "fusion", "ae", "cra", "mmin", "smcmsa", "imder", "corrkd", "limssr",
                                 "omg-agent")
_FIXED: dict[str, MethodStyle] = {
    "mean": MethodStyle("#777777", "--", "x"),
    "fusion": MethodStyle("#000000", "-", "s"),
    # Tol "muted", one hue per published method (its wine #882255 opens the extension pool).
    "ae": MethodStyle("#88CCEE", "-", "o"),
    "cra": MethodStyle("#44AA99", "-", "^"),
    "mmin": MethodStyle("#117733", "-", "D"),
    "smcmsa": MethodStyle("#999933", "-", "v"),
    "imder": MethodStyle("#332288", "-", "P"),
    "corrkd": MethodStyle("#AA4499", "-", "X"),
    "limssr": MethodStyle("#DDCC77", "-", "h"),
    "omg-agent": MethodStyle("#CC6677", "-", "*"),
}
#: Colours for every other name: Tol's last muted hue, Okabe-Ito (no black, no pale yellow), tab10 (no grey).
_EXTRA_COLORS: tuple[str, ...] = (
    "#882255", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7",
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
)
_EXTRA_MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "h", "<", ">", "p")
#: Line styles and bar hatches of a method's 2nd, 3rd, ... configuration (the first is the method's own).
_CONFIG_LINESTYLES: tuple = ("-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
_CONFIG_HATCHES: tuple[str, ...] = ("//", "..", "xx", "\\\\")

#: Fonts of at least 10 pt at the saved size; applied with ``matplotlib.rc_context``.
FIGURE_RC: dict[str, object] = {
    "font.size": 11, "axes.titlesize": 11, "axes.labelsize": 11, "figure.titlesize": 12,
    "xtick.labelsize": 10, "ytick.labelsize": 10, "legend.fontsize": 10,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
}
FIGURE_FORMATS: tuple[str, ...] = ("png", "pdf")
PNG_DPI = 150


@lru_cache(maxsize=1)
def _registered_others() -> tuple[str, ...]:
    # Installed names only: a name a test registers at run time must not shift everyone's colour.
    return tuple(n for n in method_names(include_runtime=False) if n not in _FIXED)


def method_styles(names: Iterable[str] = ()) -> dict[str, MethodStyle]:
    """The style of every known method and of ``names``; the same name always gets the same style.

    Example:
        >>> styles = method_styles(["fusion", "mean"])
        >>> styles["fusion"].color, styles["mean"].linestyle
        ('#000000', '--')
    """
    registered = _registered_others()
    unknown = sorted(set(names) - set(_FIXED) - set(registered))
    styles = dict(_FIXED)
    for index, name in enumerate(registered + tuple(unknown)):
        styles[name] = MethodStyle(_EXTRA_COLORS[index % len(_EXTRA_COLORS)], "-",
                                   _EXTRA_MARKERS[index % len(_EXTRA_MARKERS)])
    return styles


def method_sort_key(name: str) -> tuple[int, str]:
    """Legend order: the README's table order, then every other name alphabetically."""
    return (METHOD_ORDER.index(name), "") if name in METHOD_ORDER else (len(METHOD_ORDER), name)


def config_linestyle(style: MethodStyle, config_index: int):
    """Line style of a method's ``config_index``-th configuration (0: the method's own)."""
    if config_index == 0:
        return style.linestyle
    return _CONFIG_LINESTYLES[(config_index - 1) % len(_CONFIG_LINESTYLES)]


def config_hatch(config_index: int) -> str | None:
    """Bar hatching of a method's ``config_index``-th configuration (0: none)."""
    return None if config_index == 0 else _CONFIG_HATCHES[(config_index - 1) % len(_CONFIG_HATCHES)]


def new_figure(n_panels: int, *, panel_width: float = 4.4, height: float = 3.6) -> Figure:
    """A figure of ``n_panels`` side by side, drawn by the Agg canvas (no display needed).

    Constrained layout makes room for a legend placed ``outside`` the axes (see :func:`figure_legend`).
    """
    figure = Figure(figsize=(panel_width * n_panels + 2.4, height), layout="constrained")
    FigureCanvasAgg(figure)
    figure.subplots(1, n_panels, squeeze=False)
    return figure


#: Characters per line of a legend label before it wraps.
LEGEND_WRAP = 34


def figure_legend(figure: Figure, order: Sequence[str] = ()) -> None:
    """One legend for all panels, right of them so it never hides data.

    Labels of ``order`` come first, then the others as the panels show them, each once.
    """
    handles, labels = {}, list(order)
    for axes in figure.axes:
        for handle, label in zip(*axes.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = handle
                labels += [] if label in labels else [label]
    labels = [label for label in labels if label in handles]
    columns = 1 if len(labels) <= 14 else 2
    # Centred beside the panels, below the title; a long legend makes the figure taller, not cramped.
    figure.set_figheight(max(figure.get_figheight(), 0.3 * math.ceil(len(labels) / columns) + 1.6))
    # A configuration's label can run long ("ae [tuned, lr=..., ...]"): wrapped, it leaves the panels their width.
    shown = [textwrap.fill(label, LEGEND_WRAP, subsequent_indent="  ") for label in labels]
    figure.legend([handles[label] for label in labels], shown, loc="outside right center", ncols=columns,
                  frameon=False)


def save_figure(figure: Figure, out_dir: Path, stem: str) -> Path:
    """Write ``<stem>.png`` and ``<stem>.pdf`` under ``out_dir``; return the PNG's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for fmt in FIGURE_FORMATS:
        # No bbox_inches="tight": constrained layout already fits the legend and titles in the figure.
        figure.savefig(out_dir / f"{stem}.{fmt}", dpi=PNG_DPI, metadata=_metadata(fmt))
    return out_dir / f"{stem}.png"


def _metadata(fmt: str) -> dict:
    # No creation date: the same store gives byte-identical PDFs (committed figures do not churn).
    return {"CreationDate": None} if fmt == "pdf" else {}


#: Axis labels with their units; accuracies and F1 are built by :func:`axis_label`.
METRIC_AXES: dict[str, str] = {
    "mae": "MAE (label units; lower is better)", "corr": "Corr (Pearson r)",
    "train_s": "training time (s, log scale)", "params": "parameters (count, log scale)",
    "infer_ms": "inference time per sample (ms, log scale)", "peak_mem_mb": "peak memory (MiB, log scale)",
}


def axis_label(metric: str) -> str:
    """The axis label of a stored metric, with its unit.

    Example:
        >>> axis_label("acc2_non0"), axis_label("f1")
        ('ACC2, Non0 (%)', 'F1 (%)')
    """
    if metric.startswith(("acc", "f1")):
        name, _, variant = metric.partition("_")
        return f"{name.upper()}{', ' + variant.capitalize() if variant else ''} (%)"
    return METRIC_AXES.get(metric, metric)


def metric_name(metric: str) -> str:
    """The label without its unit, for titles: ``ACC2, Non0``."""
    return axis_label(metric).split(" (")[0]


def display_scale(metric: str) -> float:
    """Factor from the stored unit to the axis's: accuracies and F1 are stored as fractions, shown in %."""
    return 100.0 if metric.startswith(("acc", "f1")) else 1.0


def seed_text(counts: Iterable[int]) -> str:
    """``[3]`` -> ``3 seeds``; ``[1, 3]`` -> ``1–3 seeds``."""
    seeds = sorted({int(n) for n in counts})
    if len(seeds) > 1:
        return f"{seeds[0]}–{seeds[-1]} seeds"
    return "1 seed" if seeds == [1] else f"{seeds[0]} seeds"


def set_title(figure: Figure, rows: pd.DataFrame, what: str) -> None:
    """Dataset (flagged when synthetic), what is shown, protocol, setting, selection, seeds of ``rows``."""
    first = rows.iloc[0]
    synthetic = " [SYNTHETIC data]" if rows["synthetic"].astype(bool).any() else ""
    oracle = "; checkpoints chosen on TEST (oracle)" if first["selection"] != "valid" else ""
    figure.suptitle(f"{first['dataset']}{synthetic}: {what}\n{first['protocol']} protocol, training: "
                    f"{first['train_setting']}{oracle}; mean ± 1 std over {seed_text(rows['n_seeds'])}")


def compact_number(value: float, _position=None) -> str:
    """Tick text without exponents (a matplotlib ``FuncFormatter``): 0.05, 20, 3k, 2M."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:g}{suffix}"
    return f"{value:g}"
