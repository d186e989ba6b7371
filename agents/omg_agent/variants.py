"""OMG-Agent's ablations (paper Sec. 4.3, Fig. 4-5, Tables 3-4 and Appendix D Tables 3-4) as registered variants.

Each variant is :class:`~agents.omg_agent.method.OMGAgent` with one or two constructor switches changed; its
constructor signature carries those switches as defaults, so ``configs/methods/omg-agent.yaml`` need
not be copied and ``--set`` still works. Registered names are ``omg-agent-<name>`` (see
:data:`VARIANT_SWITCHES`); ``mmbench run --method omg-agent-ablations`` runs them all.
"""
from __future__ import annotations

import inspect

from agents.omg_agent.method import OMGAgent

#: variant name (after ``omg-agent-``) -> (class name, constructor switches, what the paper calls it)
VARIANT_SWITCHES: dict[str, tuple[str, dict, str]] = {
    "no-planner": ("OMGAgentNoPlanner", {"use_planner": False}, "w/o Planner (c_S = Gaussian noise)"),
    "no-rerank": ("OMGAgentNoRerank", {"rerank": False}, "w/o Re-ranking"),
    "no-retriever": ("OMGAgentNoRetriever", {"use_retriever": False}, "w/o Retriever"),
    "no-sparse-attn": ("OMGAgentNoSparseAttn", {"weighting": "mean"}, "w/o Sparse Attn (mean over top-K)"),
    "content-only": ("OMGAgentContentOnly", {"query_mode": "content"}, "Content-Only Retrieval"),
    "random-plan": ("OMGAgentRandomPlan", {"query_mode": "random_plan"}, "Random-Plan Retrieval"),
    "concat-injection": ("OMGAgentConcatInjection", {"injection": "concat"}, "Concat-Injection"),
    "reversed-injection": ("OMGAgentReversedInjection", {"injection": "reversed"}, "Reversed-Injection"),
    "single-stream": ("OMGAgentSingleStream", {"injection": "single_stream"}, "Single-Stream"),
    "no-lplan": ("OMGAgentNoLPlan", {"lambda_p": 0.0}, "w/o L_plan"),
    "no-levi": ("OMGAgentNoLEvi", {"lambda_e": 0.0}, "w/o L_evi"),
    "no-lplan-levi": ("OMGAgentNoLPlanLEvi", {"lambda_p": 0.0, "lambda_e": 0.0}, "w/o Both"),
    "no-ltask": ("OMGAgentNoLTask", {"lambda_task": 0.0}, "w/o L_task"),
    "direct-classification": ("OMGAgentDirectClassification", {"task_input": "noisy"},
                              "Direct Classification (task loss on the noisy state)"),
    **{f"k{k}": (f"OMGAgentK{k}", {"top_k": k}, f"K = {k}") for k in (1, 5, 10, 20, 50)},
}


def _variant(class_name: str, switches: dict, label: str) -> type:
    base = inspect.signature(OMGAgent.__init__)
    unknown = set(switches) - set(base.parameters)
    if unknown:
        raise TypeError(f"{class_name}: OMGAgent takes no {sorted(unknown)}")

    def __init__(self, data, **hyperparameters):
        OMGAgent.__init__(self, data, **{**switches, **hyperparameters})

    __init__.__signature__ = base.replace(parameters=[
        p.replace(default=switches[p.name]) if p.name in switches else p for p in base.parameters.values()])
    doc = f"OMG-Agent ablation: {label} ({', '.join(f'{k}={v!r}' for k, v in switches.items())})."
    return type(class_name, (OMGAgent,), {"__init__": __init__, "__doc__": doc, "__module__": __name__,
                                          "variant_switches": dict(switches)})


for _name, (_class_name, _switches, _label) in VARIANT_SWITCHES.items():
    globals()[_class_name] = _variant(_class_name, _switches, _label)

__all__ = [class_name for class_name, _, _ in VARIANT_SWITCHES.values()]
