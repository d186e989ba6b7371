"""Missingness protocols: rates, patterns, determinism across processes, files, application."""
import doctest
import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import mmbench.missing.apply
import mmbench.missing.maskset
import mmbench.missing.protocols
from mmbench.constants import MAX_RANDOM_RATE, MODALITIES, PATTERNS, RANDOM_RATES, pattern_to_available
from mmbench.missing import (UNK_ID, MaskSet, apply_mask, fixed_available, frame_keep, make_mask_set, mask_text_bert,
                             random_available, two_missing_fraction)

IDS = np.array([f"vid{i:04d}" for i in range(60)])
SEQ_LENS = {"L": 8, "V": 10, "A": 12}


def lengths_for(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {m: rng.integers(3, SEQ_LENS[m] + 1, size=n) for m in MODALITIES}


def build(protocol="random", condition="0.3", seed=1111, ids=IDS, split="test", **kwargs):
    return make_mask_set("mosi", split, ids, lengths_for(len(ids)), SEQ_LENS, protocol, condition, seed, **kwargs)


# ---------------------------------------------------------------- random protocol
@pytest.mark.parametrize("n", [1, 2, 7, 10, 101, 1000])
@pytest.mark.parametrize("rate", [float(r) for r in RANDOM_RATES])
def test_random_rate_formula_and_at_least_one_modality(n, rate):
    available, achieved = random_available(n, rate, np.random.default_rng(n))
    assert available.shape == (n, 3) and available.dtype == bool
    assert achieved == pytest.approx(1 - available.sum() / (3 * n), abs=1e-12)  # MR = 1 - sum / (3N)
    assert available.any(axis=1).all()
    assert abs(achieved - min(rate, MAX_RANDOM_RATE)) <= 1 / (3 * n) + 1e-12


def test_worked_example_n10_mr03():
    available, achieved = random_available(10, 0.3, np.random.default_rng(5))
    kept = np.sort(available.sum(axis=1))
    # k = 9 removals = 2a + b with a = b = 3: three samples keep one, three keep two, four keep all.
    assert achieved == pytest.approx(0.3) and kept.tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3, 3]


@pytest.mark.parametrize("rate,two,one", [(0.1, 100, 100), (0.3, 300, 300), (0.4, 500, 200), (0.5, 700, 100),
                                          (0.6, 900, 0)])
def test_random_follows_imder_schedule(rate, two, one):
    available, _ = random_available(1000, rate, np.random.default_rng(0))
    lost = 3 - available.sum(axis=1)
    assert (lost == 2).sum() == two and (lost == 1).sum() == one
    assert two_missing_fraction(rate) == pytest.approx(two / 1000)


def test_random_spreads_modalities_evenly():
    available, _ = random_available(301, 0.2, np.random.default_rng(1))
    removed_alone = (~available)[available.sum(axis=1) == 2].sum(axis=0)
    kept_alone = available[available.sum(axis=1) == 1].sum(axis=0)
    assert removed_alone.max() - removed_alone.min() <= 1
    assert kept_alone.max() - kept_alone.min() <= 1


def test_random_zero_rate_removes_nothing():
    mask = build("random", "0.0")
    assert mask.available.all() and mask.achieved_rate == 0.0 and mask.target_rate == 0.0


def test_random_rate_above_two_thirds_is_capped_and_both_recorded():
    mask = build("random", "0.7")
    assert mask.target_rate == pytest.approx(0.7)
    assert mask.achieved_rate == pytest.approx(2 / 3)
    assert (mask.available.sum(axis=1) == 1).all()


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_random_rejects_rates_outside_unit_interval(rate):
    with pytest.raises(ValueError, match="rate"):
        random_available(5, rate, np.random.default_rng(0))


# ---------------------------------------------------------------- fixed protocol
@pytest.mark.parametrize("pattern", PATTERNS)
def test_fixed_patterns_exact(pattern):
    mask = build("fixed", pattern)
    assert (mask.available == np.array(pattern_to_available(pattern))).all()
    assert mask.frames is None and mask.achieved_rate is None
    assert fixed_available(3, pattern).shape == (3, 3)


