"""Robustness summaries of metric-vs-rate curves against hand-worked values and MultiBench's own formulas."""
import math

import pandas as pd
import pytest

from mmbench.reports import robustness

CURVE = {0.0: 0.80, 0.3: 0.70, 0.5: 0.60, 0.7: 0.50}


def test_normalised_area_is_the_trapezoid_over_the_rate_span():
    assert robustness.area(CURVE) == pytest.approx(0.225 + 0.13 + 0.11)
    assert robustness.normalised_area(CURVE) == pytest.approx(0.465 / 0.7)
    assert robustness.normalised_area({0.0: 0.6, 0.7: 0.6}) == pytest.approx(0.6)  # a flat curve: its level
    assert math.isnan(robustness.normalised_area({0.3: 0.6}))  # one rate: no span


def test_area_matches_multibench_step_of_a_tenth():
    values = [0.9, 0.85, 0.8, 0.7, 0.65, 0.6, 0.5, 0.45]
    multibench = sum((values[i] + values[i + 1]) * 0.1 / 2 for i in range(len(values) - 1))
    assert robustness.area({i / 10: v for i, v in enumerate(values)}) == pytest.approx(multibench)


def test_drop_is_positive_when_the_metric_gets_worse():
    assert robustness.drop(CURVE) == pytest.approx(0.30)
    assert robustness.drop({0.0: 1.0, 0.7: 1.3}, higher_is_better=False) == pytest.approx(0.30)  # MAE rises
    assert robustness.drop({0.7: 0.5, 0.0: 0.8}) == pytest.approx(0.30)  # order of the mapping is irrelevant


def test_effective_robustness_against_the_reference():
    fusion = {0.0: 0.85, 0.3: 0.70, 0.5: 0.55, 0.7: 0.40}
    assert robustness.effective_robustness(CURVE, fusion) == pytest.approx(0.0 + 0.05 + 0.10 + 0.15)
    assert robustness.effective_robustness(fusion, fusion) == pytest.approx(0.0)
    shifted = {r: v + 0.2 for r, v in fusion.items()}  # better everywhere by the same amount: not more robust
    assert robustness.effective_robustness(shifted, fusion) == pytest.approx(0.0)
    mae, mae_fusion = {0.0: 1.0, 0.7: 1.1}, {0.0: 1.0, 0.7: 1.3}
    assert robustness.effective_robustness(mae, mae_fusion, higher_is_better=False) == pytest.approx(0.2)
    assert math.isnan(robustness.effective_robustness(CURVE, {0.9: 0.5}))  # nothing in common


def test_relative_robustness_is_min_max_normalised_over_rows():
    assert robustness.relative_robustness({"a": 0.3, "b": 0.5, "c": 0.4}) == pytest.approx(
        {"a": 0.0, "b": 1.0, "c": 0.5})
    assert robustness.relative_robustness({"a": 0.3, "b": 0.5}, higher_is_better=False) == {"a": 1.0, "b": 0.0}
    assert all(math.isnan(v) for v in robustness.relative_robustness({"a": 0.3}).values())


def test_summarise_per_seed_with_and_without_a_reference():
    rows = [("ae", seed, rate, value + shift) for seed, shift in ((1, 0.0), (2, 0.02)) for rate, value in CURVE.items()]
    rows += [("fusion", 1, rate, value) for rate, value in {0.0: 0.85, 0.3: 0.70, 0.5: 0.55, 0.7: 0.40}.items()]
    curves = pd.DataFrame(rows, columns=["label", "seed", "rate", "value"])
    summary = robustness.summarise(curves, True, "fusion").set_index(["label", "summary"])
    assert summary.loc[("ae", "auc"), "mean"] == pytest.approx(0.465 / 0.7 + 0.01)
    assert summary.loc[("ae", "auc"), "std"] == pytest.approx(0.02 / math.sqrt(2))
    assert summary.loc[("ae", "effective_robustness"), "mean"] == pytest.approx(0.30)
    assert summary.loc[("fusion", "drop"), "std"] is None  # one seed
    assert summary.loc[("ae", "relative_robustness"), "mean"] == 1.0
    without = robustness.summarise(curves, True, None)
    assert "effective_robustness" not in set(without["summary"])
