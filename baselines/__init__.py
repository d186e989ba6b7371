"""Reimplemented missing-modality baselines, each one module registered by name (see pyproject.toml)."""
