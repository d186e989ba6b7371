"""mmbench: a benchmark suite for missing-modality multimodal sentiment analysis."""
__version__ = "0.2.0"
