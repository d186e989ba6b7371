"""OMG-Agent's distinctive guarantees: retrieval, zero adapters, Tweedie, planner inputs, plan cache, variants,
training settings."""
import inspect
from dataclasses import replace

import numpy as np
import pytest
import torch

from agents.omg_agent import plan_cache as plan_cache_module
from agents.omg_agent.executor import Denoiser, LatentDiffusion, ZeroAdapter
from agents.omg_agent.observation import ObservationDescriber
from agents.omg_agent.plan_cache import PlanCache
from agents.omg_agent.plan_schema import SENTIMENTS, Candidate, parse_plan
from agents.omg_agent.planner import PlanBook
from agents.omg_agent.planner_registry import register_planner
from agents.omg_agent.reranking import select_plan
from agents.omg_agent.retriever import EvidenceRetriever, KnowledgeBase
from mmbench.augment import drop_modalities
from mmbench.constants import MODALITIES
from mmbench.data.datamodule import DataInfo
from tests.helpers import fit_tiny, make_batch, tiny_bundle, tiny_datamodule, tiny_info

TINY_PLANNER = "tiny-random-llama-3-token-slots"


@pytest.fixture(scope="module")
def tiny_planner():
    """agents.llm's randomly initialised 2-layer Llama (no weights downloaded), slots bounded to 3 tokens."""
    from agents.llm import TINY_RANDOM_LLAMA, load_causal_lm

    register_planner(TINY_PLANNER, *load_causal_lm(TINY_RANDOM_LLAMA), max_slot_tokens=3)
    return TINY_PLANNER


# ------------------------------------------------------------------ retriever


