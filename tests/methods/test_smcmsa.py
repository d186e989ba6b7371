"""SMCMSA's completion guarantees: no self-retrieval, training-only repository, class-matched donors
or zeros, masks honoured after completion, a repository that survives a checkpoint reload, and under
``incomplete`` donors of observed values only."""
import io

import pytest
import torch

from baselines.smcmsa.similar_completion import NO_DONOR, CompleteSampleRepository, sentiment_class
from baselines.smcmsa.method import SMCMSA
from mmbench.constants import MODALITIES
from tests.helpers import fit_tiny, make_batch, tiny_bundle, tiny_datamodule, tiny_info, mask_given_and_nothing_removed

SMALL = dict(hidden_dim=16, heads=2, influence_tokens=4, unimodal_epochs=2)


def classify(score):
    return sentiment_class(score, 0.3)


def filled_repository(embeddings, predictions, top_k=3, steps=2, dim=2, observed=None):
    """A repository whose sample i has raw features all equal to i (so a donation names its donor);
    ``observed`` (N, 3) marks the modalities each sample kept (default: all)."""
    n = len(embeddings)
    observed = torch.ones(n, 3, dtype=torch.bool) if observed is None else observed
    repository = CompleteSampleRepository(top_k)
    features = {m: torch.arange(n, dtype=torch.float32).view(n, 1, 1).expand(n, steps, dim).clone() for m in MODALITIES}
    step_masks = {m: observed[:, p].unsqueeze(1).expand(n, steps).clone() for p, m in enumerate(MODALITIES)}
    repository.fill([f"tr{i}" for i in range(n)], embeddings, predictions, features, step_masks)
    return repository


def test_a_sample_never_retrieves_itself():
    torch.manual_seed(0)
    embeddings = torch.randn(20, 3, 8)
    repository = filled_repository(embeddings, torch.zeros(20, 3), top_k=3)
    available = torch.tensor([[True, False, False]] * 20)
    own_ids = [f"tr{i}" for i in range(20)]
    rows = repository.neighbours(embeddings, available, own_ids)
    assert rows.shape == (20, 3) and (rows != NO_DONOR).all()
    assert not (rows == torch.arange(20).unsqueeze(1)).any()
    # The same vectors under other ids find themselves first: the exclusion is what the test checks.
    rows = repository.neighbours(embeddings, available, [f"te{i}" for i in range(20)])
    assert torch.equal(rows[:, 0], torch.arange(20))
    donors = repository.donors(embeddings, torch.zeros(20, 3), available, own_ids, classify)
    assert not (donors == torch.arange(20)).any()


def test_donors_share_the_predicted_class_or_none_is_used():
    # Query along e0; neighbours by similarity: rows 0, 1, 2, then 3 (outside the top 3).
    directions = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.0, 1.0]])
    embeddings = directions.unsqueeze(1).expand(-1, 3, -1).clone()
    predictions = torch.tensor([-2.0, 0.1, 2.0, 2.5, 1.0]).unsqueeze(1).expand(-1, 3).clone()
    repository = filled_repository(embeddings, predictions, top_k=3)
    query = torch.tensor([[[1.0, 0.0]] * 3] * 3)
    available = torch.tensor([[True, False, False]] * 3)
    query_scores = torch.tensor([[1.5, 0, 0], [0.0, 0, 0], [-1.0, 0, 0]])  # positive, neutral, negative
    donors = repository.donors(query, query_scores, available, ["q0", "q1", "q2"], classify)
    assert donors.tolist() == [2, 1, 0]  # the first class match in similarity order, not row 3
    assert (classify(predictions[donors, 0]) == classify(query_scores[:, 0])).all()
    # Nobody in the top 3 shares the class: no donor, and the missing modality stays zero.
    repository.predictions[:3] = -2.0
    donors = repository.donors(query, query_scores, available, ["q0", "q1", "q2"], classify)
    assert donors.tolist() == [NO_DONOR, NO_DONOR, 0]
    features, mask = repository.donated("V", donors)
    assert (features[:2] == 0).all() and not mask[:2].any()
    assert (features[2] == 0).all() and mask[2].all()  # row 0's features are zeros by construction


