"""Method configs: ``configs/methods/<name>.yaml`` -> constructor keyword arguments.

Keys must match the constructor's keyword arguments exactly, the :class:`FitSettings` included
(unknown keys are errors naming close matches). Command-line overrides come as ``key=value``
strings with dotted keys for nested values. A ``search_space:`` section declares the ranges
``mmbench tune`` searches, next to the paper's defaults; it is split off on loading and validated
against the same constructor (:func:`search_dimensions`).
"""
from __future__ import annotations

import difflib
import inspect
import json
import types
import typing
from dataclasses import dataclass, fields
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


#: The section of a method's YAML that ``mmbench tune`` searches (see :func:`search_dimensions`); it is
#: split off on loading, so it never reaches the constructor or the run key of an untuned run.
SEARCH_SPACE_KEY = "search_space"


def _read_method_yaml(name: str, path: Path | None) -> dict[str, Any]:
    path = path or method_config_path(name)
    if not path.is_file():
        return {}
    with open(path) as handle:
        loaded = yaml.safe_load(handle) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of constructor arguments, found {type(loaded).__name__}")
    return loaded


def load_method_config(name: str, path: Path | None = None) -> dict[str, Any]:
    """The YAML of method ``name`` as a dict (empty when the method has no config file), without its
    ``search_space`` section (:func:`load_search_space`)."""
    return {k: v for k, v in _read_method_yaml(name, path).items() if k != SEARCH_SPACE_KEY}


def load_search_space(name: str, path: Path | None = None) -> dict[str, Any]:
    """The ``search_space`` section of method ``name``'s YAML as written (empty when it declares none)."""
    return _read_method_yaml(name, path).get(SEARCH_SPACE_KEY) or {}


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


@dataclass(frozen=True)
class FitSettings:
    """The optimiser and loader settings of a method's fit, declared once for every method.

    A method's YAML and ``--set`` set them by these names, like constructor arguments; the base
    method's optimiser reads ``lr``, ``weight_decay`` and ``lr_patience``, the runner's loaders
    ``batch_size``. A method whose paper differs declares its own defaults as a class attribute
    (``fit_defaults = FitSettings(lr=2e-3)``), not as arguments of its constructor.
    """

    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 0.0  # Adam weight decay
    lr_patience: int = 5  # validation epochs without improvement before the LR halves (< early_stop_patience)
    batch_size: int = 32  # training and evaluation batch size


