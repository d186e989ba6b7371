"""OMG-Agent's ablations (paper Sec. 4.3, Fig. 4-5, Tables 3-4 and Appendix D Tables 3-4), declared once.

Each ablation is :class:`~agents.omg_agent.method.OMGAgent` with exactly the constructor switches listed
here changed. The registry (entry-point group ``mmbench.variants``) registers them as
``omg-agent-<name>``; a variant reads ``configs/methods/omg-agent.yaml`` and every
``--set omg-agent.key=value``, then its switches, then ``--set omg-agent-<name>.key=value``, so an
ablation delta differs from the full model in its switches only. ``mmbench run --method
omg-agent-ablations`` runs them all.

This module holds plain data (no imports of the method), so listing methods stays fast.
"""
from __future__ import annotations

#: variant name (after ``omg-agent-``) -> (constructor switches, what the paper calls it)
VARIANTS: dict[str, tuple[dict, str]] = {
    "no-planner": ({"use_planner": False}, "w/o Planner (c_S = Gaussian noise)"),
    "no-rerank": ({"rerank": False}, "w/o Re-ranking"),
    "no-retriever": ({"use_retriever": False}, "w/o Retriever"),
    "no-sparse-attn": ({"weighting": "mean"}, "w/o Sparse Attn (mean over top-K)"),
    "content-only": ({"query_mode": "content"}, "Content-Only Retrieval"),
    "random-plan": ({"query_mode": "random_plan"}, "Random-Plan Retrieval"),
    "concat-injection": ({"injection": "concat"}, "Concat-Injection"),
    "reversed-injection": ({"injection": "reversed"}, "Reversed-Injection"),
    "single-stream": ({"injection": "single_stream"}, "Single-Stream"),
    "no-lplan": ({"lambda_p": 0.0}, "w/o L_plan"),
    "no-levi": ({"lambda_e": 0.0}, "w/o L_evi"),
    "no-lplan-levi": ({"lambda_p": 0.0, "lambda_e": 0.0}, "w/o Both"),
    # The task loss still trains the task head; only its gradient into the executor is removed.
    "no-ltask": ({"executor_task_grad": False}, "w/o L_task"),
    "direct-classification": ({"task_input": "noisy"}, "Direct Classification (task loss on the noisy state)"),
    **{f"k{k}": ({"top_k": k}, f"K = {k}") for k in (1, 5, 10, 20, 50)},
}
