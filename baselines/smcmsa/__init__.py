"""SMCMSA: the method (method.py) and its training-only repository of similar samples (similar_completion.py)."""
