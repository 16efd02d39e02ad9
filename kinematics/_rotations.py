"""Small rotation helpers written for XLA fusion (no batched `dot` on 3x3 blocks).

Everything here works on a trailing `(3,)`, `(4,)` or `(3, 3)` block and broadcasts over
leading axes, so the same code serves one hand and a vmapped batch.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

# Squared-norm floor for normalising quaternions: a zero quaternion maps to the identity
# rotation with a finite gradient instead of NaN.
_QUAT_EPS = 1e-12


def matmul3(a: Float[Array, "... 3 3"], b: Float[Array, "... 3 3"]) -> Float[Array, "... 3 3"]:
    """3x3 matrix product written as three broadcast multiply-adds (elementwise only)."""
    return (
        a[..., :, 0, None] * b[..., None, 0, :]
        + a[..., :, 1, None] * b[..., None, 1, :]
        + a[..., :, 2, None] * b[..., None, 2, :]
    )


def matvec3(a: Float[Array, "... 3 3"], v: Float[Array, "... 3"]) -> Float[Array, "... 3"]:
    """3x3 matrix times vector written as three broadcast multiply-adds."""
    return (
        a[..., :, 0] * v[..., 0, None]
        + a[..., :, 1] * v[..., 1, None]
        + a[..., :, 2] * v[..., 2, None]
    )


def quat_to_mat(quat: Float[Array, "... 4"]) -> Float[Array, "... 3 3"]:
    """Rotation matrix of a wxyz quaternion; normalises first, zero quaternion -> identity."""
    sq = jnp.sum(quat * quat, axis=-1, keepdims=True)
    # Where the quaternion is (near) zero, replace it by the identity before normalising so
    # neither the value nor the gradient is NaN (double-where trick).
    small = sq < _QUAT_EPS
    ident = jnp.array([1.0, 0.0, 0.0, 0.0], dtype=quat.dtype)
    quat = jnp.where(small, ident, quat)
    sq = jnp.where(small, 1.0, sq)
    w, x, y, z = jnp.moveaxis(quat / jnp.sqrt(sq), -1, 0)
    row0 = jnp.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1)
    row1 = jnp.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1)
    row2 = jnp.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)
    return jnp.stack([row0, row1, row2], axis=-2)


def axis_angle_to_mat(
    axis: Float[Array, "... 3"], angle: Float[Array, ...]
) -> Float[Array, "... 3 3"]:
    """Rodrigues' formula for a unit axis: R = I + sin(a) K + (1 - cos(a)) (a a^T - I)."""
    s = jnp.sin(angle)[..., None, None]
    c = jnp.cos(angle)[..., None, None]
    x, y, z = jnp.moveaxis(axis, -1, 0)
    zero = jnp.zeros_like(x)
    k = jnp.stack(
        [jnp.stack([zero, -z, y], -1), jnp.stack([z, zero, -x], -1), jnp.stack([-y, x, zero], -1)],
        axis=-2,
    )
    eye = jnp.eye(3, dtype=k.dtype)
    outer = axis[..., :, None] * axis[..., None, :]
    return eye + s * k + (1.0 - c) * (outer - eye)
