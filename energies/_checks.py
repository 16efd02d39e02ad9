"""Field checks for the settings dataclasses (energies, synthesis, validation).

A bad setting fails where it is made, in one line that names the field, its value and
what it must be, instead of deep inside a compiled optimizer (a negative weight or
margin would otherwise run and quietly reward what it should penalise). `from_dict`
rebuilds one from its JSON form (a dataset manifest, a training run's `run.json`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import numpy as np

Rule = tuple[Callable[[Any], bool], str]
T = TypeVar("T")


def is_number(x: Any) -> bool:
    """A finite real number (bools are not numbers here)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def is_integer(x: Any) -> bool:
    """An integer, Python's or numpy's (bools are not integers here)."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


NON_NEGATIVE: Rule = (lambda x: is_number(x) and x >= 0, "a finite number >= 0")
POSITIVE: Rule = (lambda x: is_number(x) and x > 0, "a finite number > 0")
FINITE: Rule = (is_number, "a finite number")
UNIT_INTERVAL: Rule = (lambda x: is_number(x) and 0 <= x <= 1, "a number in [0, 1]")
POSITIVE_INT: Rule = (lambda x: is_integer(x) and x > 0, "an integer > 0")
NON_NEGATIVE_INT: Rule = (lambda x: is_integer(x) and x >= 0, "an integer >= 0")
BOOL: Rule = (lambda x: isinstance(x, bool), "True or False")


def one_of(*choices: Any) -> Rule:
    return (lambda x: x in choices, "one of " + ", ".join(repr(c) for c in choices))


def check_fields(config: Any, rules: dict[str, Rule], error: type[Exception] = ValueError) -> None:
    """Raise `error` naming every field of `config` that breaks its rule. Traced values
    (the optimizer traces some weights and the table height) are not checked; concrete
    0-d arrays are checked as the scalars they hold."""
    bad = []
    for name, (ok, what) in rules.items():
        value = getattr(config, name)
        if isinstance(value, jax.core.Tracer):
            continue
        if isinstance(value, jax.Array | np.ndarray) and np.ndim(value) == 0:
            value = np.asarray(value).item()
        try:
            good = bool(ok(value))
        except (TypeError, ValueError):
            good = False
        if not good:
            bad.append(f"{name} = {value!r} (must be {what})")
    if bad:
        raise error(f"invalid {type(config).__name__}: {'; '.join(bad)}")


def from_dict(cls: type[T], data: Any, error: type[Exception] = ValueError, where: str = "") -> T:
    """Rebuild a settings dataclass (with defaults for every field) from its
    `dataclasses.asdict` form after a JSON round trip: nested settings dataclasses from
    their dicts, tuples from lists; a missing field keeps its default, an unknown one
    raises `error` naming it (the fields' own checks run in the constructor)."""
    where = where or cls.__name__
    if not isinstance(data, dict):
        raise error(f"{where}: expected a mapping of settings, got {type(data).__name__}")
    defaults = cls()
    names = {f.name for f in dataclasses.fields(defaults)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise error(f"{where}: unknown setting(s) {', '.join(map(repr, unknown))}")
    values = {}
    for name, value in data.items():
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default):
            value = from_dict(type(default), value, error, f"{where}.{name}")
        elif isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return cls(**values)


def read_flag(data: dict, name: str, error: type[Exception], where: str) -> bool:
    """The true / false setting `name` of a JSON mapping (a dataset manifest's or a
    run.json's; False where it is missing); anything else raises `error` naming `where`."""
    value = data.get(name, False)
    if not BOOL[0](value):
        raise error(f"{where}: {name} must be true or false, got {value!r}")
    return value
