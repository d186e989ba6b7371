"""Metric definitions: hand-worked cases, sklearn/scipy and an MMSA-style reference, every API."""
import doctest
import math

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr
from sklearn.metrics import accuracy_score, f1_score

import mmbench.metrics.functional as F
import mmbench.metrics.modular as modular
import mmbench.metrics.reconstruction as reconstruction
from mmbench.data.registry import metric_family
from mmbench.metrics import (HIGHER_IS_BETTER, METRIC_KEYS, ReconstructionMetrics, SentimentMetrics, TrainingMeans,
                             mean_condition_mae, reconstruction_metrics, recovery_fidelity, regression_metrics)


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


# ---------------------------------------------------------------- hand-worked MOSI/MOSEI cases
def test_has0_and_non0_differ_on_zero_labels():
    preds, labels = t(0.5, -0.5, 1.0, -1.0, 0.0), t(0.0, 0.0, 2.0, -2.0, 1.0)
    # Has0: pred >= 0 -> T F T F T, label >= 0 -> T T T F T: 4 of 5 agree.
    assert float(F.acc2_has0(preds, labels)) == pytest.approx(0.8)
    # Non0: the two zero labels go; a prediction of exactly 0 counts as negative: T F F vs T F T.
    assert float(F.acc2_non0(preds, labels)) == pytest.approx(2 / 3)


def test_weighted_f1_hand_worked():
    preds, labels = t(1.0, 1.0, -1.0, -1.0), t(1.0, -1.0, -1.0, -1.0)
    # positive: P=1/2, R=1, F1=2/3 (support 1); negative: P=1, R=2/3, F1=4/5 (support 3).
    expected = (1 * 2 / 3 + 3 * 4 / 5) / 4
    assert float(F.f1_has0(preds, labels)) == pytest.approx(expected, abs=1e-6)
    # The argument order matters: weights are the *labels'* supports (MMSA issue #17).
    assert float(F.f1_has0(labels, preds)) == pytest.approx((2 * 2 / 3 + 2 * 4 / 5) / 4, abs=1e-6)


def test_single_class():
    labels = t(1.0, 2.0, 0.5)
    assert float(F.acc2_non0(t(0.1, 3.0, 1.0), labels)) == 1.0
    assert float(F.f1_non0(t(0.1, 3.0, 1.0), labels)) == 1.0
    assert float(F.acc2_non0(t(-0.1, -3.0, 0.0), labels)) == 0.0
    assert float(F.f1_non0(t(-0.1, -3.0, 0.0), labels)) == 0.0
    assert float(F.f1_has0(t(0.0, 0.0, 0.0), labels)) == 1.0  # 0 is non-negative under Has0


def test_non0_undefined_without_non_zero_labels():
    assert math.isnan(float(F.acc2_non0(t(1.0, -1.0), t(0.0, 0.0))))
    assert math.isnan(float(F.f1_non0(t(1.0, -1.0), t(0.0, 0.0))))


def test_acc7_rounds_half_to_even_and_clips():
    # 2.5 -> 2, 1.5 -> 2, -2.5 -> -2, 0.5 -> 0, -0.5 -> -0 == 0, 3.7 -> clip 3.
    assert float(F.acc7(t(2.5, 1.5, -2.5, 0.5, -0.5, 3.7), t(2.0, 2.0, -2.0, 0.0, 0.0, 3.0))) == 1.0
    assert float(F.acc7(t(2.5), t(3.0))) == 0.0
    assert float(F.acc7(t(-4.0), t(-3.0))) == 1.0


def test_acc5_clips_to_two():
    assert float(F.acc5(t(2.6, -3.0, 2.5), t(3.0, -2.2, 2.0))) == 1.0
    assert float(F.acc5(t(1.4), t(2.0))) == 0.0


