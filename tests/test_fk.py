"""Forward kinematics against MuJoCo's own `mj_kinematics`, gradients, batching."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from conftest import float64_copy, mujoco_model_of, random_q, random_quat

from kinematics import forward_kinematics, full_joint_angles

# Named tolerances (metres for positions, unitless for rotation-matrix entries).
TOL_X64 = 1e-6
TOL_F32 = 5e-5
N_CONFIGS = 120


def _mujoco_reference(hand, q_batch, rng):
    """Run mj_kinematics on random mount poses; return root poses and body poses."""
    m = mujoco_model_of(hand)
    d = mujoco.MjData(m)
    root = m.body(hand.root_body).id
    top = root
    while m.body_parentid[top] != 0:
        top = m.body_parentid[top]
    bodies = [m.body(n).id for n in hand.body_names]
    jadr = [m.joint(n).qposadr[0] for n in hand.joint_names]
    out = {k: [] for k in ("root_pos", "root_quat", "xpos", "xmat")}
    for q in q_batch:
        m.body_pos[top] = rng.uniform(-1.0, 1.0, 3)
        m.body_quat[top] = random_quat(rng)
        # Joints above the root (e.g. the wrist) move too: the root pose absorbs them.
        d.qpos[:] = m.qpos0 + rng.uniform(-0.3, 0.3, m.nq)
        d.qpos[jadr] = np.asarray(full_joint_angles(hand, q))
        mujoco.mj_kinematics(m, d)
        out["root_pos"].append(d.xpos[root].copy())
        out["root_quat"].append(d.xquat[root].copy())
        out["xpos"].append(d.xpos[bodies].copy())
        out["xmat"].append(d.xmat[bodies].reshape(-1, 3, 3).copy())
    return {k: np.stack(v) for k, v in out.items()}


@pytest.mark.parametrize("hand_name", ["shadow", "adroit"])
@pytest.mark.parametrize("x64", [True, False])
def test_fk_matches_mujoco(hand_name, x64, request):
    hand = request.getfixturevalue(hand_name)
    rng = np.random.default_rng(0)
    qs = random_q(hand, rng, N_CONFIGS)
    with jax.enable_x64(x64):
        hand = float64_copy(hand) if x64 else hand
        ref = _mujoco_reference(hand, np.asarray(qs), rng)
        fk = jax.jit(jax.vmap(lambda p, r, q: forward_kinematics(hand, p, r, q)))
        poses = fk(ref["root_pos"], ref["root_quat"], qs)
        tol = TOL_X64 if x64 else TOL_F32
        assert poses.pos.dtype == (jnp.float64 if x64 else jnp.float32)
        np.testing.assert_allclose(np.asarray(poses.pos), ref["xpos"], atol=tol, rtol=0)
        np.testing.assert_allclose(np.asarray(poses.rot), ref["xmat"], atol=tol * 10, rtol=0)


def test_all_bodies_and_order(shadow):
    m = mujoco_model_of(shadow)
    root = m.body(shadow.root_body).id
    ids = [m.body(n).id for n in shadow.body_names]
    assert ids == sorted(ids) and ids[0] == root
    assert len(ids) == shadow.n_bodies == 23


def test_shadow_joint_counts(shadow):
    # 22 finger joints, of which 4 distal joints are tendon-coupled -> 18 independent.
    assert shadow.n_joints == 22
    assert shadow.n_q == 18
    assert set(shadow.coupled_joints) == {f"robot0:{f}J0" for f in ("FF", "MF", "RF", "LF")}
    assert not any("WRJ" in n for n in shadow.joint_names)


def test_coupled_joints_satisfy_mujoco_constraints(shadow):
    """Derived distal angles keep MuJoCo's coupling tendons inside their range after
    mj_forward, so no tendon-limit constraint becomes active."""
    m = mujoco_model_of(shadow)
    d = mujoco.MjData(m)
    rng = np.random.default_rng(1)
    jadr = [m.joint(n).qposadr[0] for n in shadow.joint_names]
    couplers = [m.tendon(f"robot0:T_{f}J1c").id for f in ("FF", "MF", "RF", "LF")]
    for q in random_q(shadow, rng, 50):
        d.qpos[:] = 0
        d.qpos[jadr] = np.asarray(full_joint_angles(shadow, q))
        mujoco.mj_forward(m, d)
        for t in couplers:
            lo, hi = m.tendon_range[t]
            assert lo - 1e-12 <= d.ten_length[t] <= hi + 1e-12
            assert abs(d.ten_length[t] - 0.5 * (lo + hi)) < 1e-9
        limit_rows = d.efc_type == mujoco.mjtConstraint.mjCNSTR_LIMIT_TENDON
        assert not np.isin(d.efc_id[limit_rows], couplers).any()
        # Every joint, coupled ones included, stays inside its MuJoCo limits.
        for name, value in zip(shadow.joint_names, d.qpos[jadr], strict=True):
            lo, hi = m.joint(name).range
            assert lo - 1e-9 <= value <= hi + 1e-9


def test_fk_gradients_fwd_rev_fd():
    from kinematics import load_hand

    with jax.enable_x64(True):
        hand = load_hand("shadow", n_surface_points=64)
        rng = np.random.default_rng(2)
        weights = rng.normal(size=(hand.n_bodies, 3))
        wrot = rng.normal(size=(hand.n_bodies, 3, 3))

        def scalar(x):
            pos, quat, q = x[:3], x[3:7], x[7:]
            p = forward_kinematics(hand, pos, quat, q)
            return jnp.sum(jnp.sin(3 * p.pos) * weights) + jnp.sum(p.rot * wrot)

        x = np.concatenate([rng.normal(size=3) * 0.1, random_quat(rng), random_q(hand, rng)])
        g_rev = jax.jit(jax.grad(scalar))(x)
        g_fwd = jax.jit(jax.jacfwd(scalar))(x)
        eps = 1e-6
        steps = eps * np.eye(len(x))
        values = jax.jit(jax.vmap(scalar))(np.concatenate([x + steps, x - steps]))
        g_fd = (values[: len(x)] - values[len(x) :]) / (2 * eps)
        np.testing.assert_allclose(g_rev, g_fwd, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(g_rev, g_fd, rtol=1e-6, atol=1e-7)
        assert np.all(np.isfinite(g_rev))


@pytest.mark.parametrize("batch", [(), (1,), (7,), (3, 5)])
def test_batch_shapes(shadow, batch):
    rng = np.random.default_rng(3)
    n = int(np.prod(batch)) if batch else 1
    pos = rng.normal(size=(n, 3)).reshape(*batch, 3)
    quat = random_quat(rng, n).reshape(*batch, 4)
    q = random_q(shadow, rng, n).reshape(*batch, shadow.n_q)
    fk = lambda p, r, qq: forward_kinematics(shadow, p, r, qq)  # noqa: E731
    for _ in batch:
        fk = jax.vmap(fk)
    out = jax.jit(fk)(pos, quat, q)
    assert out.pos.shape == (*batch, shadow.n_bodies, 3)
    assert out.rot.shape == (*batch, shadow.n_bodies, 3, 3)
    # Every batch element equals the unbatched call.
    flat = out.pos.reshape(n, shadow.n_bodies, 3)
    for i, (p, r, qq) in enumerate(
        zip(pos.reshape(n, 3), quat.reshape(n, 4), q.reshape(n, -1), strict=True)
    ):
        np.testing.assert_allclose(flat[i], forward_kinematics(shadow, p, r, qq).pos, atol=1e-6)


def test_zero_and_unnormalised_quaternion_are_finite(shadow):
    q = np.zeros(shadow.n_q)

    def f(quat):
        return jnp.sum(forward_kinematics(shadow, jnp.zeros(3), quat, q).pos)

    for quat in (jnp.zeros(4), jnp.array([2.0, 0.0, 0.0, 0.0])):
        assert np.isfinite(f(quat))
        assert np.all(np.isfinite(jax.grad(f)(quat)))
    ident = forward_kinematics(shadow, jnp.zeros(3), jnp.array([1.0, 0, 0, 0]), q)
    scaled = forward_kinematics(shadow, jnp.zeros(3), jnp.array([3.0, 0, 0, 0]), q)
    np.testing.assert_allclose(ident.pos, scaled.pos, atol=1e-7)


def test_wrong_shapes_raise(shadow):
    with pytest.raises(ValueError, match="q must have shape"):
        forward_kinematics(shadow, jnp.zeros(3), jnp.array([1.0, 0, 0, 0]), jnp.zeros(5))
    with pytest.raises(ValueError, match="batch with jax.vmap"):
        forward_kinematics(shadow, jnp.zeros((2, 3)), jnp.zeros(4), jnp.zeros(shadow.n_q))