def _base(n=20, dim=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    base = KnowledgeBase()
    base.fill([f"tr{i}" for i in range(n)], torch.randn(n, dim, generator=generator),
              torch.randn(n, dim, generator=generator), torch.randn(n, 5, generator=generator))
    return base


def test_a_query_never_retrieves_its_own_entry():
    base = _base()
    keys = base.observation.clone()
    base.rebuild(keys)
    assert base.last_rebuild_seconds >= 0
    rows = base.rows_of(base.ids)
    found = base.search(keys, k=5, exclude_rows=rows)  # each query IS an entry's key: its own would rank first
    assert found.shape == (20, 5)
    assert not (found == rows.unsqueeze(1)).any()
    # a query from outside the base (row -1) keeps its nearest neighbour
    outside = base.search(keys[:3], k=5, exclude_rows=torch.full((3,), -1))
    assert outside[:, 0].tolist() == [0, 1, 2]


def test_retriever_weights_are_a_softmax_over_top_k_and_c_evi_follows_eq_9():
    base = _base(dim=8)
    retriever = EvidenceRetriever(observation_dim=8, plan_dim=8, key_dim=6, top_k=4, temperature=0.07)
    base.rebuild(retriever.entry_keys(base))
    observation, plan = torch.randn(3, 8), torch.randn(3, 8)
    evidence, cost, rows = retriever(base, observation, plan, torch.full((3,), -1))
    query = retriever.query(torch.cat([observation, plan], 1))
    keys = retriever.entry_keys(base, rows)
    alpha = torch.softmax(torch.nn.functional.cosine_similarity(query[:, None], keys, dim=-1) / 0.07, 1)
    assert torch.allclose(evidence, (alpha[..., None] * base.value[rows]).sum(1), atol=1e-5)
    expected = (alpha * (1 - torch.nn.functional.cosine_similarity(plan[:, None], base.semantic[rows], dim=-1))).sum(1)
    assert torch.allclose(cost, expected, atol=1e-5)
    evidence.sum().backward()  # scores of the retrieved rows are differentiable w.r.t. both projections
    assert retriever.query[0].weight.grad is not None and retriever.key[0].weight.grad is not None


def test_knowledge_base_holds_training_samples_only():
    from agents.omg_agent import OMGAgent

    bundle = tiny_bundle()
    model = OMGAgent(tiny_info(bundle), use_planner=False, vae_epochs=0)
    datamodule = tiny_datamodule(bundle)
    model.fill_knowledge_base(datamodule.train_dataloader())
    model.rebuild_indices()
    train_ids = set(bundle.splits["train"].ids.tolist())
    for base in model.bases.values():
        assert set(base.ids) == train_ids
    eval_ids = list(bundle.splits["valid"].ids) + list(bundle.splits["test"].ids)
    assert (model.bases["V"].rows_of(eval_ids) == -1).all()


# ------------------------------------------------------------------ executor


def test_zero_adapters_change_nothing_at_initialisation():
    torch.manual_seed(0)
    adapter = ZeroAdapter(hidden_dim=16, cond_dim=5)
    hidden = torch.randn(4, 3, 16)
    assert torch.equal(adapter(hidden, torch.randn(4, 5)), hidden)
    denoiser = Denoiser(latent_dim=8, observation_dim=6, plan_dim=7, evidence_dim=5, hidden_dim=16).eval()
    z, t = torch.randn(4, 8), torch.tensor([1, 10, 100, 999])
    observation, plan, target = torch.randn(4, 6), torch.randn(4, 7), torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        a = denoiser(z, t, observation, plan, torch.zeros(4, 5), target)
        b = denoiser(z, t, observation, plan, torch.randn(4, 5) * 100, target)
        c = denoiser(z, t, observation, torch.randn(4, 7), torch.zeros(4, 5), target)
    assert torch.equal(a, b)  # evidence enters through the zero adapters only
    assert not torch.allclose(a, c)  # the plan does enter (cross-attention, deep layers)
    assert set(denoiser.shallow_layers) == {0, 1} and set(denoiser.deep_layers) == {2, 3}


def test_tweedie_recovers_z0_when_the_noise_is_known():
    diffusion = LatentDiffusion(Denoiser(8, 6, 7, 5, hidden_dim=16))
    z0, noise = torch.randn(5, 8), torch.randn(5, 8)
    t = torch.tensor([0, 3, 250, 600, 900])  # at t = 999 abar ~ 1e-8: float32 cannot invert it exactly
    z_t = diffusion.add_noise(z0, noise, t)
    assert torch.allclose(z_t, diffusion.scheduler.add_noise(z0, noise, t), atol=1e-5)  # diffusers' forward process
    assert torch.allclose(diffusion.tweedie(z_t, noise, t), z0, atol=1e-3)


def test_ddim_sampling_is_deterministic_given_the_generator():
    diffusion = LatentDiffusion(Denoiser(8, 6, 7, 5, hidden_dim=16)).eval()
    conditions = {"observation": torch.randn(3, 6), "plan": torch.randn(3, 7), "evidence": torch.randn(3, 5),
                  "target": torch.zeros(3, dtype=torch.long)}
    first = diffusion.sample((3, 8), conditions, 4, torch.Generator().manual_seed(1), "cpu")
    second = diffusion.sample((3, 8), conditions, 4, torch.Generator().manual_seed(1), "cpu")
    assert torch.equal(first, second) and torch.isfinite(first).all()


# ------------------------------------------------------------------ planner


def test_the_transcript_never_reaches_the_planner_when_language_is_missing():
    bundle = tiny_bundle()
    split = bundle.splits["test"]
    available = torch.ones(len(split), 3, dtype=torch.bool)
    available[::2, 0] = False
    batch = make_batch(split, available)
    tampered = dict(batch, raw_text=[f"SECRET {t}" for t in split.raw_text])  # a transcript that should not be read
    describer = ObservationDescriber(tiny_info(bundle).feature_stats)
    for texts in (describer.describe(batch), describer.describe(tampered)):
        for row, text in enumerate(texts):
            if available[row, 0]:
                assert text.startswith("Transcript: ")
            else:
                assert "SECRET" not in text and split.raw_text[row] not in text and "Transcript" not in text
    # the method's own augmentation path (drop_modalities) keeps the guarantee
    full = make_batch(split)
    dropped = drop_modalities(full, torch.tensor([False, True, True]).expand(len(split), 3))
    assert all("Transcript" not in t for t in describer.describe(dropped))


def test_unparsable_plans_are_discarded_and_reranking_uses_eq_5():
    assert parse_plan("[Entity: a; Action: b; Sentiment: maybe]") is None
    good = Candidate("[Entity: the film; Action: bores; Sentiment: negative]", -5.0, False)
    likely_bad = Candidate("Entity the film", -0.1, False)
    other = Candidate("[Entity: the film; Action: shines; Sentiment: positive]", -5.5, False)
    obs = np.array([1.0, 0.0])
    vectors = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])  # `other` agrees with the observation
    assert select_plan([likely_bad, good, other], vectors, obs, lambda_s=0.0, gamma=0.1) == 1
    assert select_plan([likely_bad, good, other], vectors, obs, lambda_s=0.0, gamma=0.1) == 1
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert select_plan([likely_bad, good, other], vectors, obs, lambda_s=0.3, gamma=0.1) == 1  # -5.3 > -5.5
    assert select_plan([likely_bad, good, other], vectors, obs, lambda_s=1.0, gamma=0.1) == 2  # -6.0 < -5.5
    assert select_plan([likely_bad], vectors[:1], obs, 0.3, 0.1) is None
    assert select_plan([likely_bad, other, good], vectors, obs, 1.0, 0.1, rerank=False) == 1


