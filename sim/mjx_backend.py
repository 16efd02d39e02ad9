"""The disturbance test on MJX: the same scene, protocol and criteria as the MuJoCo C
backend (`sim.disturbance`), stepped as vmapped worlds under `jax.lax.scan` - the
accelerator path (on CPU it is several times slower than MuJoCo C).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from kinematics import HandModel
from sim.disturbance import (
    DIRECTIONS,
    DisturbanceResult,
    _eq_active,
    closing_controls,
    initial_qpos,
    object_motion,
)
from sim.grasps import GraspPoses
from sim.scene import Scene


def mjx_model(scene: Scene):
    """`mjx.put_model` of the scene (cached on the scene object)."""
    cached = getattr(scene, "_mjx_model", None)
    if cached is None:
        from mujoco import mjx

        cached = mjx.put_model(scene.model)
        object.__setattr__(scene, "_mjx_model", cached)
    return cached


def disturbance_test_mjx(
    scene: Scene,
    hand: HandModel,
    grasps: GraspPoses,
    *,
    chunk: int = 256,
    vectorize: bool | None = None,
) -> DisturbanceResult:
    """Six-direction disturbance test with MJX, `chunk` grasps (6 x chunk worlds) per
    compiled call. Returns the same `DisturbanceResult` as the MuJoCo C backend.

    `vectorize`: vmap the worlds (default on accelerators) or step them one after the
    other with `lax.map` (default on CPU, where XLA takes many minutes to compile the
    vmapped contact pipeline of this scene and gains nothing from it)."""
    if vectorize is None:
        vectorize = jax.default_backend() != "cpu"
    run = _compiled_runner(scene, vectorize)
    trans, rot, settle = [], [], []
    for start in range(0, grasps.count, chunk):
        part = grasps.take(slice(start, start + chunk))
        qpos0, ctrl, mpos, mquat, force, squeeze = _inputs(scene, hand, part)
        closed_qpos, final_qpos = jax.device_get(run(qpos0, ctrl, mpos, mquat, force, squeeze))
        s, _ = object_motion(scene, np.asarray(closed_qpos, dtype=np.float64))
        t, r = object_motion(scene, np.asarray(final_qpos, dtype=np.float64))
        trans.append(t.reshape(-1, 6))
        rot.append(r.reshape(-1, 6))
        settle.append(s)
    translation = np.concatenate(trans)
    rotation = np.concatenate(rot)
    c = scene.config
    ok = (translation < c.max_translation) & (rotation < c.max_rotation_deg)
    return DisturbanceResult(ok.all(axis=1), translation, rotation, np.concatenate(settle))


def _inputs(scene: Scene, hand: HandModel, grasps: GraspPoses):
    m = scene.model
    nu = m.nu
    closing = closing_controls(scene, grasps)  # (B, T, nu + neq + 7 nmocap)
    ctrl = closing[:, :, :nu]
    mpos, mquat = scene.mocap_pose(grasps.root_pos, grasps.root_quat)
    force = np.zeros((grasps.count, 6, m.nbody, 6))
    force[:, :, scene.object_body, :3] = (
        scene.config.force_scale * scene.config.object_mass * DIRECTIONS
    )
    f32 = jnp.zeros(0).dtype  # float32, or float64 under jax_enable_x64
    return (
        initial_qpos(scene, hand, grasps.q_pregrasp).astype(f32),
        ctrl.astype(f32),
        mpos.astype(f32),
        mquat.astype(f32),
        force.astype(f32),
        np.asarray(grasps.q_squeeze, dtype=f32),
    )


def _compiled_runner(scene: Scene, vectorize: bool = True):
    attr = "_mjx_runner" if vectorize else "_mjx_runner_seq"
    cached = getattr(scene, attr, None)
    if cached is not None:
        return cached
    from mujoco import mjx

    mx = mjx_model(scene)
    weld_on = jnp.asarray(_eq_active(scene, weld=True))
    weld_off = jnp.asarray(_eq_active(scene, weld=False))
    closing_steps = scene.config.close_steps + scene.config.squeeze_steps
    mocap = scene.mocap
    mocap_body = int(np.flatnonzero(scene.model.body_mocapid == mocap)[0])

    def one_world(qpos, ctrl_seq, mpos, mquat, force, squeeze):
        # One scan over closing + hold (a single mjx.step in the program: MJX compile
        # time dominates on CPU). Closing: ramped targets, weld on, no force; hold:
        # squeeze targets, weld off, the push.
        # MJX places a mocap body after the kinematic tree pass, so its children would
        # not follow it: the hand's pose goes into this world's copy of the model instead
        # (body_pos / body_quat of the mocap body; models vmap like data).
        mx_world = mx.replace(
            body_pos=mx.body_pos.at[mocap_body].set(mpos),
            body_quat=mx.body_quat.at[mocap_body].set(mquat),
        )
        d = mjx.make_data(mx)
        d = d.replace(
            qpos=qpos,
            mocap_pos=d.mocap_pos.at[mocap].set(mpos),
            mocap_quat=d.mocap_quat.at[mocap].set(mquat),
        )
        zero = jnp.zeros_like(force)

        def step(carry, t):
            d, closed_qpos = carry
            closing = t < closing_steps
            ctrl = jnp.where(closing, ctrl_seq[jnp.minimum(t, closing_steps - 1)], squeeze)
            d = d.replace(
                ctrl=ctrl,
                xfrc_applied=jnp.where(closing, zero, force),
                eq_active=jnp.where(closing, weld_on, weld_off).astype(d.eq_active.dtype),
            )
            d = mjx.step(mx_world, d)
            closed_qpos = jnp.where(t == closing_steps - 1, d.qpos, closed_qpos)
            return (d, closed_qpos), None

        steps = jnp.arange(closing_steps + scene.config.hold_steps)
        (d, closed_qpos), _ = jax.lax.scan(step, (d, qpos), steps)
        return closed_qpos, d.qpos

    @jax.jit
    def run(qpos0, ctrl, mpos, mquat, force, squeeze):
        n = qpos0.shape[0]

        def six(x):  # grasp-major, direction-minor worlds
            return jnp.repeat(x, 6, axis=0)

        worlds = (
            six(qpos0),
            six(ctrl),
            six(mpos),
            six(mquat),
            force.reshape(n * 6, *force.shape[2:]),
            six(squeeze),
        )
        if vectorize:
            closed, final = jax.vmap(one_world)(*worlds)
        else:
            closed, final = jax.lax.map(lambda w: one_world(*w), worlds)
        return closed[::6], final

    object.__setattr__(scene, attr, run)
    return run
