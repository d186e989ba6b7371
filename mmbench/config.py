"""Method configs: ``configs/methods/<name>.yaml`` -> constructor keyword arguments.

Keys must match the constructor's keyword arguments exactly (unknown keys are errors naming close
matches). Command-line overrides come as ``key=value`` strings with dotted keys for nested values.
"""
from __future__ import annotations

import difflib
import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

import yaml

#: Constructor arguments filled by the runner from the data, never from a YAML file.
RUNTIME_ARGS = ("data",)


def configs_dir() -> Path:
    """``configs/`` of the repository (the package is installed editable or run from a checkout)."""
    return Path(__file__).resolve().parents[1] / "configs"


def method_config_path(name: str) -> Path:
    return configs_dir() / "methods" / f"{name}.yaml"


def load_method_config(name: str, path: Path | None = None) -> dict[str, Any]:
    """The YAML of method ``name`` as a dict (empty when the method has no config file)."""
    path = path or method_config_path(name)
    if not path.is_file():
        return {}
    with open(path) as handle:
        loaded = yaml.safe_load(handle) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of constructor arguments, found {type(loaded).__name__}")
    return loaded


def parse_override(text: str) -> tuple[str, Any]:
    """``"a.b=3"`` -> ``("a.b", 3)``; the value is parsed as YAML (numbers, bools, lists)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"override {text!r} is not of the form key=value")
    parsed = yaml.safe_load(value)
    if isinstance(parsed, str):
        try:  # YAML 1.1 reads "1e-3" as a string; a learning rate is meant
            parsed = float(parsed)
        except ValueError:
            pass
    return key.strip(), parsed


def apply_overrides(config: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``config`` with dotted ``key=value`` overrides applied."""
    result = json.loads(json.dumps(config))
    for text in overrides:
        key, value = parse_override(text)
        node = result
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {text!r}: {part!r} is not a mapping")
        node[leaf] = value
    return result


def constructor_params(cls: type) -> dict[str, inspect.Parameter]:
    params = inspect.signature(cls.__init__).parameters
    return {n: p for n, p in params.items()
            if n not in ("self", *RUNTIME_ARGS) and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def validate_config(cls: type, config: dict[str, Any], *, source: str = "config") -> None:
    """Raise ValueError for keys the constructor of ``cls`` does not take."""
    params = constructor_params(cls)
    unknown = [k for k in config if k not in params]
    if unknown:
        details = []
        for key in unknown:
            close = difflib.get_close_matches(key, params, n=1)
            details.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(f"{source}: unknown key(s) {', '.join(details)} for {cls.__name__}; "
                         f"accepted: {', '.join(params)}")


def resolve_config(cls: type, config: dict[str, Any]) -> dict[str, Any]:
    """Constructor defaults overlaid with ``config``: the fully resolved hyperparameters."""
    validate_config(cls, config)
    resolved = {n: p.default for n, p in constructor_params(cls).items() if p.default is not p.empty}
    resolved.update(config)
    return resolved


def config_hash(payload: dict[str, Any]) -> str:
    """sha256 of a canonical JSON form of ``payload``."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
