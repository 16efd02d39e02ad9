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

    # Local transform of every body: its offset, then its k-th joint for k = 0, 1, ...
    # (bodies without a k-th joint get the identity), all bodies at once.
    r_loc = jnp.asarray(hand.body_rot)
    p_loc = jnp.asarray(hand.body_pos)
    eye = jnp.eye(3, dtype=r_loc.dtype)
    for joint_idx, has_joint in plan.joint_slots:
        r_k = jnp.where(has_joint[:, None, None], rj[joint_idx], eye)
        t_k = jnp.where(has_joint[:, None], tj[joint_idx], 0.0)
        p_loc = p_loc + matvec3(r_loc, t_k)
        r_loc = matmul3(r_loc, r_k)

    # Compose down the tree one depth level at a time: every body of a level at once,
    # gathering its parent from the previous level only (small elementwise blocks that
    # fuse well under vmap). The levels are put back in body order at the end.
    rot = quat_to_mat(root_quat)[None]
    pos = root_pos[None]
    rots, poss = [rot], [pos]
    for bodies, parent_in_prev in plan.levels:
        r_par, p_par = rot[parent_in_prev], pos[parent_in_prev]
        pos = p_par + matvec3(r_par, p_loc[bodies])
        rot = matmul3(r_par, r_loc[bodies])
        rots.append(rot)
        poss.append(pos)
    inverse = plan.level_order_inverse
    return LinkPoses(pos=jnp.concatenate(poss)[inverse], rot=jnp.concatenate(rots)[inverse])


def points_to_world(
    poses: LinkPoses, body: tuple[int, ...], local: Float[Array, "n 3"]
) -> Float[Array, "n 3"]:
    """Move body-frame points (e.g. surface samples) into the world. Shape: (n, 3)."""
    return _rigid_apply(poses, body, local, translate=True)


def vectors_to_world(
    poses: LinkPoses, body: tuple[int, ...], local: Float[Array, "n 3"]
) -> Float[Array, "n 3"]:
    """Rotate body-frame directions (e.g. normals) into the world. Shape: (n, 3)."""
    return _rigid_apply(poses, body, local, translate=False)


def _rigid_apply(poses: LinkPoses, body: tuple[int, ...], local, translate: bool):
    # Points come grouped by body (runs of equal indices): transform each run with its
    # body's pose by broadcasting instead of gathering one 3x3 matrix per point.
    local = jnp.asarray(local)
    out = []
    for b, start, stop in _runs(body):
        r = poses.rot[b]
        pts = local[start:stop]
        moved = pts[:, 0:1] * r[:, 0] + pts[:, 1:2] * r[:, 1] + pts[:, 2:3] * r[:, 2]
        out.append(moved + poses.pos[b] if translate else moved)
    return jnp.concatenate(out) if out else local


@cache
def _runs(body: tuple[int, ...]) -> tuple[tuple[int, int, int], ...]:
    """(body, start, stop) of each run of equal consecutive body indices."""
    runs, start = [], 0
    for k in range(1, len(body) + 1):
        if k == len(body) or body[k] != body[start]:
            runs.append((body[start], start, k))
            start = k
    return tuple(runs)


class _Plan(NamedTuple):
    # Index arrays are int32 on purpose: this plan is cached and JAX caches the dtype
    # canonicalisation of a NumPy constant by identity, so an int64 index first used with
    # x64 off (-> int32) and later with x64 on breaks indexing (int32 + int64).
    is_hinge: np.ndarray
    # Per joint slot k: (joint index of each body's k-th joint or 0, whether it has one).
    joint_slots: tuple[tuple[np.ndarray, np.ndarray], ...]
    # Per depth level >= 1: (bodies of the level, position of each parent in the level above).
    levels: tuple[tuple[np.ndarray, np.ndarray], ...]
    # Index that puts the level-ordered bodies back in body order.
    level_order_inverse: np.ndarray


@cache
def _plan(
    parents: tuple[int, ...], joint_body: tuple[int, ...], joint_type: tuple[int, ...]
) -> _Plan:
    """Static plan of the kinematic tree (cached per structure)."""
    n = len(parents)
    if any(parents[b] >= b for b in range(1, n)):
        raise ValueError("bodies must come after their parents (MuJoCo body order)")
    is_hinge = np.array([t == HINGE for t in joint_type], dtype=bool)
    joints_of = [[j for j, jb in enumerate(joint_body) if jb == b] for b in range(n)]
    slots = []
    for k in range(max(len(js) for js in joints_of)):
        idx = np.array([js[k] if len(js) > k else 0 for js in joints_of], dtype=np.int32)
        has = np.array([len(js) > k for js in joints_of])
        slots.append((idx, has))

    depth = [0] * n
    for b in range(1, n):
        depth[b] = depth[parents[b]] + 1
    by_level = [[b for b in range(n) if depth[b] == d] for d in range(max(depth) + 1)]
    slot = {b: i for level in by_level for i, b in enumerate(level)}
    levels = tuple(
        (np.array(level, dtype=np.int32), np.array([slot[parents[b]] for b in level], np.int32))
        for level in by_level[1:]
    )
    order = np.concatenate([np.array(level) for level in by_level])
    return _Plan(is_hinge, tuple(slots), levels, np.argsort(order).astype(np.int32))


def _check_shape(x, shape: tuple[int, ...], name: str) -> None:
    if x.shape != shape:
        raise ValueError(
            f"{name} must have shape {shape} for one hand (got {x.shape}); batch with jax.vmap"
        )
