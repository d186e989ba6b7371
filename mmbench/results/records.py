"""Typed records the store holds: one :class:`RunRecord` per run, one :class:`MetricRow` per number."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class MetricRow:
    """One number: a metric of one evaluated (split, condition) of a run."""

    split: str  # "valid" or "test"
    condition: str  # pattern id (fixed), rate "0.3" (random, frame) or "L0.3-V0.5-A0.7" (imbalanced)
    metric: str  # stored key, e.g. "acc2_non0", "mae", "rec_mse_V"
    value: float
    achieved_rate: float | None = None
    mask_sha256: str = ""
    achieved_rates: dict | None = None  # imbalanced: {"L": .., "V": .., "A": ..}, the share of samples missing each


@dataclass
class RunRecord:
    """Everything that produced a run's numbers, and its outcome."""

    run_id: str
    config_hash: str
    dataset: str
    data_sha256: str
    method: str
    protocol: str
    condition: str  # the training condition: "all" for fixed (one model, 7 test patterns), else the rate
    train_setting: str
    selection: str
    seed: int
    mask_sha256: str  # digest over every mask set of the run (train, valid, test), see runner
    status: str  # "running", "finished", "failed", "interrupted"
    started_at: str
    synthetic: bool
    package_version: str
    git_commit: str | None
    config: dict
    ended_at: str | None = None
    duration_s: float | None = None
    error: str | None = None
    artifacts_dir: str = ""
    device: str = ""
    n_test: int = 0
    config_id: str = ""  # the configuration without the seed (mmbench.results.keys.config_id)
    data_quality: dict = field(default_factory=dict)  # the data's quality findings (NaNs replaced, ...)
    metrics: list[MetricRow] = field(default_factory=list)

    def row(self) -> dict:
        """The columns of the ``runs`` table."""
        values = asdict(self)
        values.pop("metrics")
        return values
