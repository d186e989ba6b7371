"""Method registry: names -> LightningModule classes, through entry points.

The core never imports a method by name. A method registers in ``pyproject.toml``::

    [project.entry-points."mmbench.methods"]
    mymethod = "baselines.mymethod:MyMethod"

A method's ablation variants are declared once, by the method, as a mapping
``variant suffix -> (constructor switches, what the paper calls it)`` registered under the base
method's name::

    [project.entry-points."mmbench.variants"]
    mymethod = "baselines.mymethod_variants:VARIANTS"

which registers ``mymethod-<suffix>`` for every suffix. A variant is its base class built with the
base method's configuration and then its own switches (see ``execute.resolved_method_config``).
Targets are imported lazily, only when a method is built, so ``mmbench methods`` stays fast.
Code that cannot add an entry point (a notebook, a test) may call :func:`register_method`.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINT_GROUP = "mmbench.methods"
VARIANT_GROUP = "mmbench.variants"
#: ``--method <base>-ablations`` runs every variant of ``<base>``.
ABLATIONS_SUFFIX = "-ablations"

_EXTRA: dict[str, str | type] = {}


@dataclass(frozen=True)
class Variant:
    """An ablation: the base method with ``switches`` changed."""

    name: str
    base: str
    switches: dict[str, Any] = field(hash=False)
    label: str = ""


def register_method(name: str):
    """Decorator registering a class under ``name`` at run time (entry points are the normal way)."""

    def decorate(cls: type) -> type:
        _EXTRA[name] = cls
        return cls

    return decorate


def _load(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


@lru_cache(maxsize=1)
def variants() -> dict[str, Variant]:
    """Every declared ablation variant, by its registered name."""
    found: dict[str, Variant] = {}
    for point in entry_points(group=VARIANT_GROUP):
        for suffix, (switches, label) in _load(point.value).items():
            name = f"{point.name}-{suffix}"
            found[name] = Variant(name, point.name, dict(switches), label)
    return found


def _targets(include_runtime: bool = True) -> dict[str, str | type]:
    found: dict[str, str | type] = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if include_runtime:
        found.update(_EXTRA)
    return found


def method_names(*, include_variants: bool = True, include_runtime: bool = True) -> list[str]:
    """Every registered name, sorted; without ablation variants or run-time registrations if asked."""
    names = set(_targets(include_runtime))
    if include_variants:
        names |= set(variants())
    return sorted(names)


def is_variant(name: str) -> bool:
    return name in variants()


def variant_of(name: str) -> Variant | None:
    """The variant registered as ``name``, or None for a method of its own."""
    return variants().get(name)


def resolve_method_names(spec: str) -> list[str]:
    """Expand a ``--method`` value: ``all``, ``<method>-ablations`` or a comma list of names."""
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if part == "all":
            names += method_names(include_variants=False)
        elif part.endswith(ABLATIONS_SUFFIX) and part not in _targets():
            base = part[: -len(ABLATIONS_SUFFIX)]
            declared = sorted(v.name for v in variants().values() if v.base == base)
            if not declared:
                raise KeyError(f"{part!r}: method {base!r} declares no ablation variants")
            names += declared
        else:
            get_method_class(part)  # validate early, with a "did you mean"
            names.append(part)
    return list(dict.fromkeys(names))


def get_method_class(name: str) -> type:
    """The class registered as ``name`` (a variant's base class); unknown names suggest close matches."""
    variant = variant_of(name)
    if variant is not None:
        return get_method_class(variant.base)
    targets = _targets()
    if name not in targets:
        known = method_names()
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown method {name!r}.{hint} Registered: {', '.join(known)}")
    target = targets[name]
    return target if isinstance(target, type) else _load(target)