def test_fixed_rejects_unknown_pattern():
    with pytest.raises(ValueError, match="pattern"):
        build("fixed", "AL")


def test_incomplete_training_draws_patterns_uniformly():
    ids = np.array([str(i) for i in range(7000)])
    mask = make_mask_set("mosi", "train", ids, None, None, "fixed", "mixed", 1111, incomplete_train=True)
    codes = mask.available @ np.array([4, 2, 1])
    counts = np.bincount(codes, minlength=8)
    assert counts[0] == 0  # nobody loses everything
    assert all(abs(c - 1000) < 120 for c in counts[1:])  # 7 patterns, ~1000 each (sd ~ 29)
    assert mask.achieved_rate == pytest.approx(1 - mask.available.mean())


# ---------------------------------------------------------------- frame protocol
def test_frame_rate_close_to_target_and_modalities_present():
    ids = np.array([str(i) for i in range(2000)])
    mask = build("frame", "0.3", ids=ids)
    assert mask.available.all() and mask.target_rate == pytest.approx(0.3)
    assert abs(mask.achieved_rate - 0.3) < 0.01
    lengths = lengths_for(len(ids))
    for m in MODALITIES:
        padding = np.arange(SEQ_LENS[m])[None, :] >= lengths[m][:, None]
        assert not mask.frames[m][padding].any()
        kept = mask.frames[m].sum() / lengths[m].sum()
        assert abs(kept - 0.7) < 0.02


def test_frame_zero_rate_keeps_every_valid_step():
    keep = frame_keep(lengths_for(20), SEQ_LENS, 0.0, np.random.default_rng(0))
    for m in MODALITIES:
        assert (keep[m].sum(axis=1) == lengths_for(20)[m]).all()


def test_frame_needs_lengths():
    with pytest.raises(ValueError, match="lengths"):
        make_mask_set("mosi", "test", IDS, None, None, "frame", "0.2", 1)


# ---------------------------------------------------------------- determinism and identity
_CHILD = textwrap.dedent("""
    import numpy as np
    from mmbench.missing import make_mask_set
    ids = np.array([f"vid{i:04d}" for i in range(60)])
    rng = np.random.default_rng(0)
    seq = {"L": 8, "V": 10, "A": 12}
    lengths = {m: rng.integers(3, seq[m] + 1, size=60) for m in "LVA"}
    for protocol, condition in (("random", "0.3"), ("frame", "0.3"), ("fixed", "mixed")):
        mask = make_mask_set("mosi", "test", ids, lengths, seq, protocol, condition, 1111,
                             incomplete_train=protocol == "fixed")
        print(mask.sha256())
""")


def test_masks_identical_across_processes():
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # a different str hash salt must not matter
    child = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, env=env, check=True)
    here = [build("random", "0.3").sha256(), build("frame", "0.3").sha256(),
            build("fixed", "mixed", incomplete_train=True).sha256()]
    assert child.stdout.split() == here


@pytest.mark.parametrize("change", [{"seed": 1112}, {"split": "valid"}, {"condition": "0.4"}])
def test_a_different_key_gives_a_different_mask(change):
    base = build("random", "0.3")
    other = build("random", **{"condition": "0.3", **change})
    assert not np.array_equal(base.available, other.available)
    assert base.sha256() != other.sha256()


def test_same_key_same_mask_and_id_order_does_not_matter():
    first = build("frame", "0.5")
    assert build("frame", "0.5").sha256() == first.sha256()
    order = np.random.default_rng(9).permutation(len(IDS))
    shuffled = make_mask_set("mosi", "test", IDS[order], {m: v[order] for m, v in lengths_for(len(IDS)).items()},
                             SEQ_LENS, "frame", "0.5", 1111)
    assert shuffled.sha256() == first.sha256()
    assert np.array_equal(shuffled.available, first.available[order])
    assert np.array_equal(shuffled.frames["A"], first.frames["A"][order])