def test_mae_and_corr_hand_worked():
    assert float(F.mae(t(0.0, 1.0, -1.0), t(1.0, 3.0, -1.0))) == pytest.approx(1.0)
    assert float(F.corr(t(1.0, 2.0, 3.0), t(2.0, 4.0, 6.0))) == pytest.approx(1.0)
    assert float(F.corr(t(1.0, 2.0, 3.0), t(6.0, 4.0, 2.0))) == pytest.approx(-1.0)


def test_corr_of_a_constant_is_zero_not_nan():
    assert float(F.corr(t(0.3, 0.3, 0.3), t(1.0, -1.0, 2.0))) == 0.0
    assert float(F.corr(t(1.0, -1.0, 2.0), t(0.5, 0.5, 0.5))) == 0.0
    assert regression_metrics(t(0.3, 0.3, 0.3), t(1.0, -1.0, 2.0), "mosi")["corr"] == 0.0


def test_corr_of_a_peaked_prediction_is_finite():
    # Constant but for one sample: float32 torchmetrics would call this zero variance (NaN).
    preds = torch.zeros(5000)
    preds[0] = 1.0
    labels = torch.linspace(-3, 3, 5000)
    assert float(F.corr(preds, labels)) == pytest.approx(pearsonr(preds.double().numpy(), labels.double().numpy())[0],
                                                    abs=1e-9)


# ---------------------------------------------------------------- CH-SIMS
@pytest.mark.parametrize("edge", [-0.7, -0.1, 0.1, 0.7])
def test_sims_bins_are_right_closed(edge):
    label = t(edge)
    assert float(F.sims_acc5(t(edge - 0.01), label)) == 1.0  # the edge belongs to the lower bin
    assert float(F.sims_acc5(t(edge + 0.01), label)) == 0.0


def test_sims_two_and_three_classes():
    assert float(F.sims_acc2(t(0.0, -1.0, 0.01), t(-0.5, 0.0, 1.0))) == 1.0  # 0 is in [-1, 0]
    assert float(F.sims_acc3(t(0.1, -0.1, 0.11), t(-0.09, -1.0, 1.0))) == 1.0
    assert float(F.sims_acc3(t(0.1), t(0.11))) == 0.0


