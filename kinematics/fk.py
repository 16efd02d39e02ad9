"""Pure-JAX forward kinematics of a `HandModel` (one hand per call; `jax.vmap` to batch).

Conventions follow `mujoco.mj_kinematics`: a body's frame is its parent's frame composed
with the body offset (`body_pos`, `body_rot`) and then with each of its joints in order;
a hinge rotates by `q - qpos0` about its axis through its anchor, a slide translates by
`q - qpos0` along its axis.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from kinematics._rotations import axis_angle_to_mat, matmul3, matvec3, quat_to_mat
from kinematics.hand_model import HINGE, HandModel


class LinkPoses(NamedTuple):
    """World poses of every body of a hand, in the hand's body order.

    Fields:
        pos: body origins in the world frame. Shape: (n_bodies, 3).
        rot: body orientations (columns = body axes in world). Shape: (n_bodies, 3, 3).
    """

    pos: Float[Array, "n_bodies 3"]
    rot: Float[Array, "n_bodies 3 3"]


def full_joint_angles(hand: HandModel, q: Float[Array, " n_q"]) -> Float[Array, " n_joints"]:
    """All joint values (independent and coupled) from the independent joint vector.

    Each joint is `y0 + sum_k a_k (q[src] - x0)^k`, evaluated with Horner's rule (no
    `pow`, so gradients stay finite at zero). Shape: (n_joints,).
    """
    q = jnp.asarray(q)
    _check_shape(q, (hand.n_q,), "q")
    x = q[np.asarray(hand.joint_source)] - hand.coupling_x0
    poly = jnp.asarray(hand.coupling_poly)
    y = poly[:, -1]
    for k in range(poly.shape[1] - 2, -1, -1):
        y = y * x + poly[:, k]
    return hand.coupling_y0 + y


def forward_kinematics(
    hand: HandModel,
    root_pos: Float[Array, 3],
    root_quat: Float[Array, 4],
    q: Float[Array, " n_q"],
) -> LinkPoses:
    """World poses of every body of `hand`.

    Args:
        hand: the hand model.
        root_pos: world position of the root body. Shape: (3,).
        root_quat: world orientation of the root body, wxyz (normalised here; a zero
            quaternion means identity). Shape: (4,).
        q: independent joint values (`hand.q_names`). Shape: (n_q,).

    Returns:
        `LinkPoses(pos (n_bodies, 3), rot (n_bodies, 3, 3))`.
    """
    root_pos = jnp.asarray(root_pos)
    root_quat = jnp.asarray(root_quat)
    _check_shape(root_pos, (3,), "root_pos")
    _check_shape(root_quat, (4,), "root_quat")
    plan = _plan(hand.body_parent, hand.joint_body, hand.joint_type)

    theta = full_joint_angles(hand, q) - hand.joint_ref
    axis = jnp.asarray(hand.joint_axis)
    anchor = jnp.asarray(hand.joint_anchor)
    # Joint motion as a rigid transform (R_j, t_j) in the body frame, all joints at once.
    rj = axis_angle_to_mat(axis, jnp.where(plan.is_hinge, theta, 0.0))
    tj = jnp.where(plan.is_hinge[:, None], anchor - matvec3(rj, anchor), axis * theta[:, None])

    # Walk the tree body by body (static unroll: parents precede children in MuJoCo order).
    # Small per-body elementwise blocks fuse well under vmap; gathers/scatters would not.
    rot = [quat_to_mat(root_quat)]
    pos = [root_pos]
    for b in range(1, hand.n_bodies):
        r_loc, p_loc = hand.body_rot[b], hand.body_pos[b]
        for j in plan.joints_of[b]:
            p_loc = p_loc + matvec3(r_loc, tj[j])
            r_loc = matmul3(r_loc, rj[j])
        parent = hand.body_parent[b]
        pos.append(pos[parent] + matvec3(rot[parent], p_loc))
        rot.append(matmul3(rot[parent], r_loc))
    return LinkPoses(pos=jnp.stack(pos), rot=jnp.stack(rot))


def points_to_world(
    poses: LinkPoses, body: tuple[int, ...], local: Float[Array, "n 3"]
) -> Float[Array, "n 3"]:
    """Move body-frame points (e.g. surface samples) into the world. Shape: (n, 3)."""
    idx = np.asarray(body, dtype=np.int32)
    return poses.pos[idx] + matvec3(poses.rot[idx], local)


def vectors_to_world(
    poses: LinkPoses, body: tuple[int, ...], local: Float[Array, "n 3"]
) -> Float[Array, "n 3"]:
    """Rotate body-frame directions (e.g. normals) into the world. Shape: (n, 3)."""
    return matvec3(poses.rot[np.asarray(body, dtype=np.int32)], local)


class _Plan(NamedTuple):
    is_hinge: np.ndarray
    joints_of: tuple[tuple[int, ...], ...]


@cache
def _plan(
    parents: tuple[int, ...], joint_body: tuple[int, ...], joint_type: tuple[int, ...]
) -> _Plan:
    """Static plan of the kinematic tree (cached per structure)."""
    if any(parents[b] >= b for b in range(1, len(parents))):
        raise ValueError("bodies must come after their parents (MuJoCo body order)")
    is_hinge = np.array([t == HINGE for t in joint_type], dtype=bool)
    joints_of = tuple(
        tuple(j for j, jb in enumerate(joint_body) if jb == b) for b in range(len(parents))
    )
    return _Plan(is_hinge, joints_of)


def _check_shape(x, shape: tuple[int, ...], name: str) -> None:
    if x.shape != shape:
        raise ValueError(
            f"{name} must have shape {shape} for one hand (got {x.shape}); batch with jax.vmap"
        )
