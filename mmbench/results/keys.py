"""What identifies a run, and which runs a table may average together.

A run key (``RunRecord.config``) is everything that produced a run's numbers: dataset, data sha256,
method, its resolved configuration and training budget, protocol, condition, setting, selection,
seed, and the code versions (mmbench's and the method's). From it:

- ``config_hash``: the whole key. Two runs with the same hash are the same run (a repeat).
- ``config_id``: the key without the seed and the training condition: one configuration, a table
  row. A leaderboard cell averages the runs of one ``config_id`` at one condition, i.e. runs whose
  keys are identical but for the seed.
- ``slot``: the key without the code versions. Runs of one slot but other versions are the same
  experiment re-run after a code change: only the newest version counts, the older rows are stale.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

#: Fields that vary within one configuration: across seeds, and across the columns of its row.
SEED_FIELDS: tuple[str, ...] = ("seed", "condition")
#: Fields that say which code produced a run.
VERSION_FIELDS: tuple[str, ...] = ("mmbench_version", "method_version")
#: Fields recorded in old keys that no longer take part in identity (derived from the others).
LEGACY_FIELDS: tuple[str, ...] = ("mask_sha256",)


def key_hash(payload: dict[str, Any]) -> str:
    """sha256 of a canonical JSON form of ``payload``."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _without(key: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in key.items() if k not in fields and k not in LEGACY_FIELDS}


def config_id(key: dict[str, Any]) -> str:
    """A short, stable id of a configuration: the run key without its seed and condition."""
    return key_hash(_without(key, SEED_FIELDS))[:12]


def slot_id(key: dict[str, Any]) -> str:
    """The run key without code versions: the same experiment whatever code ran it."""
    return key_hash(_without(key, VERSION_FIELDS))


def family_id(key: dict[str, Any]) -> str:
    """The configuration without seed and versions: groups a configuration across code versions."""
    return key_hash(_without(key, SEED_FIELDS + VERSION_FIELDS))


def versions(key: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(key.get(field, "")) for field in VERSION_FIELDS)


def flatten(key: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: the comparable leaves of a key."""
    leaves: dict[str, Any] = {}
    for name, value in key.items():
        if isinstance(value, dict):
            leaves.update(flatten(value, f"{prefix}{name}."))
        else:
            leaves[f"{prefix}{name}"] = json.dumps(value, sort_keys=True, default=str)
    return leaves


def difference_labels(keys: dict[str, dict[str, Any]]) -> dict[str, str]:
    """config_id -> a short label of what sets it apart from the other configurations given.

    ``{"a": {"profile": "quick", ...}, "b": {"profile": "paper", ...}}`` -> ``{"a": "quick", "b": "paper"}``;
    other differences print as ``name=value`` (the last part of a nested name), e.g. ``max_epochs=5``;
    a configuration ``mmbench tune`` chose says ``tuned`` (beside ``default`` for the untuned ones).
    """
    if len(keys) < 2:
        return {cid: "" for cid in keys}
    flat = {cid: flatten(_without(key, SEED_FIELDS)) for cid, key in keys.items()}
    names = sorted(set().union(*flat.values()))
    differing = [n for n in names if len({f.get(n) for f in flat.values()}) > 1]
    labels = {}
    for cid, leaves in flat.items():
        parts = [_tuning_label(leaves, flat.values())] if any(n.startswith("tuning.") for n in differing) else []
        for name in differing:
            if name.startswith("tuning.") or name == "test_conditions":
                continue  # tuning: one word above; --eval-rates: the aggregate labels the training condition
            value = leaves.get(name)
            text = "—" if value is None else str(json.loads(value))
            if name == "profile":
                parts.append(text)
            elif name.endswith("sha256"):
                parts.append(f"{name.rsplit('.', 1)[-1]}={text[:8]}")
            else:
                parts.append(f"{name.rsplit('.', 1)[-1]}={text}")
        labels[cid] = ", ".join(parts)
    return labels


def _tuning_label(leaves: dict[str, Any], every: Iterable[dict[str, Any]]) -> str:
    """``mmbench tune``'s record as one word, not its leaves: ``tuned`` or ``default``, with the trial
    budget where tuned configurations of several budgets meet."""
    if "tuning.trials" not in leaves:
        return "default"
    budgets = {other["tuning.trials"] for other in every if "tuning.trials" in other}
    return f"tuned ({json.loads(leaves['tuning.trials'])} trials)" if len(budgets) > 1 else "tuned"
