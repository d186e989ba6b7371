"""Re-ranking of the |Omega| candidate plans (paper eq. 5-6): the score of each and the choice of S*."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from agents.omg_agent.plan_schema import Candidate, parse_plan


def plan_score(candidate: Candidate, semantic_cost: float, lambda_s: float, gamma: float) -> float:
    """Eq. (5): log-prob - lambda_s C_sem - gamma I_schema, -inf for a plan that does not parse.

    A candidate that does not parse has I_schema = inf and is discarded; a slot cut at its length bound
    without its terminator costs I_schema = 1 (a soft violation, so gamma has an effect).
    """
    if parse_plan(candidate.text) is None:
        return float("-inf")
    return candidate.logprob - lambda_s * semantic_cost - gamma * float(candidate.truncated)


def select_plan(candidates: Sequence[Candidate], plan_vectors: np.ndarray, observation_vector: np.ndarray,
                lambda_s: float, gamma: float, rerank: bool = True) -> int | None:
    """Index of S* among ``candidates`` (None if none parses). ``rerank=False``: the first parsable one.

    C_sem (eq. 6) = 1 - cos(g(S), psi(X)), from the candidates' and the observation's sentence vectors.
    """
    scores = []
    for candidate, vector in zip(candidates, plan_vectors):
        cost = 1.0 - float(np.dot(vector, observation_vector) /
                           (np.linalg.norm(vector) * np.linalg.norm(observation_vector) + 1e-8))
        scores.append(plan_score(candidate, cost, lambda_s, gamma))
    finite = [i for i, s in enumerate(scores) if np.isfinite(s)]
    if not finite:
        return None
    return finite[0] if not rerank else max(finite, key=lambda i: scores[i])