def test_several_available_modalities_use_the_mean_cosine():
    embeddings = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]],    # L matches, V does not
                               [[0.6, 0.8], [0.6, 0.8], [1.0, 0.0]]])   # both half-match
    repository = filled_repository(embeddings, torch.zeros(2, 3), top_k=1)
    query = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    only_language = repository.neighbours(query, torch.tensor([[True, False, False]]), ["q"])
    language_and_vision = repository.neighbours(query, torch.tensor([[True, True, False]]), ["q"])
    assert only_language.tolist() == [[0]] and language_and_vision.tolist() == [[1]]  # (1+0)/2 < (.6+.6)/2


@pytest.fixture(scope="module")
def fitted():
    torch.manual_seed(0)
    bundle = tiny_bundle()
    model = SMCMSA(tiny_info(bundle), **SMALL)
    fit_tiny(model, tiny_datamodule(bundle), epochs=1)
    return bundle, model.eval()


def test_the_repository_holds_the_training_samples_only(fitted):
    bundle, model = fitted
    ids = set(model.repository.ids)
    assert ids == set(bundle.splits["train"].ids.tolist())
    assert not ids & (set(bundle.splits["valid"].ids.tolist()) | set(bundle.splits["test"].ids.tolist()))


def test_recovered_features_are_the_donors_raw_training_features(fitted):
    bundle, model = fitted
    split, train = bundle.splits["test"], bundle.splits["train"]
    available = torch.zeros(len(split), 3, dtype=torch.bool)
    available[:, 0] = True  # language only: vision and audio are donated
    batch = make_batch(split, available)
    with torch.no_grad():
        _, donors = model.complete_missing(batch)
        recovered = model.predict_step(batch, 0)["recovered"]
    assert (donors != NO_DONOR).any() and (donors[:, 0] == NO_DONOR).all()  # language was not missing
    assert torch.equal(donors[:, 1], donors[:, 2])  # complete entries: one donor per sample, as SMCMSA
    for i, row in enumerate(donors[:, 1].tolist()):
        for m in ("V", "A"):
            if row == NO_DONOR:
                assert (recovered[m][i] == 0).all()
            else:
                position = train.ids.tolist().index(model.repository.ids[row])
                assert torch.allclose(recovered[m][i], torch.as_tensor(train.features[m][position]))


def test_a_removed_modality_cannot_change_a_completed_prediction(fitted):
    bundle, model = fitted
    split = bundle.splits["test"]
    available = torch.ones(len(split), 3, dtype=torch.bool)
    available[::2, 1] = False  # vision removed from every other sample, donated instead
    available[1::2, 0] = False
    batch = make_batch(split, available)
    tampered = dict(batch)
    tampered["vision"] = batch["vision"] + 10 * torch.randn_like(batch["vision"]) * (~available[:, 1]).view(-1, 1, 1)
    tampered["text"] = batch["text"] + 10 * torch.randn_like(batch["text"]) * (~available[:, 0]).view(-1, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(batch), model(tampered), atol=1e-5)
        assert (model.complete_missing(batch)[1] != NO_DONOR).any()


def test_a_fresh_instance_predicts_the_same_after_loading_the_state_dict(fitted):
    bundle, model = fitted
    fresh = SMCMSA(tiny_info(bundle), **SMALL).eval()
    assert len(fresh.repository) == 0
    stored = io.BytesIO()
    torch.save({"state_dict": model.state_dict()}, stored)  # as the runner's checkpoint, reread likewise
    stored.seek(0)
    fresh.load_state_dict(torch.load(stored, weights_only=True)["state_dict"])  # strict; buffers resized
    assert fresh.repository.ids == model.repository.ids
    available = torch.zeros(len(bundle.splits["test"]), 3, dtype=torch.bool)
    available[:, 2] = True
    batch = make_batch(bundle.splits["test"], available)
    with torch.no_grad():
        expected, reloaded = model.predict_step(batch, 0), fresh.predict_step(batch, 0)
    assert torch.equal(expected["pred"], reloaded["pred"])
    for m in MODALITIES:
        assert torch.equal(expected["recovered"][m], reloaded["recovered"][m])


