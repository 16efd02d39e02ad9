"""NaN-free elementary operations (values and gradients finite at zero)."""

from __future__ import annotations

import jax.numpy as jnp

# Squared-length floor: below it a vector counts as zero.
TINY = 1e-12


def safe_normalize(x, axis=-1):
    """x / |x|, and 0 (with a finite gradient) where x = 0."""
    sq = jnp.sum(x * x, axis=axis, keepdims=True)
    return x / jnp.sqrt(sq + TINY)