def constructor_params(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword arguments ``cls(data=..., **config)`` takes: the constructor's own and, where it
    forwards ``**kwargs`` to the base method, the :class:`FitSettings` with ``cls.fit_defaults``."""
    params = inspect.signature(cls.__init__).parameters
    own = {n: p for n, p in params.items()
           if n not in ("self", *RUNTIME_ARGS) and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return own
    return {**own, **{n: p for n, p in _fit_params(cls).items() if n not in own}}


def _fit_params(cls: type) -> dict[str, inspect.Parameter]:
    hints = typing.get_type_hints(FitSettings)
    return {f.name: inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=hints[f.name],
                                      default=getattr(cls.fit_defaults, f.name))
            for f in fields(FitSettings)}


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


def resolve_config(cls: type, config: dict[str, Any], *, source: str = "config") -> dict[str, Any]:
    """Constructor defaults overlaid with ``config``: the fully resolved hyperparameters."""
    validate_config(cls, config, source=source)
    check_values(cls, config, source=source)
    resolved = {n: p.default for n, p in constructor_params(cls).items() if p.default is not p.empty}
    resolved.update(config)
    return resolved




#: Keys of a method's YAML that the runner reads (its training budget), not the constructor. Values
#: here apply where the method's paper is silent (see docs/protocols.md, "Training budget").
BUDGET_DEFAULTS: dict[str, int] = {"max_epochs": 30, "early_stop_patience": 10}


def split_budget(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
    """``config`` -> (constructor arguments, training budget with the benchmark defaults filled in)."""
    budget = {**BUDGET_DEFAULTS, **{k: config[k] for k in BUDGET_DEFAULTS if k in config}}
    return {k: v for k, v in config.items() if k not in BUDGET_DEFAULTS}, budget


@dataclass(frozen=True)
class Range:
    """Allowed values of a numeric hyperparameter; ``low_open`` excludes ``low`` itself."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def admits(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or value <= self.high

    def __str__(self) -> str:
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        return f"{'(' if self.low_open else '['}{low}, {high}]"


BUDGET_RANGES: dict[str, Range] = {"max_epochs": Range(1), "early_stop_patience": Range(1)}


def _type_error(value: Any, annotation: Any) -> str | None:
    """Why ``value`` does not fit ``annotation`` (None when it fits); unknown annotations fit."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is inspect.Parameter.empty or annotation is Any:
        return None
    if origin in (typing.Union, types.UnionType):
        reasons = [_type_error(value, arg) for arg in args]
        return None if any(r is None for r in reasons) else f"expected {annotation}"
    if annotation is type(None):
        return None if value is None else "expected null"
    if origin is typing.Literal:
        return None if value in args else f"expected one of {', '.join(map(repr, args))}"
    if annotation is bool:
        return None if isinstance(value, bool) else "expected true or false"
    if annotation is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "expected an integer"
    if annotation is float:
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "expected a number"
    if annotation is str:
        return None if isinstance(value, str) else "expected a string"
    if origin in (list, tuple) or annotation in (list, tuple):
        return None if isinstance(value, (list, tuple)) else "expected a list"
    if origin is dict or annotation is dict:
        return None if isinstance(value, dict) else "expected a mapping"
    return None


def _annotations(cls: type) -> dict[str, Any]:
    """The evaluated annotations of :func:`constructor_params`; one that cannot be evaluated is not checked."""
    own = inspect.signature(cls.__init__).parameters
    fit = {n: p.annotation for n, p in constructor_params(cls).items() if n not in own}
    return {**fit, **_own_annotations(cls)}


def _own_annotations(cls: type) -> dict[str, Any]:
    """The evaluated annotations of the constructor's own signature."""
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # a name only imported for type checking: check the others
        namespace = vars(inspect.getmodule(cls))
        hints = {}
        for name, parameter in inspect.signature(cls.__init__).parameters.items():
            try:
                annotation = parameter.annotation
                hints[name] = eval(annotation, namespace) if isinstance(annotation, str) else annotation
            except Exception:
                continue
        return hints


def check_values(cls: type, config: dict[str, Any], *, source: str = "config") -> None:
    """Refuse values that do not fit the constructor's type annotations or the declared ranges.

    Ranges come from ``cls.param_ranges`` (name -> :class:`Range`, see ``MMBenchMethod``) and
    :data:`BUDGET_RANGES`; the budget keys must be integers.
    """
    hints = _annotations(cls)
    ranges = {**BUDGET_RANGES, **getattr(cls, "param_ranges", {})}
    for name, value in config.items():
        annotation = int if name in BUDGET_DEFAULTS else hints.get(name, inspect.Parameter.empty)
        reason = _type_error(value, annotation)
        if reason is None and name in ranges and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not ranges[name].admits(value):
                reason = f"must lie in {ranges[name]}"
        if reason is not None:
            raise ValueError(f"{source}: {cls.__name__} {name}={value!r}: {reason}")


@dataclass(frozen=True)
class SearchDimension:
    """One hyperparameter ``mmbench tune`` searches: ``choices``, or the range ``low``..``high``
    (on a log scale with ``log``; integers where the constructor takes an int)."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None
    is_integer: bool = False

    def contains(self, value: Any) -> bool:
        if self.choices is not None:
            return value in self.choices
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high


def search_dimensions(cls: type, space: Any, *, method: str) -> list[SearchDimension]:
    """The validated ``search_space`` of ``method`` (class ``cls``): one dimension per searched argument.

    Raises:
        ValueError: one line naming the method, the key and the problem: an unknown constructor
            argument, a budget key, ``low >= high``, empty choices, a value the constructor refuses.
    """
    if not isinstance(space, dict):
        raise ValueError(f"{method} search_space: expected a mapping of argument -> range, found {space!r}")
    params, hints = constructor_params(cls), _annotations(cls)
    dimensions = []
    for name, entry in space.items():
        where = f"{method} search_space: {name}"
        if name in BUDGET_DEFAULTS:  # an equal budget for every method is the point of tuning
            raise ValueError(f"{where}: the training budget is the same for every tuned method "
                             "(mmbench tune --max-epochs); it is not searched")
        if name not in params:
            close = difflib.get_close_matches(name, params, n=1)
            raise ValueError(f"{where}: unknown constructor argument of {cls.__name__}"
                             + (f" (did you mean {close[0]!r}?)" if close else ""))
        dimension = _dimension(name, entry, where, is_integer=hints.get(name) is int)
        for value in dimension.choices or (dimension.low, dimension.high):
            check_values(cls, {name: value}, source=where)  # every value the search may try must be accepted
        dimensions.append(dimension)
    return dimensions


def _dimension(name: str, entry: Any, where: str, *, is_integer: bool) -> SearchDimension:
    if not isinstance(entry, dict) or not entry or set(entry) - {"low", "high", "log", "choices"}:
        raise ValueError(f"{where}: expected {{low: .., high: .., log: true|false}} or {{choices: [..]}}, "
                         f"found {entry!r}")
    if "choices" in entry:
        choices = entry["choices"]
        if set(entry) != {"choices"}:
            raise ValueError(f"{where}: give either choices or low/high, not both")
        if not isinstance(choices, list) or not choices:
            raise ValueError(f"{where}: choices must be a non-empty list, found {choices!r}")
        if not all(isinstance(c, (bool, int, float, str)) for c in choices):
            raise ValueError(f"{where}: choices must be numbers, strings or booleans, found {choices!r}")
        return SearchDimension(name, choices=tuple(choices))
    low, high, log = _number(entry.get("low")), _number(entry.get("high")), entry.get("log", False)
    if low is None or high is None:
        raise ValueError(f"{where}: a range needs numbers low and high, found {entry!r}")
    if low >= high:
        raise ValueError(f"{where}: low {low:g} >= high {high:g}")
    if not isinstance(log, bool):
        raise ValueError(f"{where}: log must be true or false, found {log!r}")
    if log and low <= 0:
        raise ValueError(f"{where}: a log scale needs low > 0, found {low:g}")
    if is_integer:
        if not (float(low).is_integer() and float(high).is_integer()):
            raise ValueError(f"{where}: {name} takes an integer, so low and high must be integers")
        low, high = int(low), int(high)
    return SearchDimension(name, low, high, log, None, is_integer)


def _number(value: Any) -> float | None:
    """A YAML bound as a number (YAML 1.1 reads ``1e-4`` as a string); None when it is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