def test_save_load_round_trip(tmp_path):
    for mask in (build("random", "0.3"), build("frame", "0.2"), build("fixed", "LV")):
        path = mask.save(tmp_path / f"{mask.protocol}.npz")
        loaded = MaskSet.load(path)
        assert loaded.sha256() == mask.sha256()
        assert (loaded.dataset, loaded.split, loaded.protocol, loaded.condition, loaded.seed) == \
               (mask.dataset, mask.split, mask.protocol, mask.condition, mask.seed)
        assert (loaded.target_rate, loaded.achieved_rate) == (mask.target_rate, mask.achieved_rate)
        assert loaded.ids.tolist() == mask.ids.tolist()
        assert mask.sha256() != hashlib.sha256(path.read_bytes()).hexdigest()  # content, not file bytes


def test_load_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, ids=np.array(["a"]), available=np.ones((1, 3), bool), meta=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        MaskSet.load(path)


def test_subset_reorders_and_keeps_hash_of_same_content():
    mask = build("frame", "0.3")
    reversed_ids = mask.ids[::-1]
    again = mask.subset(reversed_ids)
    assert again.sha256() == mask.sha256()
    assert np.array_equal(again.available, mask.available[::-1])
    part = mask.subset(mask.ids[:5])
    assert len(part) == 5 and np.array_equal(part.frames["L"], mask.frames["L"][:5])
    with pytest.raises(KeyError, match="no entry"):
        mask.subset(["not-a-sample"])


# ---------------------------------------------------------------- applying masks
def test_apply_mask_zeroes_removed_modalities_and_dropped_frames():
    mask = build("frame", "0.5", ids=IDS[:4])
    mask.available[1, 2] = False
    features = {m: np.random.default_rng(0).normal(size=(4, SEQ_LENS[m], 2)).astype(np.float32) for m in MODALITIES}
    originals = {m: v.copy() for m, v in features.items()}
    out = apply_mask(features, mask)
    for m in MODALITIES:
        assert np.array_equal(features[m], originals[m])  # input untouched
        keep = mask.frames[m] & mask.available[:, MODALITIES.index(m)][:, None]
        assert np.array_equal(out[m], np.where(keep[..., None], features[m], 0))
    assert not out["A"][1].any()
    torch_out = apply_mask({m: torch.from_numpy(v) for m, v in features.items()}, mask)
    assert all(isinstance(v, torch.Tensor) and np.array_equal(v.numpy(), out[m]) for m, v in torch_out.items())


def test_unk_replacement_keeps_cls_and_sep():
    ids = np.array([[101, 11, 12, 13, 102, 0], [101, 21, 102, 0, 0, 0]])
    attention = (ids > 0).astype(np.int64)
    text_bert = np.stack([ids, attention, np.zeros_like(ids)], axis=1)  # (2, 3, 6)
    nothing_kept = np.zeros((2, 6), dtype=bool)
    out = mask_text_bert(text_bert, nothing_kept)
    assert out[0, 0].tolist() == [101, UNK_ID, UNK_ID, UNK_ID, 102, 0]
    assert out[1, 0].tolist() == [101, UNK_ID, 102, 0, 0, 0]
    assert np.array_equal(out[:, 1:], text_bert[:, 1:])  # attention mask and segments unchanged
    assert text_bert[0, 0, 1] == 11  # input untouched
    some_kept = nothing_kept.copy()
    some_kept[0, 2] = True
    as_torch = mask_text_bert(torch.from_numpy(text_bert), torch.from_numpy(some_kept))
    assert isinstance(as_torch, torch.Tensor) and as_torch[0, 0].tolist() == [101, UNK_ID, 12, UNK_ID, 102, 0]


@pytest.mark.parametrize("module", [mmbench.missing.protocols, mmbench.missing.maskset, mmbench.missing.apply])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
