"""``mmbench plot``: files written, one colour per method everywhere, the Pareto front, legends off the data."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest
from matplotlib.colors import to_rgba
from matplotlib.text import Text

from mmbench.cli import main
from mmbench.constants import TABLE_PATTERN_ORDER
from mmbench.reports.aggregate import aggregate
from mmbench.reports.palette import FIGURE_RC, method_styles
from mmbench.reports.plots import cost_scatter, make_figures, pareto_front, pattern_bars, rate_curves, \
    reconstruction_bars
from mmbench.results import MetricRow, ResultStore, RunRecord
from mmbench.results.keys import config_id, key_hash

SEEDS = (1111, 1112)
#: (method, ACC2 Non0 at LVA, training seconds): fusion and imder are on the front, ae is dominated by fusion.
METHODS = {"fusion": (0.80, 10.0), "ae": (0.78, 40.0), "imder": (0.85, 400.0)}


def record(run_id: str, method: str, seed: int, values: dict, *, dataset: str = "mosi-synth", protocol: str = "fixed",
           condition: str = "all", **key_changes) -> RunRecord:
    """A finished run whose key is built like the runner's; ``values`` maps (condition, metric) -> value."""
    key = {"dataset": dataset, "method": method, "protocol": protocol, "condition": condition, "seed": seed,
           "train_setting": "complete" if protocol == "fixed" else "same", "selection": "valid", "profile": "paper",
           "limit": None, "budget": {"max_epochs": 30, "early_stop_patience": 10}, "method_config": {},
           "data_sha256": "d" * 64, "mmbench_version": "0.2.0", "method_version": "1", **key_changes}
    metrics = [MetricRow("test", c, metric, value) for (c, metric), value in values.items()]
    return RunRecord(run_id=run_id, config_hash=key_hash(key), dataset=dataset, data_sha256="", method=method,
                     protocol=protocol, condition=condition, train_setting=key["train_setting"], selection="valid",
                     seed=seed, mask_sha256="", status="finished", started_at="2026-01-01T00:00:00",
                     ended_at="2026-01-01T00:00:00", synthetic=dataset.endswith("synth"), package_version="0",
                     git_commit=None, config=key, config_id=config_id(key), n_test=100, metrics=metrics)


def fixed_values(accuracy: float, train_s: float, seed_shift: float, *, with_recovery: bool) -> dict:
    values = {}
    for index, pattern in enumerate(TABLE_PATTERN_ORDER):
        score = accuracy - 0.03 * (len(TABLE_PATTERN_ORDER) - 1 - index) + seed_shift
        values.update({(pattern, "acc2_non0"): score, (pattern, "mae"): 1.5 - score,
                       (pattern, "train_s"): train_s, (pattern, "params"): 1000 * train_s, (pattern, "infer_ms"): 0.1})
        for modality in "LVA":
            if with_recovery and modality not in pattern:
                values.update({(pattern, f"rec_mse_{modality}"): 0.5 + seed_shift,
                               (pattern, f"rec_mse_{modality}_zero"): 1.0, (pattern, f"rec_mse_{modality}_mean"): 0.8})
    return values


@pytest.fixture()
def store(tmp_path):
    store = ResultStore(tmp_path / "store")
    for method, (accuracy, train_s) in METHODS.items():
        for seed, shift in zip(SEEDS, (-0.01, 0.01)):
            values = fixed_values(accuracy, train_s, shift, with_recovery=method != "fusion")
            store.save(record(f"{method}-fixed-{seed}", method, seed, values))
            for rate in ("0.0", "0.3", "0.5"):
                score = accuracy - float(rate) / 2 + shift
                store.save(record(f"{method}-{rate}-{seed}", method, seed,
                                  {(rate, "acc2_non0"): score, (rate, "mae"): 1.5 - score},
                                  protocol="random", condition=rate))
    return store


def test_every_figure_is_written_as_png_and_pdf(store, tmp_path):
    paths = make_figures(store, tmp_path / "figures")
    assert sorted(p.name for p in paths) == sorted([
        "rates_mosi-synth_random_same.png", "patterns_mosi-synth_fixed_complete_acc2_non0.png",
        "patterns_mosi-synth_fixed_complete_mae.png", "reconstruction_mosi-synth_fixed_complete.png",
        "cost_mosi-synth_fixed_complete_acc2_non0.png"])
    for png in paths:
        assert png.read_bytes()[:4] == b"\x89PNG"
        assert png.with_suffix(".pdf").read_bytes()[:4] == b"%PDF"


def test_figures_whose_inputs_are_absent_are_skipped_with_a_reason(tmp_path):
    store = ResultStore(tmp_path / "store")
    store.save(record("f1", "fusion", 1111, {("LVA", "acc2_non0"): 0.8, ("LVA", "mae"): 0.7}))
    messages = []
    paths = make_figures(store, tmp_path / "figures", log=messages.append)
    assert [p.name for p in paths] == ["patterns_mosi-synth_fixed_complete_acc2_non0.png",
                                       "patterns_mosi-synth_fixed_complete_mae.png"]
    skipped = " ".join(messages)
    assert "skipped rates" in skipped and "skipped reconstruction" in skipped and "skipped cost" in skipped
    assert "train_s" in skipped  # the reason names what is missing


