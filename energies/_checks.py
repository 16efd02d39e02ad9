"""Field checks for the settings dataclasses (energies, synthesis, validation).

A bad setting fails where it is made, in one line that names the field, its value and
what it must be, instead of deep inside a compiled optimizer (a negative weight or
margin would otherwise run and quietly reward what it should penalise).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

Rule = tuple[Callable[[Any], bool], str]


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
