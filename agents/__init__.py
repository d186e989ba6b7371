"""LLM-based methods of mmbench (OMG-Agent, LIMSSR) and what they share (:mod:`agents.llm`)."""