def _colour_of(figure, label: str):
    """The colour of the artist labelled ``label`` (a line, or the first bar of a bar set)."""
    for axes in figure.axes:
        for line in axes.get_lines():
            if line.get_label() == label:
                return to_rgba(line.get_color())
        for bars in axes.containers:
            if bars.get_label() == label:
                return bars.patches[0].get_facecolor()
    raise AssertionError(f"no artist labelled {label!r}")


def test_a_method_keeps_its_colour_across_figures_and_calls(store):
    rows = aggregate(store)
    (_, curves), = rate_curves(rows, ["acc2_non0", "mae"])
    _, bars = pattern_bars(rows, ["acc2_non0", "mae"])[0]
    (_, recovery), = reconstruction_bars(rows)
    for method in ("ae", "imder"):
        expected = to_rgba(method_styles()[method].color)
        assert _colour_of(curves, method) == _colour_of(bars, method) == _colour_of(recovery, method) == expected
    assert _colour_of(curves, "fusion") == to_rgba("black")
    assert method_styles()["mean"].linestyle == "--" and method_styles()["mean"].color == "#777777"
    # Unknown names: distinct, deterministic, and they never move a known method's colour.
    first, second = method_styles(["zz-new", "aa-new"]), method_styles(["aa-new", "zz-new"])
    assert first == second and first["aa-new"].color != first["zz-new"].color
    assert first["imder"] == method_styles()["imder"]


def test_pareto_front_is_the_known_non_dominated_set():
    # (3, .55) is dominated by (2, .6); (5, .8) by (4, .8); the duplicate (2, .6) dominates neither copy.
    assert pareto_front([1, 2, 3, 4, 5, 2], [0.5, 0.6, 0.55, 0.8, 0.8, 0.6]) == [0, 1, 5, 3]
    assert pareto_front([1, 2, 3], [1.0, 0.9, 1.2], higher_is_better=False) == [0, 1]  # MAE: lower wins


def test_cost_figure_marks_the_front_through_the_non_dominated_methods(store):
    (_, figure), = cost_scatter(aggregate(store), "acc2_non0")
    training_time = figure.axes[0]
    front, = [line for line in training_time.get_lines() if line.get_label() == "Pareto front"]
    assert training_time.get_xscale() == "log"
    assert list(front.get_xdata()) == [10.0, 400.0]  # fusion, imder; ae (40 s, worse than fusion) is off it
    assert "training time (s" in training_time.get_xlabel()


def test_each_configuration_is_its_own_line_in_the_method_colour(tmp_path):
    store = ResultStore(tmp_path / "store")
    for epochs, accuracy in ((5, 0.6), (30, 0.8)):
        for rate in ("0.0", "0.5"):
            store.save(record(f"f{epochs}-{rate}", "fusion", 1111, {(rate, "acc2_non0"): accuracy},
                              protocol="random", condition=rate, budget={"max_epochs": epochs}))
    (_, figure), = rate_curves(aggregate(store), ["acc2_non0"])
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert set(lines) == {"fusion [max_epochs=5]", "fusion [max_epochs=30]"}
    assert list(lines["fusion [max_epochs=5]"].get_ydata()) == pytest.approx([60.0, 60.0])  # percent, not mixed
    assert lines["fusion [max_epochs=5]"].get_color() == lines["fusion [max_epochs=30]"].get_color()
    assert lines["fusion [max_epochs=5]"].get_linestyle() != lines["fusion [max_epochs=30]"].get_linestyle()


def test_legends_sit_outside_the_data_fonts_are_readable_and_titles_flag_synthetic_data(store):
    rows = aggregate(store)
    with matplotlib.rc_context(FIGURE_RC):  # as make_figures draws them
        figures = (rate_curves(rows, ["acc2_non0", "mae"]) + pattern_bars(rows, ["acc2_non0"])
                   + reconstruction_bars(rows) + cost_scatter(rows, "acc2_non0"))
        for stem, figure in figures:
            figure.canvas.draw()
            renderer = figure.canvas.get_renderer()
            legend, = figure.legends
            box = legend.get_window_extent(renderer)
            assert not box.overlaps(figure._suptitle.get_window_extent(renderer)), stem
            for axes in figure.axes:
                assert not box.overlaps(axes.get_window_extent(renderer)), stem
                assert axes.get_xlabel() and axes.get_ylabel(), stem
            sizes = [text.get_fontsize() for text in figure.findobj(Text) if text.get_text()]
            assert min(sizes) >= 10, stem
            assert "[SYNTHETIC data]" in figure._suptitle.get_text(), stem


def test_plot_command_prints_the_files_it_wrote(tmp_path, capsys):
    store = ResultStore(tmp_path / "store")
    store.save(record("f1", "fusion", 1111, {("LVA", "acc2_non0"): 0.8, ("LVA", "mae"): 0.7}))
    store.save(record("b1", "fusion", 1111, {("LVA", "mae"): 0.5}, dataset="mosi-bclstm"))
    out = tmp_path / "cli"
    assert main(["plot", "--results", str(tmp_path / "store"), "--out", str(out), "--metric", "mae",
                 "--dataset", "mosi-bclstm"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / "patterns_mosi-bclstm_fixed_complete_mae.png"),
                       str(out / "patterns_mosi-bclstm_fixed_complete_mae.pdf")]
    assert all(Path(name).exists() for name in printed)
    assert sorted(p.name for p in out.iterdir()) == ["patterns_mosi-bclstm_fixed_complete_mae.pdf",
                                                     "patterns_mosi-bclstm_fixed_complete_mae.png"]