def test_generated_plans_follow_the_schema_and_are_deterministic(tiny_planner):
    from agents.omg_agent.planner_registry import load_planner

    generator = load_planner(tiny_planner)
    observations = ["Transcript: a good film", "Face: still, typical."]
    first = generator.generate(observations, 3)
    assert [len(c) for c in first] == [3, 3]
    for candidates in first:
        for candidate in candidates:
            parsed = parse_plan(candidate.text)
            assert parsed is not None and parsed[2] in SENTIMENTS
            assert np.isfinite(candidate.logprob) and candidate.logprob < 0
    assert generator.generate(observations, 3) == first


def test_plan_cache_is_reused_and_resumes(tiny_planner, tmp_path):
    observations = ["Transcript: a good film", "Voice: loud, typical.", "Transcript: a good film"]
    book = PlanBook(tiny_planner, n_candidates=2, cache_dir=tmp_path, batch_size=1)
    plans = book.plans(observations)
    assert book.stats["planned"] == 2 and plans[0] == plans[2]  # identical observations planned once
    again = PlanBook(tiny_planner, n_candidates=2, cache_dir=tmp_path)
    assert again.plans(observations) == plans and again.stats["planned"] == 0  # read back from disk
    other_omega = PlanBook(tiny_planner, n_candidates=1, cache_dir=tmp_path)
    assert other_omega.key(observations[0]) != book.key(observations[0])  # |Omega| is part of the key
    # w/o re-ranking reads the same sampled candidates (no second LLM pass) and takes the first parsable one
    unranked = PlanBook(tiny_planner, n_candidates=2, rerank=False, cache_dir=tmp_path)
    assert unranked.plans(observations) and unranked.stats["planned"] == 0
    entry = book.cache.get(book.key(observations[1]))
    first_parsable = next(text for text, *_ in entry["candidates"] if parse_plan(text) is not None)
    assert unranked.plans([observations[1]]) == [first_parsable]
    # a line cut by an interruption is skipped, the rest is kept
    chunk = next((tmp_path / "omg_plans").rglob("*.jsonl"))
    chunk.write_text(chunk.read_text() + '{"key": "trunc')
    assert PlanCache(chunk.parent).get(book.key(observations[1]))["plan"] == plans[1]


# ------------------------------------------------------------------ variants


def test_variants_switch_constructor_arguments_of_the_base_method():
    from agents.omg_agent import OMGAgent
    from agents.omg_agent.variants import VARIANTS

    params = inspect.signature(OMGAgent.__init__).parameters
    assert len(VARIANTS) == 19
    for name, (switches, _) in VARIANTS.items():
        assert switches and set(switches) <= set(params), name
    assert VARIANTS["no-ltask"][0] == {"executor_task_grad": False}  # one change, the task weight untouched


# ------------------------------------------------------------------ training settings


def omg_agent(bundle, setting: str, **overrides):
    from agents.omg_agent import OMGAgent

    torch.manual_seed(0)
    info = replace(tiny_info(bundle), train_setting=setting)
    return OMGAgent(info, **{"use_planner": False, "vae_epochs": 0, "sampling_steps": 2, "generation_samples": 2,
                             **overrides})


def task_head_availability(model, batch, monkeypatch) -> torch.Tensor:
    """The availability flags the task head reads in one training step on ``batch``."""
    seen = []
    original = model.predict_score

    def spy(observation, completed, available):
        seen.append(available.clone())
        return original(observation, completed, available)

    monkeypatch.setattr(model, "predict_score", spy)
    model.training_loss(batch)
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize("setting", ["same", "incomplete"])
def test_under_same_and_incomplete_the_task_head_trains_on_the_given_mask_only(setting, monkeypatch):
    bundle = tiny_bundle()
    batch = next(iter(tiny_datamodule(bundle, train_setting=setting, batch_size=64).train_dataloader()))
    model = omg_agent(bundle, setting).train()
    assert torch.equal(task_head_availability(model, batch, monkeypatch), batch["available"])


def test_under_complete_the_method_draws_its_own_patterns(monkeypatch):
    bundle = tiny_bundle()
    batch = make_batch(bundle.splits["train"])
    seen = task_head_availability(omg_agent(bundle, "complete").train(), batch, monkeypatch)
    assert seen.any(1).all() and not seen.all()  # one of the 7 patterns per sample, some with a modality missing


def executor_and_head_task_gradients(model, batch) -> tuple[float, float]:
    """Norms of L_task's gradient on the executor (denoiser) and on the task head (regressor)."""
    task = model.training_terms(batch)["task"]
    executor, head = list(model.diffusion.parameters()), list(model.regressor.parameters())
    grads = torch.autograd.grad(task, executor + head, allow_unused=True)
    norm = [float(sum(g.norm() ** 2 for g in part if g is not None)) for part in (grads[:len(executor)],
                                                                                    grads[len(executor):])]
    return norm[0], norm[1]


