"""Method registry: names -> LightningModule classes, through the ``mmbench.methods`` entry points.

The core never imports a method by name. A method registers in ``pyproject.toml``::

    [project.entry-points."mmbench.methods"]
    mymethod = "baselines.mymethod:MyMethod"

Targets are imported lazily, only when a method is built, so ``mmbench methods`` stays fast.
Code that cannot add an entry point (a notebook, a test) may call :func:`register_method`.
"""
from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "mmbench.methods"
#: Registered names with a variant suffix (``omg-agent-k5``) are ablations, not part of ``all``.
VARIANT_PREFIXES = ("omg-agent-",)

_EXTRA: dict[str, str | type] = {}


def register_method(name: str):
    """Decorator registering a class under ``name`` at run time (entry points are the normal way)."""

    def decorate(cls: type) -> type:
        _EXTRA[name] = cls
        return cls

    return decorate


def _targets(include_runtime: bool = True) -> dict[str, str | type]:
    found: dict[str, str | type] = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if include_runtime:
        found.update(_EXTRA)
    return found


def method_names(*, include_variants: bool = True, include_runtime: bool = True) -> list[str]:
    """Every registered name, sorted; without ablation variants or run-time registrations if asked."""
    names = sorted(_targets(include_runtime))
    if not include_variants:
        names = [n for n in names if not is_variant(n)]
    return names


def is_variant(name: str) -> bool:
    return any(name.startswith(prefix) for prefix in VARIANT_PREFIXES)


def resolve_method_names(spec: str) -> list[str]:
    """Expand a ``--method`` value: ``all``, ``omg-agent-ablations`` or a comma list of names."""
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if part == "all":
            names += method_names(include_variants=False)
        elif part == "omg-agent-ablations":
            names += [n for n in method_names() if n.startswith("omg-agent-")]
        else:
            get_method_class(part)  # validate early, with a "did you mean"
            names.append(part)
    return list(dict.fromkeys(names))


def get_method_class(name: str) -> type:
    """The class registered as ``name``; unknown names suggest close matches."""
    targets = _targets()
    if name not in targets:
        close = difflib.get_close_matches(name, targets, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown method {name!r}.{hint} Registered: {', '.join(sorted(targets))}")
    target = targets[name]
    if isinstance(target, type):
        return target
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)
