"""The six-direction disturbance test (DexGraspBench protocol, DESIGN.md §8), MuJoCo C.

Per grasp: the hand root is placed by mocap, the fingers start at the pregrasp joints,
their servo targets ramp to the grasp and then the squeeze joints (the root moving to
its squeeze position, `GraspPoses.root_pos_squeeze`, during that ramp) while the object is
held in place by a weld (so a poor closing order cannot shove it, and a hand that does
not reach it has nothing to hold when the weld is released); from that state, with the
weld off, six copies each hold for `hold_s` while a force of
`force_scale * mass` N along +-x, +-y, +-z pushes the object's centre of mass. Gravity is
off, so an object that is not held drifts away and fails. All worlds are stepped by
`mujoco.rollout` on a thread pool (MuJoCo's C stepping, no Python per step).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NamedTuple

import jax
import mujoco
import numpy as np
from mujoco import rollout

from kinematics import HandModel, full_joint_angles
from sim.config import SimConfig
from sim.grasps import GraspPoses, rotate
from sim.scene import Scene

DIRECTIONS = np.array(
    [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64
)
DIRECTION_NAMES = ("+x", "-x", "+y", "-y", "+z", "-z")
# Hold steps per rollout call: failed grasps are dropped between calls.
_HOLD_SEGMENT = 100
_S = mujoco.mjtState
_INITIAL = _S.mjSTATE_FULLPHYSICS  # time, qpos, qvel, act, ... (mocap is an input)
_MOCAP = _S.mjSTATE_MOCAP_POS | _S.mjSTATE_MOCAP_QUAT
# Input layouts follow mjtState's bit order: ctrl, xfrc_applied, eq_active, mocap.
_CLOSING_INPUT = _S.mjSTATE_CTRL | _S.mjSTATE_EQ_ACTIVE | _MOCAP
_HOLD_INPUT = _S.mjSTATE_CTRL | _S.mjSTATE_XFRC_APPLIED | _S.mjSTATE_EQ_ACTIVE | _MOCAP


class DisturbanceResult(NamedTuple):
    """Outcome of the disturbance test.

    Fields:
        success: the object stayed within the limits in all six directions. Shape: (B,).
        translation: centre-of-mass displacement after each hold (m). Shape: (B, 6).
        rotation_deg: object rotation after each hold (degrees). Shape: (B, 6).
        settle_translation: displacement after closing, before any force (m). Shape: (B,).
        closed_qpos: the scene's qpos once the hand has closed, before any force (what
            `closed_contacts` reads). Shape: (B, nq).
    """

    success: np.ndarray
    translation: np.ndarray
    rotation_deg: np.ndarray
    settle_translation: np.ndarray
    closed_qpos: np.ndarray

    def limits_crossed(self, config: SimConfig) -> tuple[np.ndarray, np.ndarray]:
        """Which limit each grasp broke (`crossed_limits`). A failed grasp can break
        both; the MuJoCo C test stops a failed grasp's holds at the end of the hold
        segment (`_HOLD_SEGMENT` steps) in which it failed, so these are the limits
        crossed by then. Shape: (B,), (B,)."""
        return crossed_limits(self.translation, self.rotation_deg, config)


def crossed_limits(
    translation: np.ndarray, rotation_deg: np.ndarray, config: SimConfig
) -> tuple[np.ndarray, np.ndarray]:
    """The acceptance rule, in one place: per grasp, whether the object moved at least
    `max_translation` (first) or turned at least `max_rotation_deg` (second) in some
    direction (last axis). A grasp survives when it crossed neither. A NaN (a diverged
    world) counts as crossed. Shape: (...,), (...,)."""
    moved = ~np.all(np.asarray(translation) < config.max_translation, axis=-1)
    turned = ~np.all(np.asarray(rotation_deg) < config.max_rotation_deg, axis=-1)
    return moved, turned


def initial_qpos(scene: Scene, hand: HandModel, q: np.ndarray) -> np.ndarray:
    """qpos of each world: hand joints (coupled ones derived) from q, object at rest at
    the origin. Shape: (B, nq)."""
    q = np.atleast_2d(np.asarray(q, dtype=np.float32))
    joints = np.asarray(_all_joint_angles(hand, q), dtype=np.float64)
    qpos = np.tile(scene.model.qpos0, (len(q), 1))
    qpos[:, scene.joint_qpos] = joints
    qpos[:, scene.object_qpos : scene.object_qpos + 7] = [0, 0, 0, 1, 0, 0, 0]
    return qpos


_all_joint_angles = jax.jit(jax.vmap(full_joint_angles, in_axes=(None, 0)))


def initial_states(scene: Scene, hand: HandModel, grasps: GraspPoses) -> np.ndarray:
    """Full physics states (mjSTATE_FULLPHYSICS) of every grasp at its pregrasp.
    Shape: (B, nstate)."""
    m = scene.model
    data = mujoco.MjData(m)
    qpos = initial_qpos(scene, hand, grasps.q_pregrasp)
    out = np.empty((grasps.count, mujoco.mj_stateSize(m, _INITIAL)))
    for i in range(grasps.count):
        mujoco.mj_resetData(m, data)
        data.qpos[:] = qpos[i]
        mujoco.mj_getState(m, data, out[i], _INITIAL)
    return out


def _mocap_inputs(scene: Scene, grasps: GraspPoses, root_pos=None) -> np.ndarray:
    """mocap_pos, mocap_quat of every mocap body for each grasp, with the hand root at
    `root_pos` (default `grasps.root_pos`). Shape: (B, 7 nmocap)."""
    m = scene.model
    pos = np.tile(m.body_pos[m.body_mocapid >= 0][None], (grasps.count, 1, 1))
    quat = np.tile(m.body_quat[m.body_mocapid >= 0][None], (grasps.count, 1, 1))
    mocap_bodies = np.flatnonzero(m.body_mocapid >= 0)
    order = np.argsort(m.body_mocapid[mocap_bodies])
    pos, quat = pos[:, order], quat[:, order]
    root_pos = grasps.root_pos if root_pos is None else root_pos
    pos[:, scene.mocap], quat[:, scene.mocap] = scene.mocap_pose(root_pos, grasps.root_quat)
    return np.concatenate([pos.reshape(grasps.count, -1), quat.reshape(grasps.count, -1)], axis=1)


def _squeeze_weights(scene: Scene) -> np.ndarray:
    """How far along grasp -> squeeze each closing step's targets are: 0 while the
    fingers close, then a linear ramp to 1. Shape: (close_steps + squeeze_steps,)."""
    c = scene.config
    return np.concatenate([np.zeros(c.close_steps), np.linspace(0.0, 1.0, c.squeeze_steps + 1)[1:]])


def closing_controls(scene: Scene, grasps: GraspPoses) -> np.ndarray:
    """Inputs of the closing phase: servo targets pregrasp -> grasp, then grasp ->
    squeeze, linear in time, the hand root moving to its squeeze position during the
    second ramp; the object weld on; the mocap pose.
    Shape: (B, n_steps, n_q + n_eq + 7 nmocap)."""
    c = scene.config
    a = np.linspace(0.0, 1.0, c.close_steps + 1)[1:, None, None]
    b = np.linspace(0.0, 1.0, c.squeeze_steps + 1)[1:, None, None]
    pre, grasp, squeeze = (
        np.asarray(x, dtype=np.float64)[None]
        for x in (grasps.q_pregrasp, grasps.q_grasp, grasps.q_squeeze)
    )
    ramp = np.concatenate([pre + a * (grasp - pre), grasp + b * (squeeze - grasp)])
    ramp = ramp.transpose(1, 0, 2)
    n, steps = ramp.shape[:2]
    eq = np.tile(_eq_active(scene, weld=True), (n, steps, 1))
    start = _mocap_inputs(scene, grasps)[:, None]
    end = _mocap_inputs(scene, grasps, grasps.squeeze_root_pos())[:, None]
    # Only the positions differ, so the blend leaves the quaternions unit.
    mocap = start + _squeeze_weights(scene)[None, :, None] * (end - start)
    return np.ascontiguousarray(np.concatenate([ramp, eq, mocap], axis=-1))


def _eq_active(scene: Scene, weld: bool) -> np.ndarray:
    """eq_active vector: the model's defaults, with the object weld on or off."""
    active = scene.model.eq_active0.astype(np.float64).copy()
    active[scene.object_weld] = float(weld)
    return active