def test_without_executor_task_grad_l_task_trains_the_task_head_but_not_the_executor():
    bundle = tiny_bundle()
    batch = make_batch(bundle.splits["train"])
    with_grad = executor_and_head_task_gradients(omg_agent(bundle, "complete").train(), batch)
    without = executor_and_head_task_gradients(omg_agent(bundle, "complete", executor_task_grad=False).train(), batch)
    assert with_grad[0] > 0 and with_grad[1] > 0
    assert without[0] == 0 and without[1] > 0
    assert omg_agent(bundle, "complete", executor_task_grad=False).hparams.lambda_task == 0.1  # weight unchanged


def test_under_incomplete_no_removed_training_value_reaches_the_vaes_the_standardiser_or_a_base(monkeypatch):
    from agents.omg_agent import OMGAgent

    bundle = tiny_bundle()
    datamodule = tiny_datamodule(bundle, train_setting="incomplete")
    train, train_set = bundle.splits["train"], datamodule.train_set
    observed = train_set.mask.available[train_set.mask_rows].astype(bool)
    sentinel = 1e6
    for position, m in enumerate(MODALITIES):
        train.features[m][~observed[:, position]] = sentinel  # what the mask removed, made unmistakable
    info = DataInfo.from_bundle(bundle).for_run(train, "incomplete", train_set.mask)
    model = OMGAgent(info, use_planner=False, vae_epochs=1, sampling_steps=2, generation_samples=2)
    vae_inputs = []
    for vae in model.vaes.values():
        def recording_loss(x, *args, original=vae.loss, **kwargs):
            vae_inputs.append(x)
            return original(x, *args, **kwargs)

        monkeypatch.setattr(vae, "loss", recording_loss)
    fit_tiny(model, datamodule)
    assert vae_inputs and max(float(x.abs().max()) for x in vae_inputs) < sentinel / 1e3
    for position, m in enumerate(MODALITIES):
        assert float(model.standardizers[m].mean.abs().max()) < sentinel / 1e3
        base = model.bases[m]
        assert set(base.ids) == set(train.ids[observed[:, position]].tolist())  # an entry only where m was observed
        assert float(base.value.abs().max()) < sentinel / 1e3


# ------------------------------------------------------------------ sampling


class KnownLatent(torch.nn.Module):
    """A denoiser that knows z_0 = ``value`` everywhere: it returns the exact noise of z_t under that z_0."""

    def __init__(self, alphas_cumprod: torch.Tensor, value: float):
        super().__init__()
        self.alphas_cumprod, self.value = alphas_cumprod, value

    def forward(self, z_t, t, **conditions):
        abar = self.alphas_cumprod[t].unsqueeze(1)
        return (z_t - abar.sqrt() * self.value) / (1 - abar).sqrt()


def test_ddim_sampling_does_not_clip_latents_outside_minus_one_one():
    diffusion = LatentDiffusion(torch.nn.Identity())
    diffusion.denoiser = KnownLatent(diffusion.alphas_cumprod, 3.0)
    z0 = diffusion.sample((4, 8), {}, 5, torch.Generator().manual_seed(0), "cpu")
    assert torch.allclose(z0, torch.full_like(z0, 3.0), atol=1e-2)


# ------------------------------------------------------------------ plan seeds


def test_an_observation_gets_the_same_plans_alone_or_in_any_batch(tiny_planner):
    from agents.omg_agent.planner_registry import load_planner

    generator = load_planner(tiny_planner)
    target = "Transcript: a good film"
    alone = generator.generate([target], 4)[0]
    others = ["Face: still, typical.", "Voice: loud, above typical. Face: moving, typical."]
    batched = generator.generate([others[0], target, others[1]], 4)[1]
    assert [(c.text, c.truncated) for c in alone] == [(c.text, c.truncated) for c in batched]
    assert [c.logprob for c in alone] == pytest.approx([c.logprob for c in batched], rel=1e-4)


def test_plans_cached_by_another_sampler_version_are_not_read(tiny_planner, tmp_path, monkeypatch):
    observations = ["Transcript: a good film"]
    PlanBook(tiny_planner, n_candidates=2, cache_dir=tmp_path).plans(observations)
    monkeypatch.setattr(plan_cache_module, "SAMPLER_VERSION", "a-later-sampler")
    later = PlanBook(tiny_planner, n_candidates=2, cache_dir=tmp_path)
    later.plans(observations)
    assert later.stats["planned"] == 1 and later.stats["cached"] == 0
