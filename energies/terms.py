"""The grasp energy terms, each for one hand, each returning a scalar (DexVLG eq. 1-4,
App. A.4). Distances in metres; every value and gradient stays finite."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from energies._safe import safe_norm, safe_normalize
from energies.target import GraspTarget
from kinematics import HandModel, LinkPoses, points_to_world
from kinematics.geometry import BOX, CAPSULE, SPHERE

# The barrier's distance floor: b(d) is evaluated at max(d, BARRIER_MIN_DISTANCE) so it is
# huge but finite, with a finite (large) gradient, when a fingertip touches a point.
BARRIER_MIN_DISTANCE = 1e-6


def distance_energy(
    contact_sdf: Float[Array, " n_contacts"],
    is_palm: Bool[Array, " n_contacts"],
    w_palm: float,
    d0: float,
) -> Float[Array, ""]:
    """E_dis = sum_fingers |d(x_n)| + w_palm sum_palm |d(x_palm) - d0| (eq. 3)."""
    fingers = jnp.where(is_palm, 0.0, jnp.abs(contact_sdf))
    palm = jnp.where(is_palm, jnp.abs(contact_sdf - d0), 0.0)
    return jnp.sum(fingers) + w_palm * jnp.sum(palm)


def ipc_barrier(d: Float[Array, ...], d_hat: float) -> Float[Array, ...]:
    """b(d) = -(d - d_hat)^2 ln(d / d_hat) for 0 < d < d_hat, else 0 (eq. 2), d >= floor."""
    d = jnp.maximum(d, BARRIER_MIN_DISTANCE)
    inside = d < d_hat
    d_in = jnp.where(inside, d, d_hat)  # keep the log's argument in range where unused
    return jnp.where(inside, -((d_in - d_hat) ** 2) * jnp.log(d_in / d_hat), 0.0)


def part_barrier_energy(
    fingertips: Float[Array, "n_tips 3"],
    target: GraspTarget,
    target_part: Int[Array, ""] | int,
    d_hat: float,
) -> Float[Array, ""]:
    """E_bar: fingertips against object surface points outside the target part (eq. 1).

    `target_part` < 0 means the whole object is the target (no barrier).
    """
    pts = jnp.asarray(target.points)
    outside = (jnp.asarray(target.point_part) != target_part) & (target_part >= 0)
    d = safe_norm(fingertips[:, None, :] - pts[None, :, :])
    return jnp.sum(jnp.where(outside[None, :], ipc_barrier(d, d_hat), 0.0))


def hand_in_object_energy(surface_sdf: Float[Array, " n_surface"]) -> Float[Array, ""]:
    """Hand surface samples inside the object: sum of penetration depths."""
    return jnp.sum(jnp.maximum(-surface_sdf, 0.0))


def primitive_sdf(
    kind: tuple[int, ...], size: Float[Array, "k 3"], local: Float[Array, "k n 3"]
) -> Float[Array, "k n"]:
    """Signed distance of points given in each primitive's frame (static kinds)."""
    kinds = np.asarray(kind)
    r = size[:, None, 0]
    # sphere
    d_sphere = safe_norm(local) - r
    # capsule along local z, half length size[1]
    z = jnp.clip(local[..., 2], -size[:, None, 1], size[:, None, 1])
    axis_pt = jnp.stack([jnp.zeros_like(z), jnp.zeros_like(z), z], -1)
    d_capsule = safe_norm(local - axis_pt) - r
    # box
    qd = jnp.abs(local) - size[:, None, :]
    d_box = safe_norm(jnp.maximum(qd, 0.0)) - 1e-6 + jnp.minimum(jnp.max(qd, axis=-1), 0.0)
    return jnp.select(
        [
            (kinds == SPHERE)[:, None],
            (kinds == CAPSULE)[:, None],
            (kinds == BOX)[:, None],
        ],
        [d_sphere, d_capsule, d_box],
    )


def object_in_hand_energy(
    hand: HandModel, poses: LinkPoses, object_points: Float[Array, "m 3"]
) -> Float[Array, ""]:
    """Object surface samples inside the hand's collision primitives: sum of depths."""
    prims = hand.primitives
    body = np.asarray(prims.body)
    rot = poses.rot[body] @ jnp.asarray(prims.rot)  # (k, 3, 3) primitive axes in world
    centre = points_to_world(poses, prims.body, jnp.asarray(prims.pos))  # (k, 3)
    local = jnp.einsum("kji,kmj->kmi", rot, object_points[None] - centre[:, None])
    d = primitive_sdf(prims.kind, jnp.asarray(prims.size), local)  # (k, m)
    depth = jnp.maximum(-jnp.min(d, axis=0), 0.0)
    return jnp.sum(depth)


def self_penetration_energy(hand: HandModel, poses: LinkPoses) -> Float[Array, ""]:
    """Overlap of self-collision spheres on non-adjacent links: sum of overlaps."""
    s = hand.spheres
    if not s.pair_i:
        return jnp.zeros(())
    centers = points_to_world(poses, s.body, jnp.asarray(s.centers))
    i, j = np.asarray(s.pair_i), np.asarray(s.pair_j)
    radii = jnp.asarray(s.radii)
    gap = safe_norm(centers[i] - centers[j]) - radii[i] - radii[j]
    return jnp.sum(jnp.maximum(-gap, 0.0))


def joint_limit_energy(hand: HandModel, q: Float[Array, " n_q"]) -> Float[Array, ""]:
    """L1 violation of the independent joints' limits."""
    lo, hi = jnp.asarray(hand.q_range).T
    return jnp.sum(jnp.maximum(q - hi, 0.0) + jnp.maximum(lo - q, 0.0))


def direction_energy(
    inward_normals: Float[Array, "n 3"], front_normals: Float[Array, "n 3"]
) -> Float[Array, ""]:
    """E_dir = sum_i (1 - c_i . N_i): object inward normal vs the link's front normal."""
    return jnp.sum(1.0 - jnp.sum(inward_normals * front_normals, axis=-1))


def table_energy(
    points: Float[Array, "n 3"], normal: Float[Array, 3], height: float
) -> Float[Array, ""]:
    """Hand points below the table plane {x : x . normal = height}: sum of depths."""
    return jnp.sum(jnp.maximum(height - points @ normal, 0.0))


def inward_normals(sdf_gradient: Float[Array, "n 3"]) -> Float[Array, "n 3"]:
    """Unit object normals pointing into the object (minus the SDF gradient)."""
    return -safe_normalize(sdf_gradient)