def _mmsa_sims_classes(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """MMSA's metricsTop.py loop: value in (edges[i], edges[i+1]] -> i, in float32."""
    values = np.clip(values.astype(np.float32), -1.0, 1.0)
    out = values.copy()
    for i in range(len(edges) - 1):
        out[np.logical_and(values > edges[i], values <= edges[i + 1])] = i
    return out


def test_sims_matches_mmsa_binning_on_grid_values():
    rng = np.random.default_rng(0)
    labels = (np.round(rng.uniform(-1, 1, 500) * 10) / 10).astype(np.float32)  # CH-SIMS' 0.1 grid
    preds = np.concatenate([(np.round(rng.uniform(-1.2, 1.2, 250) * 10) / 10),
                            rng.uniform(-1.2, 1.2, 250)]).astype(np.float32)
    out = regression_metrics(torch.from_numpy(preds), torch.from_numpy(labels), "sims")
    for key, edges in (("acc2", [-1.01, 0.0, 1.01]), ("acc3", [-1.01, -0.1, 0.1, 1.01]),
                       ("acc5", [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01])):
        expected = np.mean(_mmsa_sims_classes(preds, edges) == _mmsa_sims_classes(labels, edges))
        assert out[key] == pytest.approx(expected, abs=1e-12), key
    two_p, two_l = _mmsa_sims_classes(preds, [-1.01, 0.0, 1.01]), _mmsa_sims_classes(labels, [-1.01, 0.0, 1.01])
    assert out["f1"] == pytest.approx(f1_score(two_l, two_p, average="weighted"), abs=1e-6)
    clipped = np.clip(preds, -1, 1).astype(np.float64)
    assert out["mae"] == pytest.approx(np.mean(np.abs(clipped - labels)), abs=1e-9)
    assert out["corr"] == pytest.approx(pearsonr(clipped, labels)[0], abs=1e-9)


def test_sims_clips_predictions_for_mae():
    assert regression_metrics(t(1.5, -2.0), t(1.0, -1.0), "sims")["mae"] == 0.0
    assert regression_metrics(t(4.5, -4.0), t(3.0, -3.0), "mosi")["mae"] == pytest.approx(1.25)


# ---------------------------------------------------------------- references on random data
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mosi_family_matches_sklearn_and_scipy(seed):
    rng = np.random.default_rng(seed)
    labels = (np.round(rng.uniform(-3, 3, 400) * 3) / 3).astype(np.float32)  # ~5% exact zeros
    labels[:20] = 0.0
    preds = (labels + rng.normal(0, 1.2, 400)).astype(np.float32)
    preds[:5] = 0.0
    out = regression_metrics(torch.from_numpy(preds), torch.from_numpy(labels), "mosei")
    assert set(out) == set(METRIC_KEYS["mosi"])
    assert out["acc2_has0"] == pytest.approx(accuracy_score(labels >= 0, preds >= 0), abs=1e-12)
    assert out["f1_has0"] == pytest.approx(f1_score(labels >= 0, preds >= 0, average="weighted"), abs=1e-6)
    nz = labels != 0
    assert out["acc2_non0"] == pytest.approx(accuracy_score(labels[nz] > 0, preds[nz] > 0), abs=1e-12)
    assert out["f1_non0"] == pytest.approx(f1_score(labels[nz] > 0, preds[nz] > 0, average="weighted"), abs=1e-6)
    for key, bound in (("acc7", 3.0), ("acc5", 2.0)):
        expected = np.mean(np.round(np.clip(preds, -bound, bound)) == np.round(np.clip(labels, -bound, bound)))
        assert out[key] == pytest.approx(expected, abs=1e-12)
    assert out["mae"] == pytest.approx(np.mean(np.abs(preds.astype(np.float64) - labels)), abs=1e-9)
    assert out["corr"] == pytest.approx(pearsonr(preds.astype(np.float64), labels.astype(np.float64))[0], abs=1e-9)


@pytest.mark.parametrize("dataset,family", [("mosi", "mosi"), ("mosei-synth", "mosei"), ("mosi-bclstm", "mosi"),
                                            ("sims", "sims"), ("sims2-synth", "sims")])
def test_the_data_registry_names_the_family_and_the_family_the_keys(dataset, family):
    assert metric_family(dataset) == family
    out = regression_metrics([0.1, -0.5, 0.9], [0.2, -0.4, 0.0], metric_family(dataset))
    assert tuple(out) == METRIC_KEYS[family]
    assert all(isinstance(v, float) for v in out.values())
    assert METRIC_KEYS["mosei"] == METRIC_KEYS["mosi"]


@pytest.mark.parametrize("dataset", ["mosei-synth", "sims2-synth", "mosi-bclstm"])
def test_a_dataset_name_is_refused_where_a_family_is_expected(dataset):
    # Metrics are pure: they never look a dataset up; the message names the helper that does.
    with pytest.raises(ValueError, match=rf"metric_family\('{dataset}'\)"):
        regression_metrics([0.1, -0.5], [0.2, -0.4], dataset)
    with pytest.raises(ValueError, match="metric_family"):
        SentimentMetrics(dataset)


def test_unknown_datasets_have_no_family():
    with pytest.raises(KeyError, match="unknown dataset 'simsx'"):
        metric_family("simsx")


def test_the_validation_monitor_is_the_mean_of_each_conditions_mae():
    # 3 samples at MAE 1 and 1 sample at MAE 3: each condition weighs the same -> 2, not the pooled 1.5.
    ones = (t(0.0, 0.0, 0.0), t(1.0, -1.0, 1.0))
    assert float(mean_condition_mae([ones, (t(0.0), t(3.0))])) == 2.0
    pairs = [(torch.randn(5), torch.randn(5)) for _ in range(7)]
    assert float(mean_condition_mae(pairs)) == pytest.approx(np.mean([float(F.mae(p, y)) for p, y in pairs]))
    assert math.isnan(float(mean_condition_mae([(t(float("nan")), t(1.0))])))  # early stopping sees divergence
    with pytest.raises(ValueError, match="no condition"):
        mean_condition_mae([])


@pytest.mark.parametrize("preds,labels", [([float("nan"), 1.0], [0.0, 1.0]), ([1.0, 2.0], [1.0]), ([], [])])
def test_bad_inputs_raise(preds, labels):
    with pytest.raises(ValueError, match="regression_metrics"):
        regression_metrics(preds, labels, "mosi")


def test_higher_is_better_covers_every_key():
    for keys in METRIC_KEYS.values():
        for key in keys:
            assert HIGHER_IS_BETTER[key] is (key != "mae")
    assert HIGHER_IS_BETTER["rec_mse_V"] is False and HIGHER_IS_BETTER["rec_mse_A_zero"] is False
    assert HIGHER_IS_BETTER["rec_mse_L_mean"] is False
    assert HIGHER_IS_BETTER["rec_cos_L"] is True and HIGHER_IS_BETTER["rec_cos_V_mean"] is True


# ---------------------------------------------------------------- modular == functional
@pytest.mark.parametrize("family", ["mosi", "sims"])
def test_modular_batches_equal_one_shot_functional(family):
    rng = np.random.default_rng(3)
    scale = 1.0 if family == "sims" else 3.0
    labels = torch.from_numpy((np.round(rng.uniform(-1, 1, 250) * 10) / 10 * scale).astype(np.float32))
    preds = labels + torch.from_numpy(rng.normal(0, 0.4 * scale, 250).astype(np.float32))
    metric = SentimentMetrics(family)
    for start in range(0, 250, 32):
        metric.update(preds[start:start + 32].unsqueeze(1), labels[start:start + 32])
    assert metric.compute() == regression_metrics(preds, labels, family)
    assert set(metric.higher_is_better_per_key) == set(METRIC_KEYS[family])
    metric.reset()
    metric.update(preds[:10], labels[:10])
    assert metric.compute() == regression_metrics(preds[:10], labels[:10], family)


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_modular_without_updates_raises():
    with pytest.raises(ValueError, match="no predictions"):
        SentimentMetrics("mosi").compute()


# ---------------------------------------------------------------- reconstruction fidelity
def _rec_case(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    truth = {"L": torch.randn(6, 4, 3, generator=gen), "V": torch.randn(6, 5, generator=gen)}
    recovered = {m: v + 0.3 * torch.randn(v.shape, generator=gen) for m, v in truth.items()}
    missing = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=torch.bool)
    train_mean = {"L": torch.full((3,), 0.1), "V": torch.full((5,), -0.2)}
    return recovered, truth, missing, train_mean


def test_reconstruction_matches_a_per_sample_loop():
    recovered, truth, missing, train_mean = _rec_case()
    out = reconstruction_metrics(recovered, truth, missing, train_mean)
    assert set(out) == {f"rec_{k}_{m}{s}" for m in "LV" for k, s in
                        (("mse", ""), ("cos", ""), ("mse", "_zero"), ("mse", "_mean"), ("cos", "_mean"))}
    for position, m in ((0, "L"), (1, "V")):
        rows = [i for i in range(6) if missing[i, position]]
        r = [recovered[m][i].reshape(-1).double() for i in rows]
        y = [truth[m][i].reshape(-1).double() for i in rows]
        mean = train_mean[m].double().expand(truth[m].shape[1:]).reshape(-1)
        assert out[f"rec_mse_{m}"] == pytest.approx(np.mean([float(((a - b) ** 2).mean()) for a, b in zip(r, y)]))
        assert out[f"rec_cos_{m}"] == pytest.approx(np.mean([float(a @ b / (a.norm() * b.norm()))
                                                             for a, b in zip(r, y)]))
        assert out[f"rec_mse_{m}_zero"] == pytest.approx(np.mean([float((b ** 2).mean()) for b in y]))
        assert out[f"rec_mse_{m}_mean"] == pytest.approx(np.mean([float(((mean - b) ** 2).mean()) for b in y]))
        assert out[f"rec_cos_{m}_mean"] == pytest.approx(np.mean([float(mean @ b / (mean.norm() * b.norm()))
                                                                  for b in y]))


def test_reconstruction_skips_never_missing_and_unscored_modalities():
    recovered, truth, missing, train_mean = _rec_case()
    missing[:, 0] = False
    out = reconstruction_metrics(recovered, truth, missing, train_mean)
    assert not any(key.startswith(("rec_mse_L", "rec_cos_L")) for key in out)
    assert "rec_mse_V" in out and not any("_A" in key for key in out)


def test_reconstruction_lengths_leave_padding_out():
    truth = {"A": torch.tensor([[[1.0], [2.0], [0.0]]])}
    recovered = {"A": torch.tensor([[[1.0], [2.0], [9.0]]])}
    missing = torch.tensor([[False, False, True]])
    mean = {"A": torch.zeros(1)}
    assert reconstruction_metrics(recovered, truth, missing, mean)["rec_mse_A"] == pytest.approx(27.0)
    assert reconstruction_metrics(recovered, truth, missing, mean, lengths={"A": torch.tensor([2])})["rec_mse_A"] == 0


def test_reconstruction_modular_batches_equal_one_shot():
    recovered, truth, missing, train_mean = _rec_case(1)
    metric = ReconstructionMetrics(train_mean)
    for rows in (slice(0, 2), slice(2, 3), slice(3, 6)):
        metric.update({m: v[rows] for m, v in recovered.items()}, {m: v[rows] for m, v in truth.items()},
                      missing[rows])
    one_shot = reconstruction_metrics(recovered, truth, missing, train_mean)
    batched = metric.compute()
    assert set(batched) == set(one_shot)
    for key, value in one_shot.items():
        assert batched[key] == pytest.approx(value, abs=1e-12)


def test_reconstruction_shape_mismatch_raises():
    recovered, truth, missing, train_mean = _rec_case()
    recovered["V"] = recovered["V"][:, :4]
    with pytest.raises(ValueError, match="'V'"):
        reconstruction_metrics(recovered, truth, missing, train_mean)


def _sequence_case():
    features = {"V": torch.tensor([[[1.0, 1.0], [3.0, 3.0], [9.0, 9.0]], [[2.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])}
    lengths = {"V": np.array([2, 1])}  # the 9s and the zeros after step 1 are padding
    missing = torch.tensor([[False, True, False], [False, True, False]])
    return features, lengths, missing


def test_recovery_fidelity_scores_an_utterance_level_recovery_against_the_valid_steps_mean():
    features, lengths, missing = _sequence_case()
    means = TrainingMeans(features, lengths)
    # Time averages over valid steps: sample 0 -> (2, 2), sample 1 -> (2, 0); their mean (2, 1).
    assert means.get("V", True).tolist() == [2.0, 1.0]
    out = recovery_fidelity({"V": torch.tensor([[2.0, 2.0], [2.0, 0.0]])}, features, lengths, missing, means)
    assert out["rec_mse_V"] == 0.0 and out["rec_cos_V"] == pytest.approx(1.0)
    assert out["rec_mse_V_mean"] == pytest.approx(0.5)  # (0 + 1 + 0 + 1) / 4


def test_recovery_fidelity_scores_a_sequence_recovery_on_valid_steps_only():
    features, lengths, missing = _sequence_case()
    recovered = {"V": features["V"].clone()}
    recovered["V"][0, 2] = -100.0  # padding: never scored
    out = recovery_fidelity(recovered, features, lengths, missing, TrainingMeans(features, lengths))
    assert out["rec_mse_V"] == 0.0
    assert out["rec_mse_V_zero"] == pytest.approx((5.0 + 2.0) / 2)  # per-sample means over valid entries


@pytest.mark.parametrize("module", [F, modular, reconstruction])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
