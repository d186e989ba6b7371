"""OMG-Agent: Planner (planner.py) -> Retriever (retriever.py) -> diffusion Executor (executor.py),
assembled as the registered method in method.py; the ablation variants live in variants.py.

The method is imported on first use only, so reading ``variants`` or running ``mmbench plan --help``
does not load torch models.
"""

__all__ = ["OMGAgent"]


def __getattr__(name: str):
    if name == "OMGAgent":
        from agents.omg_agent.method import OMGAgent

        return OMGAgent
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
