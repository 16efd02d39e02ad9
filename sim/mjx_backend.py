"""The disturbance test on MJX: the same scene, protocol and criteria as the MuJoCo C
backend (`sim.disturbance`), one `jax.lax.scan` per world, the worlds vmapped on an
accelerator (on CPU they are stepped one after another). Every world runs every step
(MuJoCo C drops failed grasps early), so MuJoCo C on a host's cores is usually the
faster choice: on an H100, 6144 float32 worlds ran 8.9 grasps/s against 79-136 for
MuJoCo C on the 16 host cores (README, "On a GPU machine"). MJX serves hosts with few
cores and programs that want the test inside JAX.

MJX's Newton solver runs with its elliptic-cone Hessian assembled per contact
(`sim._mjx_newton`): ~19x faster per step on this CPU than MJX's dense assembly (6 vs
118 ms for the Shadow scene), same numbers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from energies import balanced_pieces
from kinematics import HandModel
from sim._mjx_newton import elliptic_newton
from sim.disturbance import (
    DIRECTIONS,
    DisturbanceResult,
    _eq_active,
    closing_controls,
    crossed_limits,
    initial_qpos,
    object_motion,
)
from sim.grasps import GraspPoses
from sim.scene import Scene


def mjx_model(scene: Scene):
    """`mjx.put_model` of the scene in `scene.config.mjx_dtype` (cached on the scene)."""
    attr = f"_mjx_model_{scene.config.mjx_dtype}"
    cached = getattr(scene, attr, None)
    if cached is None:
        from mujoco import mjx

        with _precision(scene):
            cached = mjx.put_model(scene.model)
        object.__setattr__(scene, attr, cached)
    return cached


def _precision(scene: Scene):
    """JAX's float width for the MJX program (`SimConfig.mjx_dtype`)."""
    return jax.enable_x64(scene.config.mjx_dtype == "float64")


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
    other with `lax.map` (default on CPU, where the vmapped program is ~4x slower per
    world and slower to compile)."""
    if vectorize is None:
        vectorize = jax.default_backend() != "cpu"
    run = _compiled_runner(scene, vectorize)
    # Balanced chunks, the last padded with copies of the final grasp: one compiled
    # shape per call (a shorter last chunk would compile the program again).
    closed, final = [], []
    for start, stop, size in balanced_pieces(grasps.count, chunk):
        n = stop - start  # real grasps in this chunk
        part = grasps.take(np.minimum(np.arange(start, start + size), grasps.count - 1))
        inputs = _inputs(scene, hand, part)  # numpy, built outside the x64 context
        with _precision(scene):
            c, f = jax.device_get(run(*inputs))
        closed.append(np.asarray(c)[:n])
        final.append(np.asarray(f)[: 6 * n])
    # An empty batch runs no chunk and gives empty results, as the MuJoCo C backend.
    empty = np.zeros((0, scene.model.nq))
    return disturbance_result(
        scene, np.concatenate([empty, *closed]), np.concatenate([empty, *final])
    )


def disturbance_result(
    scene: Scene, closed_qpos: np.ndarray, final_qpos: np.ndarray
) -> DisturbanceResult:
    """The verdict from the compiled program's outputs: qpos after closing, per grasp
    (B, nq), and after each hold, grasp-major (6 B, nq)."""
    closed_qpos = np.asarray(closed_qpos, dtype=np.float64)
    settle, _ = object_motion(scene, closed_qpos)
    t, r = object_motion(scene, np.asarray(final_qpos, dtype=np.float64))
    translation, rotation = t.reshape(-1, 6), r.reshape(-1, 6)
    moved, turned = crossed_limits(translation, rotation, scene.config)
    return DisturbanceResult(~(moved | turned), translation, rotation, settle, closed_qpos)


def _inputs(scene: Scene, hand: HandModel, grasps: GraspPoses):
    """The compiled program's arguments for a chunk: initial qpos (B, nq), closing servo
    targets (B, T, nu), mocap positions while closing (B, T, 3) and holding (B, 3),
    mocap quaternion (B, 4), pushes (B, 6, nbody, 6), squeeze targets (B, nu)."""
    m = scene.model
    nu = m.nu
    # The MuJoCo C inputs, one source for both backends: (B, T, nu + neq + 7 nmocap),
    # the mocap block being all positions, then all quaternions.
    closing = closing_controls(scene, grasps)
    ctrl = closing[:, :, :nu]
    pos = nu + m.neq + 3 * scene.mocap
    quat = nu + m.neq + 3 * m.nmocap + 4 * scene.mocap
    mpos_closing = closing[:, :, pos : pos + 3]
    mpos_hold = mpos_closing[:, -1]  # the ramp ends at the squeeze root, held from then on
    mquat = closing[:, 0, quat : quat + 4]
    force = np.zeros((grasps.count, 6, m.nbody, 6))
    force[:, :, scene.object_body, :3] = (
        scene.config.force_scale * scene.config.object_mass * DIRECTIONS
    )
    dtype = np.dtype(scene.config.mjx_dtype)
    return (
        initial_qpos(scene, hand, grasps.q_pregrasp).astype(dtype),
        ctrl.astype(dtype),
        mpos_closing.astype(dtype),
        mpos_hold.astype(dtype),
        mquat.astype(dtype),
        force.astype(dtype),
        np.asarray(grasps.q_squeeze, dtype=dtype),
    )


def _compiled_runner(scene: Scene, vectorize: bool = True):
    """The jitted rollout of a chunk of grasps; call it inside `_precision(scene)`."""
    attr = f"_mjx_runner_{'vmap' if vectorize else 'seq'}_{scene.config.mjx_dtype}"
    cached = getattr(scene, attr, None)
    if cached is not None:
        return cached
    from mujoco import mjx

    mx = mjx_model(scene)
    weld_on = np.asarray(_eq_active(scene, weld=True))
    weld_off = np.asarray(_eq_active(scene, weld=False))
    closing_steps = scene.config.close_steps + scene.config.squeeze_steps
    mocap = scene.mocap
    mocap_body = int(np.flatnonzero(scene.model.body_mocapid == mocap)[0])

    def one_world(qpos, ctrl_seq, mpos_seq, mpos_hold, mquat, force, squeeze):
        # One scan over closing + hold (a single mjx.step in the program: MJX compile
        # time dominates on CPU). Closing: ramped targets and root, weld on, no force;
        # hold: squeeze targets and root, weld off, the push.
        # MJX places a mocap body after the kinematic tree pass, so its children would
        # not follow it: the hand's pose goes into this world's copy of the model instead
        # (body_pos / body_quat of the mocap body, set every step; models vmap like data).
        mx_world = mx.replace(body_quat=mx.body_quat.at[mocap_body].set(mquat))
        d = mjx.make_data(mx)
        d = d.replace(
            qpos=qpos,
            mocap_pos=d.mocap_pos.at[mocap].set(mpos_seq[0]),
            mocap_quat=d.mocap_quat.at[mocap].set(mquat),
        )
        zero = jnp.zeros_like(force)

        def step(carry, t):
            d, closed_qpos = carry
            closing = t < closing_steps
            k = jnp.minimum(t, closing_steps - 1)
            ctrl = jnp.where(closing, ctrl_seq[k], squeeze)
            mpos = jnp.where(closing, mpos_seq[k], mpos_hold)
            d = d.replace(
                ctrl=ctrl,
                xfrc_applied=jnp.where(closing, zero, force),
                eq_active=jnp.where(closing, weld_on, weld_off).astype(d.eq_active.dtype),
                mocap_pos=d.mocap_pos.at[mocap].set(mpos),
            )
            model = mx_world.replace(body_pos=mx_world.body_pos.at[mocap_body].set(mpos))
            stepped = mjx.step(model, d)
            # Under jax_enable_x64 MJX returns some int32 index fields of make_data as
            # int64; the scan carry must keep its types.
            d = jax.tree_util.tree_map(lambda new, old: new.astype(old.dtype), stepped, d)
            closed_qpos = jnp.where(t == closing_steps - 1, d.qpos, closed_qpos)
            return (d, closed_qpos), None

        steps = jnp.arange(closing_steps + scene.config.hold_steps)
        (d, closed_qpos), _ = jax.lax.scan(step, (d, qpos), steps)
        return closed_qpos, d.qpos

    @jax.jit
    def run(qpos0, ctrl, mpos_seq, mpos_hold, mquat, force, squeeze):
        with elliptic_newton():  # traced once: the compiled program keeps it
            return _run(qpos0, ctrl, mpos_seq, mpos_hold, mquat, force, squeeze)

    def _run(qpos0, ctrl, mpos_seq, mpos_hold, mquat, force, squeeze):
        n = qpos0.shape[0]

        def six(x):  # grasp-major, direction-minor worlds
            return jnp.repeat(x, 6, axis=0)

        worlds = (
            six(qpos0),
            six(ctrl),
            six(mpos_seq),
            six(mpos_hold),
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