def test_under_same_the_repository_keeps_the_complete_training_features():
    torch.manual_seed(0)
    bundle = tiny_bundle()
    model = SMCMSA(tiny_info(bundle, train_setting="same"), **{**SMALL, "unimodal_epochs": 1})
    fit_tiny(model, tiny_datamodule(bundle, train_setting="same"), epochs=1)
    train = bundle.splits["train"]
    rows = [train.ids.tolist().index(i) for i in model.repository.ids]
    for m in MODALITIES:  # the training mask removed modalities; the repository holds the truth
        assert torch.equal(getattr(model.repository, f"features_{m}"), torch.as_tensor(train.features[m][rows]))


def availability_seen_in_training(model, batch: dict) -> torch.Tensor:
    seen = []
    complete_missing = model.complete_missing
    model.complete_missing = lambda view: (seen.append(view["available"].clone()), complete_missing(view))[1]
    model.training_loss(batch)
    return seen[0]


def test_own_patterns_are_drawn_under_complete_only_and_same_trains_on_the_given_mask():
    torch.manual_seed(0)
    bundle = tiny_bundle()
    split = bundle.splits["train"]
    same = SMCMSA(tiny_info(bundle, train_setting="same"), **SMALL)
    given, nothing_removed = mask_given_and_nothing_removed(split)
    assert torch.equal(availability_seen_in_training(same, make_batch(split, given, with_targets=True)), given)
    assert availability_seen_in_training(same, make_batch(split, nothing_removed)).all()
    complete = SMCMSA(tiny_info(bundle), **SMALL)
    assert not availability_seen_in_training(complete, make_batch(split)).all()  # its own 7 patterns

def test_a_modality_is_donated_only_by_entries_that_observed_it():
    # Every entry equally similar to the query on language; row 0 is nearest but lost vision.
    embeddings = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.8, 0.2]]).unsqueeze(1).expand(-1, 3, -1).clone()
    observed = torch.tensor([[True, False, True], [True, True, True], [True, True, False]])
    repository = filled_repository(embeddings, torch.ones(3, 3), top_k=3, observed=observed)
    query = torch.tensor([[[1.0, 0.0]] * 3])
    available = torch.tensor([[True, False, False]])
    donors = repository.donors_by_modality(query, torch.ones(1, 3), available, ["q"], classify)
    assert donors.tolist() == [[NO_DONOR, 1, 0]]  # vision from row 1, audio from the nearest, row 0
    features, steps = repository.donated("V", donors[:, 1])
    assert (features == 1).all() and steps.all()


def test_under_incomplete_a_removed_training_value_is_never_donated():
    torch.manual_seed(0)
    bundle = tiny_bundle()
    info = tiny_info(bundle, train_setting="incomplete")
    datamodule = tiny_datamodule(bundle, train_setting="incomplete")
    train = bundle.splits["train"]
    kept = torch.from_numpy(datamodule.train_set.mask.available[datamodule.train_set.mask_rows].astype(bool))
    sentinel = 777.0
    for position, m in enumerate(MODALITIES):  # what the training mask removed now reads as the sentinel
        train.features[m][~kept[:, position].numpy()] = sentinel
    model = SMCMSA(info, **SMALL)
    fit_tiny(model, datamodule, epochs=1)
    model.eval()
    test = bundle.splits["test"]
    only_language = torch.tensor([[True, False, False]] * len(test))
    with torch.no_grad():
        _, donors = model.complete_missing(make_batch(test, only_language))
        recovered = model.predict_step(make_batch(test, only_language), 0)["recovered"]
    assert (donors[:, 1:] != NO_DONOR).any()
    ids = train.ids.tolist()
    for position, m in enumerate(MODALITIES):
        assert not (getattr(model.repository, f"features_{m}") == sentinel).any()
        assert not (recovered[m] == sentinel).any()
        for i, row in enumerate(donors[:, position].tolist()):
            if row != NO_DONOR:
                donor = ids.index(model.repository.ids[row])
                assert kept[donor, position]  # the donor observed what it gives
                assert torch.allclose(recovered[m][i], torch.as_tensor(train.features[m][donor]))
