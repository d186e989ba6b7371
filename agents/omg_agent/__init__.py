"""OMG-Agent: Planner (planner.py) -> Retriever (retriever.py) -> diffusion Executor (executor.py),
assembled as the registered method in method.py; the ablation variants live in variants.py."""
from agents.omg_agent.method import OMGAgent

__all__ = ["OMGAgent"]
