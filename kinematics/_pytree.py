"""Pytree dataclass helpers shared by the hand and object models."""

from __future__ import annotations

import dataclasses


def static_field(**kwargs):
    """A dataclass field kept as static pytree metadata (names, counts, indices)."""
    return dataclasses.field(metadata=dict(static=True), **kwargs)
