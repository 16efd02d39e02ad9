"""Opening a generated grasp out of the object's cloud (`generate(..., open_to_clear=True)`).

The network sets the palm and each finger to within a few millimetres either side of
the surface, and a stored pose that lies more than 3 mm inside fails Suc however well
the squeeze then holds. `generate(open_by=)` opens every finger by one fixed angle;
here each sample's palm is backed off along its normal, and then each of its fingers is
opened, by the least step that takes it out of the given cloud (its surface samples
at least `FINGER_CLEARANCE` above the cloud's grid, `_hand_depth.cloud_sdf` /
`view_sdf`); the validation's closing (pregrasp → grasp → squeeze, the wrist 4 mm on
along the palm normal) then closes that gap in the simulation. A finger (or palm) that
no step clears takes the least step within `TIE` of the highest it reaches. It reads
only the cloud, as guidance does, and moves a hand only back along its own closing
motions.

A finger is the chain of bodies from one of the hand's finger contact candidates
(`hand.contacts`, all but the palm) up to the first body another finger shares; its
joints are the independent joints of those bodies. Everything else (the root and
bodies fingers share) is the palm.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from jaxgrasp._hand_depth import posed_surface
from jaxgrasp.sdf import SDFGrid, sdf_query
from kinematics import HandModel
from sim.grasps import back_off, rotate

# The steps tried, least first: the palm backed off along its normal (m), then each
# finger opened (rad; `sim.back_off`). One count for both, so one compilation serves
# both passes. Beyond 0.14 rad the fingers stop reaching the object (session 53:
# fixed openings of 0.1 rad held 38 % against 60).
PALM_BACK_STEPS = np.linspace(0.0, 0.014, 15)
FINGER_OPEN_STEPS = np.linspace(0.0, 0.14, 15)
# How far above the cloud a finger's surface samples must end (m) and the palm's. Chosen
# in session 55 on the selection split (instance 6; the 20000-step model, temperature
# 0.35, raw Suc; benchmarks/HISTORY.md, "Session 55"): fingers at 0 / 1 / 2 / 3 mm
# 44.4 / 46.6 / 46.8 / 46.8 %, held 64.1 / 64.1 / 63.1 / 62.3 %, so the least on the
# plateau; the palm at 1 mm as well (fingers at 2): 44.6 %.
FINGER_CLEARANCE = 0.001
PALM_CLEARANCE = 0.0
# Heights within this of each other (m) count as equal where no step clears.
TIE = 1e-4


@dataclasses.dataclass(frozen=True)
class FingerGroups:
    """Which finger each body and each independent joint of a hand belongs to.

    Fields:
        names: the fingers, in `hand.contacts` order (the palm left out).
        body: index into `names` of each body's finger, -1 for the palm. Shape: (n_bodies,).
        q: index into `names` of each independent joint's finger, -1 for joints of the
            palm. Shape: (n_q,).
    """

    names: tuple[str, ...]
    body: np.ndarray
    q: np.ndarray

    @classmethod
    def of(cls, hand: HandModel) -> FingerGroups:
        names = tuple(dict.fromkeys(f for f in hand.contacts.finger if f != "palm"))
        owners: list[set[str]] = [set() for _ in range(hand.n_bodies)]
        for finger, body in zip(hand.contacts.finger, hand.contacts.body, strict=True):
            if finger == "palm":
                continue
            b = int(body)
            while b >= 0:  # the contact's body and every body above it
                owners[b].add(finger)
                b = hand.body_parent[b]
        body_finger = np.array(
            [names.index(next(iter(o))) if len(o) == 1 else -1 for o in owners], dtype=np.int64
        )
        q_finger = np.array(
            [body_finger[hand.joint_body[hand.joint_names.index(n)]] for n in hand.q_names],
            dtype=np.int64,
        )
        return cls(names=names, body=body_finger, q=q_finger)


@functools.partial(jax.jit, static_argnames=("n_groups",))
def _group_heights(
    hand: HandModel,
    grid: SDFGrid,
    group: Int[Array, " n_surface"],
    root_pos: Float[Array, "n 3"],
    root_quat: Float[Array, "n 4"],
    q: Float[Array, "n n_q"],
    n_groups: int,
) -> Float[Array, "n n_groups"]:
    """The lowest height (m) of each group's surface samples above the cloud (negative
    below it), groups 0..n_groups-1 by `group` (the palm's samples are the last group).
    Shape: (n, n_groups)."""
    member = jnp.arange(n_groups)[None, :] == group[:, None]

    def one(pos, quat, qq):
        height = sdf_query(grid, posed_surface(hand, pos, quat, qq)[1])[0]
        return jnp.min(jnp.where(member, height[:, None], jnp.inf), axis=0)

    return jax.vmap(one)(root_pos, root_quat, q)


def _least_clearing_step(height: np.ndarray, clearance: float) -> np.ndarray:
    """Per row, the first step whose height clears `clearance`; where none does, the
    first within `TIE` of the highest (opening further for less gains nothing).
    Shape: height (b, k, ...) -> (b, ...)."""
    best = height.max(axis=1, keepdims=True)
    target = np.where(best >= clearance, clearance, best - TIE)
    return np.argmax(height >= target, axis=1)


def open_to_clear(
    hand: HandModel,
    grid: SDFGrid,
    root_pos: np.ndarray,
    root_quat: np.ndarray,
    q: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Grasps backed out of a cloud (see the module docstring): `grid` its signed
    distances (`_hand_depth.cloud_sdf` / `view_sdf`, JAX arrays).

    Shapes: root_pos (b, 3), root_quat (b, 4), q (b, n_q). Returns the root positions
    (b, 3), the joints (b, n_q), how far each palm was backed off (m, (b,)) and how far
    each finger was opened (rad, (b, n_fingers))."""
    groups = FingerGroups.of(hand)
    n_fingers = len(groups.names)
    point_group = groups.body[np.asarray(hand.surface.body)]
    point_group = jnp.asarray(np.where(point_group < 0, n_fingers, point_group))
    b, k = len(q), len(PALM_BACK_STEPS)
    assert root_pos.shape == (b, 3) and root_quat.shape == (b, 4) and q.shape == (b, hand.n_q)

    def heights(pos, quat, qq):  # (b, k, ...) candidates -> (b, k, n_fingers + 1)
        out = _group_heights(
            hand,
            grid,
            point_group,
            jnp.asarray(pos.reshape(b * k, 3), jnp.float32),
            jnp.asarray(np.broadcast_to(quat[:, None], (b, k, 4)).reshape(b * k, 4), jnp.float32),
            jnp.asarray(qq.reshape(b * k, -1), jnp.float32),
            n_groups=n_fingers + 1,
        )
        return np.asarray(out, dtype=np.float64).reshape(b, k, n_fingers + 1)

    unit = root_quat / np.maximum(np.linalg.norm(root_quat, axis=-1, keepdims=True), 1e-12)
    assert hand.spec is not None
    normal = rotate(unit, np.asarray(hand.spec.palm.normal, dtype=np.float64))  # (b, 3)
    backed = root_pos[:, None] - PALM_BACK_STEPS[None, :, None] * normal[:, None]
    palm = _least_clearing_step(
        heights(backed, unit, np.broadcast_to(q[:, None], (b, k, hand.n_q)))[..., -1],
        PALM_CLEARANCE,
    )
    pos = backed[np.arange(b), palm]
    opened = np.stack([back_off(hand, q, step) for step in FINGER_OPEN_STEPS], axis=1)
    finger = _least_clearing_step(
        heights(np.broadcast_to(pos[:, None], (b, k, 3)), unit, opened)[..., :n_fingers],
        FINGER_CLEARANCE,
    )
    opening = FINGER_OPEN_STEPS[finger]  # (b, n_fingers)
    per_joint = np.where(groups.q[None] >= 0, opening[:, np.maximum(groups.q, 0)], 0.0)
    return pos, back_off(hand, q, per_joint), PALM_BACK_STEPS[palm], opening
