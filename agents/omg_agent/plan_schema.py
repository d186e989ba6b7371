"""What a plan S is (paper eq. 4, Appendix A): the ``[Entity; Action; Sentiment]`` triplet, its parser and the
candidate record the decoder writes and the re-ranker reads."""
from __future__ import annotations

import re
from dataclasses import dataclass

SENTIMENTS: tuple[str, ...] = ("very negative", "negative", "neutral", "positive", "very positive")

_PLAN_RE = re.compile(r"^\[Entity: ([^;\[\]\n]+); Action: ([^;\[\]\n]+); Sentiment: (" +
                      "|".join(re.escape(s) for s in SENTIMENTS) + r")\]$")


@dataclass(frozen=True)
class Candidate:
    text: str
    logprob: float  # summed log-probability of the generated (not forced) tokens
    truncated: bool  # a free slot hit its length bound (soft schema violation)


def parse_plan(text: str) -> tuple[str, str, str] | None:
    """(entity, action, sentiment) of a plan in the triplet schema, or None.

    Example:
        >>> parse_plan("[Entity: the film; Action: bores; Sentiment: negative]")
        ('the film', 'bores', 'negative')
        >>> parse_plan("the film is bad") is None
        True
    """
    match = _PLAN_RE.match(text.strip())
    if not match or not match.group(1).strip() or not match.group(2).strip():
        return None
    return match.group(1).strip(), match.group(2).strip(), match.group(3)
