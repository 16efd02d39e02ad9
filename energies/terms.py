"""The grasp energy terms, each for one hand, each returning a scalar (DexVLG eq. 1-4,
App. A.4). Distances in metres; every value and gradient stays finite."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from energies._penetration import (
    box_penetration,
    capsule_penetration,
    frame_penetration,
    sphere_overlap,
)
from energies._safe import safe_normalize
from kinematics import HandModel, LinkPoses, points_to_world
from kinematics._rotations import matmul3, matvec3
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


def part_barrier_energy(clearance: Float[Array, " n"], d_hat: float) -> Float[Array, ""]:
    """E_bar = sum_i b(d_i, d_hat) (DexVLG eq. 1-2): `clearance` is each hand point's
    distance to the surface of the parts other than the target (IPC's point-surface
    distance, read from a grid; DexVLG sums over fingertip-sample pairs instead)."""
    return jnp.sum(ipc_barrier(clearance, d_hat))


def hand_in_object_energy(
    surface_sdf: Float[Array, " n_surface"], margin: float = 0.0
) -> Float[Array, ""]:
    """Hand surface samples inside the object, or closer to its surface than `margin`
    (m): sum of the depths past that clearance."""
    return jnp.sum(jnp.maximum(margin - surface_sdf, 0.0))


# Which size entries grow with a clearance margin: radii, and a box's half extents.
_INFLATE = {
    SPHERE: np.array([1.0, 0.0, 0.0]),
    CAPSULE: np.array([1.0, 0.0, 0.0]),
    BOX: np.array([1.0, 1.0, 1.0]),
}


def object_in_hand_energy(
    hand: HandModel,
    poses: LinkPoses,
    object_points: Float[Array, "m 3"],
    margin: float = 0.0,
) -> Float[Array, ""]:
    """Object surface samples inside the hand's collision primitives, grown by `margin`
    (m; radii and box half extents, so a sample within `margin` of a primitive counts).

    Sum over primitives and points of the penetration depth into the grown primitives (a
    point inside two overlapping primitives counts twice; zero exactly when nothing comes
    within the margin). Summing
    per primitive instead of taking the nearest primitive first avoids a (k, m) stack and
    min; capsules are measured against their world-frame segments, boxes by their nearest
    face; the gradient is formed in the forward pass (`energies._penetration`): this term
    dominated the energy's cost.
    """
    kinds = np.asarray(hand.primitives.kind)
    total = jnp.zeros(())
    for kind in np.unique(kinds):
        sel = np.flatnonzero(kinds == kind)
        axes, centre, size = _primitive_frames(hand, poses, sel)
        size = size + margin * _INFLATE[int(kind)]
        if kind == CAPSULE:
            total = total + capsule_penetration(centre, axes[:, :, 2], size, object_points)
        elif kind == BOX:
            total = total + box_penetration(centre, axes, size, object_points)
        else:
            total = total + frame_penetration(int(kind))(centre, axes, size, object_points)
    return total


def _primitive_frames(hand: HandModel, poses: LinkPoses, sel: np.ndarray):
    """World axes (k, 3, 3; columns), centres (k, 3) and sizes (k, 3) of primitives `sel`."""
    prims = hand.primitives
    body = jnp.asarray(np.asarray(prims.body)[sel])  # jnp: int dtype follows x64 mode
    rot = poses.rot[body]
    axes = matmul3(rot, jnp.asarray(prims.rot)[sel])
    centre = poses.pos[body] + matvec3(rot, jnp.asarray(prims.pos)[sel])
    return axes, centre, jnp.asarray(prims.size)[sel]


def self_penetration_energy(hand: HandModel, poses: LinkPoses) -> Float[Array, ""]:
    """Overlap of self-collision spheres on non-adjacent links: sum of overlaps.

    All sphere pairs are evaluated densely and masked, with the gradient formed in the
    forward pass (`energies._penetration.sphere_overlap`; autodiff of the dense table
    kept several (n, n) intermediates for the backward pass).
    """
    s = hand.spheres
    if not s.pair_i:
        return jnp.zeros(())
    c = points_to_world(poses, s.body, jnp.asarray(s.centers))
    return sphere_overlap(s.pair_i, s.pair_j, len(s.body))(c, jnp.asarray(s.radii))


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
