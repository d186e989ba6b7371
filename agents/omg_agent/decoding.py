"""The planner LM pi_P (paper Sec. 3.3): few-shot prompted decoding of |Omega| candidate plans per observation,
with forced structure and a constrained Sentiment slot."""
from __future__ import annotations

import copy
import hashlib
from typing import Sequence

import torch
from torch import Tensor

from agents.omg_agent.plan_cache import SAMPLER_VERSION
from agents.omg_agent.plan_schema import SENTIMENTS, Candidate

FEW_SHOT_PREFIX = (
    "You read what is observed of a short opinion video and write a plan for the missing part as a triplet "
    "[Entity; Action; Sentiment]. Sentiment is one of: " + ", ".join(SENTIMENTS) + ".\n\n"
    "Observation: Transcript: the movie was a complete waste of time\n"
    "Plan: [Entity: the movie; Action: wasted my time; Sentiment: very negative]\n\n"
    "Observation: Transcript: i liked the actors but the story was thin\n"
    "Plan: [Entity: the actors; Action: were liked; Sentiment: positive]\n\n"
    "Observation: Face: animated, above typical. Voice: loud, typical.\n"
    "Plan: [Entity: the speaker; Action: speaks with energy; Sentiment: positive]\n\n"
    "Observation: Transcript: it is a film about a family\n"
    "Plan: [Entity: the film; Action: shows a family; Sentiment: neutral]\n\n"
    "Observation: Voice: quiet, below typical.\n"
    "Plan: [Entity: the speaker; Action: sounds flat; Sentiment: negative]\n\n"
    "Observation:"
)
_STOP_CHARS = (";", "]", "[", "\n")


class PlanGenerator:
    """pi_P: few-shot prompted causal LM with forced structure and a constrained Sentiment slot.

    It writes the triplet ``[Entity: ...; Action: ...; Sentiment: ...]``: the structure tokens are forced,
    Entity and Action are free text (bounded length), and the Sentiment slot is decoded under a token trie of
    the allowed values (constrained decoding). The few-shot prefix is run once and its KV cache shared by
    every row; each observation is read once and its KV cache shared by its candidates. |Omega| candidates
    per observation: the first greedy, the others sampled, each candidate's slot from a generator seeded by
    (observation, candidate, slot) alone, so an observation gets the same plans whichever batch it is
    planned in (alone, lazily, in ``mmbench plan``, under ``--limit``).

    The LM runs on the device of its weights; the decoding around it (next-token logits, draws, stop
    tests) stays on the CPU, where the seeded generators live: one copy of the logits per step.

    Args:
        model, tokenizer: a transformers causal LM and its tokenizer.
        max_slot_tokens: bound on the Entity and Action slots (generated tokens each).
        temperature: sampling temperature of candidates 2..|Omega| (the first is greedy).
    """

    def __init__(self, model, tokenizer, *, max_slot_tokens: int = 8, temperature: float = 0.8):
        self.model = model.eval()
        self.device = model.get_input_embeddings().weight.device
        self.tokenizer = tokenizer
        self.max_slot_tokens = max_slot_tokens
        self.temperature = temperature
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        vocab = model.get_input_embeddings().weight.shape[0]
        pieces = tokenizer.convert_ids_to_tokens(list(range(min(vocab, len(tokenizer)))))
        decoded = [tokenizer.convert_tokens_to_string([p]) if p is not None else "" for p in pieces]
        self.stop_mask = torch.zeros(vocab, dtype=torch.bool)
        self.stop_mask[[i for i, t in enumerate(decoded) if any(c in t for c in _STOP_CHARS)]] = True
        self.sentiment_options = [self._ids(" " + s) for s in SENTIMENTS]
        self._prefix_cache = None
        self._prefix_len = 0

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    @torch.inference_mode()
    def _prefix(self):
        if self._prefix_cache is None:
            ids = torch.tensor([self._ids(FEW_SHOT_PREFIX)])
            out = self.model(input_ids=ids.to(self.device), use_cache=True)
            self._prefix_cache, self._prefix_len = out.past_key_values, ids.shape[1]
        return self._prefix_cache, self._prefix_len

    @torch.inference_mode()
    def generate(self, observations: Sequence[str], n_candidates: int) -> list[list[Candidate]]:
        """|Omega| = ``n_candidates`` plans per observation (rows: observation-major)."""
        rows = [obs for obs in observations for _ in range(n_candidates)]
        greedy = torch.tensor([k == 0 for _ in observations for k in range(n_candidates)])
        state = _DecodeState(self, len(observations))
        state.feed_ragged([self._ids(" " + obs + "\nPlan: [Entity:") for obs in observations])
        state.repeat_rows(n_candidates)  # the observation is read once, its KV cache shared by its candidates

        def draws(slot: str) -> list[torch.Generator]:
            return row_generators(observations, n_candidates, slot)

        entity, lp_e, cut_e = state.free_slot(self.max_slot_tokens, greedy, draws("entity"))
        state.feed_same(self._ids("; Action:"))
        action, lp_a, cut_a = state.free_slot(self.max_slot_tokens, greedy, draws("action"))
        state.feed_same(self._ids("; Sentiment:"))
        sentiment, lp_s = state.choice_slot(self.sentiment_options, greedy, draws("sentiment"))
        out: list[list[Candidate]] = [[] for _ in observations]
        for r in range(len(rows)):
            text = f"[Entity: {entity[r].strip()}; Action: {action[r].strip()}; Sentiment: {SENTIMENTS[sentiment[r]]}]"
            out[r // n_candidates].append(Candidate(text, float(lp_e[r] + lp_a[r] + lp_s[r]),
                                                    bool(cut_e[r] or cut_a[r])))
        return out