def hold_controls(scene: Scene, grasps: GraspPoses) -> np.ndarray:
    """Constant inputs of the hold phase for grasp-major, direction-minor worlds: squeeze
    targets, the push on the object, the weld off, the mocap pose at the squeeze.
    Shape: (6 B, 1, n_q + 6 n_body + n_eq + 7 nmocap)."""
    m = scene.model
    n = grasps.count
    xfrc = np.zeros((n, 6, m.nbody, 6))
    xfrc[:, :, scene.object_body, :3] = (
        scene.config.force_scale * scene.config.object_mass * DIRECTIONS[None]
    )
    ctrl = np.repeat(np.asarray(grasps.q_squeeze, dtype=np.float64)[:, None], 6, axis=1)
    eq = np.tile(_eq_active(scene, weld=False), (n, 6, 1))
    squeezed = _mocap_inputs(scene, grasps, grasps.squeeze_root_pos())
    mocap = np.repeat(squeezed[:, None], 6, axis=1)
    control = np.concatenate([ctrl, xfrc.reshape(n, 6, -1), eq, mocap], axis=-1)
    return np.ascontiguousarray(control.reshape(n * 6, 1, -1))


def object_motion(scene: Scene, qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre-of-mass displacement (m) and rotation (degrees) of the object from its start
    (origin, identity) for qpos rows. Shape: (...,), (...,)."""
    pos = qpos[..., scene.object_qpos : scene.object_qpos + 3]
    quat = qpos[..., scene.object_qpos + 3 : scene.object_qpos + 7]
    quat = quat / np.maximum(np.linalg.norm(quat, axis=-1, keepdims=True), 1e-12)
    c = scene.object_com
    translation = np.linalg.norm(pos + rotate(quat, c) - c, axis=-1)
    rotation = np.degrees(2.0 * np.arccos(np.clip(np.abs(quat[..., 0]), 0.0, 1.0)))
    return translation, rotation


def disturbance_test_mujoco(
    scene: Scene,
    hand: HandModel,
    grasps: GraspPoses,
    *,
    nthread: int | None = None,
    chunk: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> DisturbanceResult:
    """Run the test with MuJoCo C on `nthread` threads (default: all cores), `chunk`
    grasps (6 x chunk worlds) at a time to bound the memory of recorded states;
    `progress(grasps done, grasps total)` after each chunk."""
    nthread = nthread or os.cpu_count() or 1
    m = scene.model
    datas = [mujoco.MjData(m) for _ in range(nthread)]
    trans, rot, closed = [], [], []
    for start in range(0, grasps.count, chunk):
        part = grasps.take(slice(start, start + chunk))
        t, r, c = _run_chunk(scene, hand, part, datas)
        trans.append(t)
        rot.append(r)
        closed.append(c)
        if progress is not None:
            progress(start + part.count, grasps.count)
    translation = np.concatenate(trans) if trans else np.zeros((0, 6))
    rotation = np.concatenate(rot) if rot else np.zeros((0, 6))
    closed_qpos = np.concatenate(closed) if closed else np.zeros((0, m.nq))
    moved, turned = crossed_limits(translation, rotation, scene.config)
    return DisturbanceResult(
        success=~(moved | turned),
        translation=translation,
        rotation_deg=rotation,
        settle_translation=object_motion(scene, closed_qpos)[0],
        closed_qpos=closed_qpos,
    )


def _run_chunk(scene, hand, grasps, datas):
    m = scene.model
    c = scene.config
    n = grasps.count
    state0 = initial_states(scene, hand, grasps)
    closing, _ = rollout.rollout(
        m,
        datas,
        state0,
        closing_controls(scene, grasps),
        control_spec=_CLOSING_INPUT,
        persistent_pool=True,
    )
    closed = closing[:, -1]
    # The hold runs in segments; a grasp that already failed in some direction is dropped
    # (a failure is final: the object left the limits while it should have been held).
    state = np.repeat(closed, 6, axis=0)
    control = hold_controls(scene, grasps)
    trans, rot = np.zeros((n, 6)), np.zeros((n, 6))
    alive = np.arange(n)
    done = 0
    while done < c.hold_steps and len(alive):
        steps = min(_HOLD_SEGMENT, c.hold_steps - done)
        worlds = (alive[:, None] * 6 + np.arange(6)).reshape(-1)
        out, _ = rollout.rollout(
            m,
            datas,
            state[worlds],
            control[worlds],
            control_spec=_HOLD_INPUT,
            nstep=steps,
            persistent_pool=True,
        )
        state[worlds] = out[:, -1]
        t, r = object_motion(scene, _qpos(m, out[:, -1]))
        trans[alive], rot[alive] = t.reshape(-1, 6), r.reshape(-1, 6)
        moved, turned = crossed_limits(trans[alive], rot[alive], c)
        alive = alive[~(moved | turned)]
        done += steps
    return trans, rot, _qpos(m, closed)


def closed_contacts(
    scene: Scene, hand: HandModel, grasps: GraspPoses, closed_qpos: np.ndarray
) -> np.ndarray:
    """Which fingers are in contact with the object in the simulation once the hand has
    closed: the stored pose's rule (`GeometryChecks.in_contact`: the finger's contact link,
    `HandModel.contacts.body`, within `config.contact_distance` of the object) read in
    the closed state (`DisturbanceResult.closed_qpos`, the hand root at its squeeze
    pose, the object still welded), by MuJoCo's distance between the link's collision
    geoms and the object's convex pieces. Shape: closed_qpos (B, nq); returns
    (B, n_fingers) bool, fingers in `HandModel.contacts.finger` order."""
    m = scene.model
    closed_qpos = np.asarray(closed_qpos, dtype=np.float64)
    if closed_qpos.shape != (grasps.count, m.nq):
        raise ValueError(
            f"closed_qpos has shape {closed_qpos.shape}, expected ({grasps.count}, {m.nq})"
        )
    out = np.zeros((grasps.count, len(hand.contacts.body)), dtype=bool)
    if grasps.count == 0:
        return out
    reach = scene.config.contact_distance
    finger_geoms = [np.flatnonzero(scene.hand_geom_body == b).tolist() for b in hand.contacts.body]
    pieces = np.asarray(scene.object_geoms).tolist()
    mocap = _mocap_inputs(scene, grasps, grasps.squeeze_root_pos())
    n_pos = 3 * m.nmocap
    data = mujoco.MjData(m)
    for i in range(grasps.count):
        data.qpos[:] = closed_qpos[i]
        data.mocap_pos[:] = mocap[i, :n_pos].reshape(-1, 3)
        data.mocap_quat[:] = mocap[i, n_pos:].reshape(-1, 4)
        mujoco.mj_kinematics(m, data)
        for k, geoms in enumerate(finger_geoms):
            # distmax a millimetre past the reach: a pair farther than distmax reads
            # distmax, which must not count as within reach.
            out[i, k] = any(
                mujoco.mj_geomDistance(m, data, g, o, reach + 1e-3, None) <= reach
                for g in geoms
                for o in pieces
            )
    return out


def _qpos(m: mujoco.MjModel, states: np.ndarray) -> np.ndarray:
    # FULLPHYSICS layout: time, qpos, ...
    return states[:, 1 : 1 + m.nq]
