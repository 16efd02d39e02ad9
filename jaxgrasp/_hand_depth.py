"""Where a generated hand lies against the object's cloud: the physics of the grasp
generator's guided sampling (`generate(..., guidance=)`, after DexGrasp Anything's
physics-guided sampling, Zhong et al. 2025).

`grasp_surface` places the hand of one normalised grasp vector (`jaxgrasp.grasp_vector`)
with the pure-JAX forward kinematics (callers vmap over grasps); sampling knows only the
given cloud, so `cloud_distance` reads the signed distance to the tangent plane of each
point's nearest cloud point.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from energies._safe import safe_normalize
from kinematics import HandModel, forward_kinematics, points_to_world


def rotation_from_6d(six: Float[Array, " 6"]) -> Float[Array, "3 3"]:
    """Gram-Schmidt of the first two columns (finite for any input, zero included)."""
    e1 = safe_normalize(six[:3])
    b = six[3:6] - jnp.sum(e1 * six[3:6]) * e1
    e2 = safe_normalize(b)
    return jnp.stack([e1, e2, jnp.cross(e1, e2)], axis=-1)


def grasp_surface(
    hand: HandModel,
    mean: Float[Array, " d"],
    std: Float[Array, " d"],
    z: Float[Array, " d"],
    origin: Float[Array, " 3"],
) -> Float[Array, "n_surface 3"]:
    """The surface samples of the hand of a normalised grasp vector `z` (`Normalizer`
    statistics `mean`, `std`) whose translation is relative to `origin` (an anchored
    network's anchor point; zeros otherwise), in the object frame."""
    grasp = z * std + mean
    rot = rotation_from_6d(grasp[3:9])
    identity = jnp.array([1.0, 0.0, 0.0, 0.0], z.dtype)
    # FK in the root frame: the root pose is a matrix here, applied below.
    poses = forward_kinematics(hand, jnp.zeros(3, z.dtype), identity, grasp[9:])
    local = points_to_world(poses, hand.surface.body, jnp.asarray(hand.surface.points))
    return local @ rot.T + grasp[:3] + origin


def cloud_distance(
    points: Float[Array, "n 3"],
    cloud: Float[Array, "m 3"],
    normals: Float[Array, "m 3"],
) -> Float[Array, " n"]:
    """Signed distance (m; negative inside) of each point to the tangent plane of its
    nearest point of an oriented cloud. Only the points carry a gradient; the nearest
    point is picked without one."""
    cloud, normals = jnp.asarray(cloud), jnp.asarray(normals)
    p = jax.lax.stop_gradient(points)
    d2 = jnp.sum(p * p, axis=-1)[:, None] - 2.0 * p @ cloud.T + jnp.sum(cloud * cloud, axis=-1)
    nearest = jnp.argmin(d2, axis=-1)
    return jnp.sum((points - cloud[nearest]) * normals[nearest], axis=-1)