def row_generators(observations: Sequence[str], n_candidates: int, slot: str) -> list[torch.Generator]:
    """One generator per candidate row (observation-major), seeded by (observation, candidate, slot) alone:
    a row's draws then depend neither on the other rows of its batch nor on how long their slots ran."""
    def seed(text: str) -> int:
        return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)

    return [torch.Generator().manual_seed(seed(f"{SAMPLER_VERSION}|{slot}|{k}|{observation}"))
            for observation in observations for k in range(n_candidates)]


class _DecodeState:
    """Incremental decoding of R rows on top of the shared prefix cache (ragged positions, masked holes)."""

    def __init__(self, planner: PlanGenerator, n_rows: int):
        prefix, length = planner._prefix()
        self.p = planner
        self.cache = copy.deepcopy(prefix)
        self.cache.batch_repeat_interleave(n_rows)
        self.attention = torch.ones(n_rows, length, dtype=torch.long)
        self.positions = torch.full((n_rows,), length, dtype=torch.long)  # next position per row
        self.logits: Tensor | None = None  # (R, V) next-token logits of each row

    def _feed(self, tokens: Tensor, valid: Tensor) -> None:
        """tokens, valid: (R, k); invalid entries are holes (masked, position not advanced)."""
        offsets = valid.long().cumsum(1) - 1
        position_ids = (self.positions.unsqueeze(1) + offsets.clamp_min(0))
        self.attention = torch.cat([self.attention, valid.long()], dim=1)
        device = self.p.device  # the LM's; .to is a no-op on the CPU
        out = self.p.model(input_ids=tokens.to(device), attention_mask=self.attention.to(device),
                           position_ids=position_ids.to(device), past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values
        self.positions = self.positions + valid.long().sum(1)
        last = out.logits[:, -1].float().cpu()
        self.logits = last if self.logits is None else torch.where(valid[:, -1:].bool(), last, self.logits)

    def repeat_rows(self, times: int) -> None:
        """Each row becomes ``times`` consecutive rows sharing its state (the |Omega| candidates)."""
        if times == 1:
            return
        self.cache.batch_repeat_interleave(times)
        self.attention = self.attention.repeat_interleave(times, dim=0)
        self.positions = self.positions.repeat_interleave(times, dim=0)
        self.logits = self.logits.repeat_interleave(times, dim=0)

    def feed_ragged(self, sequences: list[list[int]]) -> None:
        width = max(len(s) for s in sequences)
        tokens = torch.full((len(sequences), width), self.p.pad_id, dtype=torch.long)
        valid = torch.zeros(len(sequences), width, dtype=torch.bool)
        for r, seq in enumerate(sequences):  # left-padded: every row's last token is real
            tokens[r, width - len(seq):] = torch.tensor(seq)
            valid[r, width - len(seq):] = True
        self._feed(tokens, valid)

    def feed_same(self, ids: list[int]) -> None:
        n = self.attention.shape[0]
        self._feed(torch.tensor([ids] * n), torch.ones(n, len(ids), dtype=torch.bool))

    def _pick(self, logits: Tensor, greedy: Tensor, generators: list[torch.Generator]) -> Tensor:
        """Argmax for greedy rows; a draw from each sampled row's own generator (one draw per row and step)."""
        token = logits.argmax(-1)
        probabilities = torch.softmax(logits / self.p.temperature, -1)
        for r in torch.nonzero(~greedy).flatten().tolist():
            token[r] = torch.multinomial(probabilities[r], 1, generator=generators[r])[0]
        return token

    def free_slot(self, max_tokens: int, greedy: Tensor, generators: list[torch.Generator]):
        n = self.attention.shape[0]
        active = torch.ones(n, dtype=torch.bool)
        texts: list[list[int]] = [[] for _ in range(n)]
        logprob = torch.zeros(n)
        stop = self.p.stop_mask[: self.logits.shape[1]]
        for step in range(max_tokens + 1):
            logits = self.logits.clone()
            if step == 0:
                logits[:, stop] = float("-inf")  # a slot is never empty
            if step == max_tokens:
                break
            token = self._pick(logits, greedy, generators)
            logprob += torch.where(active, torch.log_softmax(self.logits, -1).gather(1, token[:, None]).squeeze(1), 0.0)
            ends = stop[token]
            for r in torch.nonzero(active & ~ends).flatten().tolist():
                texts[r].append(int(token[r]))
            active = active & ~ends
            if not active.any():
                break
            self._feed(torch.where(active, token, self.p.pad_id).unsqueeze(1), active.unsqueeze(1))
        words = [self.p.tokenizer.decode(t) for t in texts]
        return words, logprob, active  # rows still active hit the bound

    def choice_slot(self, options: list[list[int]], greedy: Tensor, generators: list[torch.Generator]):
        """Constrained decoding over a token trie of ``options``; returns (option index, log-prob)."""
        n = self.attention.shape[0]
        prefixes: list[list[int]] = [[] for _ in range(n)]
        done = torch.zeros(n, dtype=torch.bool)
        logprob = torch.zeros(n)
        while not done.all():
            allowed = torch.zeros_like(self.logits, dtype=torch.bool)
            for r in range(n):
                if done[r]:
                    allowed[r, 0] = True
                    continue
                for option in options:
                    if option[: len(prefixes[r])] == prefixes[r] and len(option) > len(prefixes[r]):
                        allowed[r, option[len(prefixes[r])]] = True
            token = self._pick(self.logits.masked_fill(~allowed, float("-inf")), greedy, generators)
            step_lp = torch.log_softmax(self.logits, -1).gather(1, token[:, None]).squeeze(1)
            logprob += torch.where(done, 0.0, step_lp)
            active = ~done
            for r in torch.nonzero(active).flatten().tolist():
                prefixes[r].append(int(token[r]))
                done[r] = any(prefixes[r] == o for o in options) and not any(
                    len(o) > len(prefixes[r]) and o[: len(prefixes[r])] == prefixes[r] for o in options)
            self._feed(torch.where(active, token, self.p.pad_id).unsqueeze(1), active.unsqueeze(1))
        chosen = [next(i for i, o in enumerate(options) if o == p) for p in prefixes]
        return chosen, logprob
