"""Missingness protocols: pure, seeded mask builders, the saved ``MaskSet``, and mask application.

- :mod:`mmbench.missing.protocols`: ``fixed`` / ``random`` / ``frame`` builders and
  :func:`make_mask_set`, seeded from the key (dataset, split, protocol, condition, seed).
- :mod:`mmbench.missing.imbalanced`: the ``imbalanced`` builder (a rate per modality) and its
  condition ids (``"L0.3-V0.5-A0.7"``).
- :mod:`mmbench.missing.maskset`: :class:`MaskSet`, its content hash and its ``.npz`` file.
- :mod:`mmbench.missing.apply`: zeroing features and writing [UNK] over dropped BERT tokens, for
  the data module's batches and every other caller alike.

Definitions and worked examples: docs/protocols.md.
"""
from mmbench.missing.apply import UNK_ID, apply_mask, kept_entries, mask_text_bert, mask_transcript
from mmbench.missing.imbalanced import imbalanced_available, imbalanced_condition, parse_imbalanced
from mmbench.missing.maskset import MaskSet
from mmbench.missing.protocols import (
    fixed_available,
    frame_drop_rate,
    frame_keep,
    make_mask_set,
    mask_seed,
    mixed_available,
    parse_rate,
    random_available,
    two_missing_fraction,
)

__all__ = ["UNK_ID", "MaskSet", "apply_mask", "fixed_available", "frame_drop_rate", "frame_keep",
           "imbalanced_available", "imbalanced_condition", "kept_entries", "make_mask_set", "mask_seed",
           "mask_text_bert", "mask_transcript", "mixed_available", "parse_imbalanced", "parse_rate",
           "random_available", "two_missing_fraction"]
