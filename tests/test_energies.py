"""Energies: LP-relaxed force closure against scipy, analytic DFC cases, Q1 against a
ConvexHull reference, finite values and gradients in degenerate configurations."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import float64_copy
from scipy.optimize import lsq_linear
from scipy.spatial import ConvexHull

from energies import (
    EnergyWeights,
    cone_wrenches,
    contact_wrenches,
    dfc_energy,
    hand_in_object_energy,
    ipc_barrier,
    length_scale,
    lp_contact_forces,
    lp_dfc_energy,
    object_in_hand_energy,
    object_samples,
    part_barrier_energy,
    q1_metric,
    self_penetration_energy,
    target_part_gap,
    total_energy,
)
from energies._penetration import box_penetration, capsule_penetration
from energies.terms import _primitive_frames
from energies.total import clearance_first_order, sdf_first_order
from jaxgrasp import objects
from kinematics import forward_kinematics, points_to_world
from kinematics.geometry import BOX, CAPSULE, primitive_sdf

ROOT = Path(__file__).resolve().parents[1]
N_LP_INSTANCES = 1000
Q1_ABS_TOL = 0.012


def _scipy_lp(w: np.ndarray) -> float:
    """P = min_j min_{0<=f<=1, f_j=1} |W f| with scipy's bounded least squares."""
    n = w.shape[1]
    best = np.inf
    for j in range(n):
        free = [i for i in range(n) if i != j]
        res = lsq_linear(w[:, free], -w[:, j], bounds=(0, 1), method="bvls", tol=1e-14)
        best = min(best, float(np.linalg.norm(w[:, free] @ res.x + w[:, j])))
    return best


def _random_contacts(rng, n):
    pts = rng.normal(size=(n, 3))
    nrm = rng.normal(size=(n, 3))
    return pts, nrm / np.linalg.norm(nrm, axis=1, keepdims=True)


def test_lp_inner_solve_matches_scipy_and_is_below_dfc():
    rng = np.random.default_rng(0)
    solve = jax.jit(lp_contact_forces)
    with jax.enable_x64(True):
        for _ in range(N_LP_INSTANCES):
            n = int(rng.integers(2, 7))
            pts, nrm = _random_contacts(rng, n)
            w = np.asarray(contact_wrenches(pts, nrm, np.zeros(3), 1.0))
            f, p = solve(jnp.asarray(w))
            ref = _scipy_lp(w)
            assert abs(float(p) - ref) <= 1e-4 * ref + 1e-9
            f = np.asarray(f)
            assert f.min() >= -1e-12 and abs(f.max() - 1.0) < 1e-12
            # LP-DFC <= DFC on every instance (f = 1 is feasible).
            assert float(p) <= float(dfc_energy(pts, nrm, np.zeros(3), 1.0)) + 1e-9


def test_dfc_analytic_cases():
    # Two opposed contacts through the centre of a sphere: forces and torques cancel.
    pts = np.array([[0.05, 0, 0], [-0.05, 0, 0]])
    inward = -pts / 0.05
    assert float(dfc_energy(pts, inward, np.zeros(3), 0.05)) < 1e-5
    # All normals parallel: the net force is n, large.
    same = np.tile([[0.0, 0.0, -1.0]], (4, 1))
    pts4 = np.array([[0.05, 0, 0], [-0.05, 0, 0], [0, 0.05, 0], [0, -0.05, 0]])
    assert float(dfc_energy(pts4, same, np.zeros(3), 0.05)) > 3.9
    # LP cannot fix parallel pushes either (all forces push the same way).
    e, info = lp_dfc_energy(pts4, same, np.zeros(3), 0.05, 0.2, 0.1)
    assert float(info["P"]) > 0.99 and not bool(info["use_lp"])
    # Unequal but balanceable: 3 contacts of which two share one side; LP balances them.
    pts3 = np.array([[0.05, 0.01, 0], [0.05, -0.01, 0], [-0.05, 0, 0]])
    inward3 = np.array([[-1.0, 0, 0], [-1.0, 0, 0], [1.0, 0, 0]])
    e, info = lp_dfc_energy(pts3, inward3, np.zeros(3), 0.05, 0.2, 0.1)
    assert float(info["P"]) < 1e-5 and bool(info["use_lp"])
    assert float(e) < float(dfc_energy(pts3, inward3, np.zeros(3), 0.05))


def _q1_convex_hull(w: np.ndarray) -> float:
    hull = ConvexHull(w)
    offsets = hull.equations[:, -1]  # a.x + b <= 0 inside, |a| = 1
    return float(max(0.0, np.min(-offsets)))


def test_q1_against_convex_hull():
    rng = np.random.default_rng(1)
    q1 = jax.jit(q1_metric, static_argnames=("length", "mu", "n_edges"))
    checked = 0
    for _ in range(40):
        n = int(rng.integers(3, 6))
        dirs = rng.normal(size=(n, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        pts = 0.05 * dirs
        inward = -dirs + 0.3 * rng.normal(size=(n, 3))
        inward /= np.linalg.norm(inward, axis=1, keepdims=True)
        w = np.asarray(cone_wrenches(pts, inward, np.zeros(3), 0.05, 0.6, 8)).reshape(-1, 6)
        ref = _q1_convex_hull(w)
        ours = float(q1(pts, inward, np.ones(n, bool), np.zeros(3), length=0.05, mu=0.6))
        assert ours >= ref - 1e-5  # every evaluated direction is an upper bound
        # Known limitation (issue 4 stays open): the sampled + refined search is within
        # ~0.01 of the exact value on this scale (typical Q1 0.02-0.25), not exact.
        assert ours <= ref + Q1_ABS_TOL
        checked += ref > 0
    assert checked >= 10  # enough force-closure instances were compared
    # No active contact: zero.
    none = q1(pts, inward, np.zeros(len(pts), bool), np.zeros(3), length=0.05, mu=0.6)
    assert float(none) == 0.0


def test_barrier_finite_and_huge_at_contact():
    d = jnp.array([0.0, 1e-9, 1e-4, 0.005, 0.01, 0.02])
    b = ipc_barrier(d, 0.01)
    g = jax.vmap(jax.grad(lambda x: ipc_barrier(x, 0.01)))(d)
    assert np.all(np.isfinite(np.asarray(b))) and np.all(np.isfinite(np.asarray(g)))
    assert float(b[0]) > 50 * float(b[3]) and float(b[4]) == 0.0 and float(b[5]) == 0.0


@pytest.fixture(scope="module")
def mug():
    return objects.make_object("mug", 0, n_points=512)


def _energy_fn(shadow, mug, fingers=None):
    w = EnergyWeights(table=1.0)
    length = length_scale(mug)

    def f(x):
        return total_energy(
            w,
            shadow,
            mug,
            x[:3],
            x[3:7],
            x[7:],
            fingers=fingers,
            target_part=mug.part_index("handle"),
            scale=length,
        )

    return f


def _pose(shadow, rng, offset):
    quat = rng.normal(size=4)
    lo, hi = np.asarray(shadow.q_range).T
    return np.concatenate([offset, quat / np.linalg.norm(quat), rng.uniform(lo, hi)])


def test_total_energy_finite_in_hard_configurations(shadow, mug):
    """Deep penetration, far outside the grid, coincident contacts, zero quaternion,
    joints beyond their limits: every term and every gradient stays finite."""
    f = _energy_fn(shadow, mug)
    grad = jax.jit(jax.grad(lambda x: f(x)[0]))
    rng = np.random.default_rng(3)
    centre = np.asarray(mug.com)
    cases = [
        _pose(shadow, rng, centre),  # palm in the middle of the mug: deep penetration
        _pose(shadow, rng, centre + np.array([5.0, -3.0, 2.0])),  # far outside the grid
        _pose(shadow, rng, np.asarray(mug.points)[0]),  # root on the surface
        np.concatenate([centre, np.zeros(4), np.zeros(shadow.n_q)]),  # zero quaternion
        np.concatenate([centre, [1, 0, 0, 0], np.full(shadow.n_q, 10.0)]),  # beyond limits
    ]
    for x in cases:
        total, terms = jax.jit(f)(jnp.asarray(x, jnp.float32))
        assert np.isfinite(float(total)), terms
        assert all(np.isfinite(float(v)) for v in terms.values())
        assert np.all(np.isfinite(np.asarray(grad(jnp.asarray(x, jnp.float32)))))
    # Deep penetration is penalised; far away it is not.
    _, deep = jax.jit(f)(jnp.asarray(cases[0], jnp.float32))
    _, far = jax.jit(f)(jnp.asarray(cases[1], jnp.float32))
    assert float(deep["pen"]) > 0.1 and float(far["pen"]) == 0.0


def test_total_energy_gradient_matches_finite_differences(shadow, mug):
    rng = np.random.default_rng(4)
    x0 = _pose(shadow, rng, np.asarray(mug.com) + np.array([0.0, -0.09, 0.0]))
    with jax.enable_x64(True):
        hand64, obj64 = float64_copy(shadow), float64_copy(mug)
        f64 = _energy_fn(hand64, obj64)

        def scalar(x):
            return f64(x)[0]

        x = jnp.asarray(x0, jnp.float64)
        g = np.asarray(jax.jit(jax.grad(scalar))(x))
        eps = 1e-6
        steps = eps * jnp.eye(len(x))
        fd = np.asarray(jax.jit(jax.vmap(scalar))(jnp.concatenate([x + steps, x - steps])))
        fd = (fd[: len(x)] - fd[len(x) :]) / (2 * eps)
        # Piecewise-smooth terms (trilinear SDF cells, hinge terms): compare where the
        # finite difference is smooth, with a tolerance relative to the gradient's size.
        scale = np.abs(g).max() + 1e-9
        assert np.median(np.abs(g - fd)) / scale < 1e-3
        assert np.mean(np.abs(g - fd) / scale < 1e-2) > 0.9


def test_target_part_gap_is_the_nearest_part_sample_and_finite(mug):
    handle = mug.part_index("handle")
    pts, part = np.asarray(mug.points), np.asarray(mug.point_part)
    x = np.random.default_rng(2).uniform(-0.2, 0.2, (16, 3))
    x[0] = pts[part == handle][0]  # on a handle sample: zero distance
    ref = np.linalg.norm(x[:, None] - pts[part == handle][None], axis=-1).min(axis=1)
    gap = np.asarray(target_part_gap(mug, handle, jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(gap, ref, atol=1e-5)
    for target in (handle, -1):  # whole object: 0, and no NaN anywhere
        g = jax.grad(lambda y, t=target: jnp.sum(target_part_gap(mug, t, y)))(jnp.asarray(x))
        assert np.all(np.isfinite(np.asarray(g)))
    # The gradient is autodiff's of the dense nearest-sample distance.
    on_part = jnp.asarray(pts[part == handle])

    def dense(y):
        d2 = jnp.min(jnp.sum((y[:, None] - on_part[None]) ** 2, axis=-1), axis=1)
        return jnp.sum(jnp.sqrt(d2 + 1e-12))

    y = jnp.asarray(x[1:], jnp.float32)
    np.testing.assert_allclose(
        np.asarray(jax.grad(lambda z: jnp.sum(target_part_gap(mug, handle, z)))(y)),
        np.asarray(jax.grad(dense)(y)),
        atol=1e-5,
    )
    assert np.all(np.asarray(target_part_gap(mug, -1, jnp.asarray(x))) == 0.0)
    # A part with no samples pulls nowhere (0, finite gradient), as the whole object.
    assert np.all(np.asarray(target_part_gap(mug, 99, jnp.asarray(x))) == 0.0)
    g = jax.grad(lambda y: jnp.sum(target_part_gap(mug, 99, y)))(jnp.asarray(x))
    assert np.all(np.asarray(g) == 0.0)


def test_pinch_uses_fewer_contacts(shadow, mug):
    x = jnp.asarray(_pose(shadow, np.random.default_rng(5), np.asarray(mug.com)), jnp.float32)
    _, wrap = jax.jit(_energy_fn(shadow, mug))(x)
    _, pinch = jax.jit(_energy_fn(shadow, mug, ("thumb", "index", "middle", "palm")))(x)
    assert set(wrap) == set(pinch)
    assert float(pinch["dir"]) <= 2 * 4 + 1e-6 and float(wrap["dir"]) <= 2 * 6 + 1e-6


def test_object_samples_cover_the_whole_object(mug):
    pts = np.asarray(mug.points)
    s = jax.jit(object_samples, static_argnums=1)(mug, 64)
    # The first (evenly spread, farthest-point ordered) samples of the whole object.
    np.testing.assert_allclose(np.asarray(s.pen_points), pts[:64], atol=1e-6)
    # More asked than there are: capped.
    assert object_samples(mug, 10**6).pen_points.shape == pts.shape


def test_part_barrier_pushes_hand_points_off_the_other_parts(mug):
    """E_bar is large next to the body when the handle is the target, zero for the
    whole object, finite (value and gradient) exactly on the body's surface, and its
    gradient moves the point away from the body."""
    handle = mug.part_index("handle")
    on_body = np.asarray(mug.points)[np.asarray(mug.point_part) != handle][:64]
    normals = np.asarray(mug.normals)[np.asarray(mug.point_part) != handle][:64]
    for offset in (0.0, 0.002, 0.006):
        x = jnp.asarray(on_body + offset * normals, jnp.float32)

        def bar(x, part):
            return part_barrier_energy(clearance_first_order(mug, part, x), 0.01)

        e, g = jax.value_and_grad(bar)(x, handle)
        assert np.isfinite(float(e)) and np.all(np.isfinite(np.asarray(g)))
        assert float(e) > 0.0
        if offset > 0.0:  # descending the barrier moves the points outwards, off the body
            assert np.mean(np.sum(-np.asarray(g) * normals, axis=1) > 0) > 0.9
        assert float(bar(x, -1)) == 0.0
        assert not np.any(np.asarray(jax.grad(bar)(x, -1)))


def test_object_in_hand_gradient_matches_plain_autodiff(shadow, mug):
    """The one-pass gradient (custom VJP; capsules and boxes each have their own) equals
    autodiff of the plain formula, for each primitive kind on its own."""

    def plain(poses, pts, hand, kind):
        kinds = np.asarray(hand.primitives.kind)
        axes, c, size = _primitive_frames(hand, poses, np.flatnonzero(kinds == kind))
        p = [pts[:, j][None, :] - c[:, j : j + 1] for j in range(3)]
        local = [sum(axes[:, j, i : i + 1] * p[j] for j in range(3)) for i in range(3)]
        return jnp.sum(jnp.maximum(-primitive_sdf(int(kind), size, *local), 0.0))

    def one_pass(x, o, kind):  # the custom-VJP pass of one primitive kind
        poses = forward_kinematics(hand64, x[:3], x[3:7], x[7:])
        sel = np.flatnonzero(np.asarray(hand64.primitives.kind) == kind)
        axes, c, size = _primitive_frames(hand64, poses, sel)
        if kind == CAPSULE:
            return capsule_penetration(c, axes[:, :, 2], size, o)
        return box_penetration(c, axes, size, o)

    rng = np.random.default_rng(7)
    lo, hi = np.asarray(shadow.q_range).T
    kinds = np.unique(np.asarray(shadow.primitives.kind))
    assert set(kinds) == {CAPSULE, BOX}  # both custom passes are exercised
    with jax.enable_x64(True):
        hand64 = float64_copy(shadow)
        pts = jnp.asarray(np.asarray(mug.points, np.float64))
        xs = []
        for _ in range(4):  # the hand's primitives centred on the mug, randomly turned
            quat, q = rng.normal(size=4), rng.uniform(lo, hi)
            poses = forward_kinematics(hand64, jnp.zeros(3), jnp.asarray(quat), jnp.asarray(q))
            _, centres, _ = _primitive_frames(hand64, poses, np.arange(shadow.primitives.count))
            root = np.asarray(mug.com) - np.asarray(centres).mean(0) + rng.normal(size=3) * 0.01
            xs.append(jnp.asarray(np.concatenate([root, quat, q])))
        total = jax.jit(
            lambda x, o: object_in_hand_energy(
                hand64, forward_kinematics(hand64, x[:3], x[3:7], x[7:]), o
            )
        )
        for kind in kinds:

            def reference(x, o, kind=kind):
                return plain(forward_kinematics(hand64, x[:3], x[3:7], x[7:]), o, hand64, kind)

            # d/dpose and d/dsamples of both formulas, each compiled once.
            fast = jax.jit(jax.value_and_grad(lambda x, o, k=kind: one_pass(x, o, k), (0, 1)))
            slow = jax.jit(jax.value_and_grad(reference, argnums=(0, 1)))
            hits = 0
            for x in xs:
                v, (g, gp) = fast(x, pts)
                v_ref, (g_ref, gp_ref) = slow(x, pts)
                hits += float(v_ref) > 0.0
                np.testing.assert_allclose(float(v), float(v_ref), rtol=1e-12, atol=1e-15)
                np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), atol=1e-9)
                # ... and with respect to the object's samples.
                np.testing.assert_allclose(np.asarray(gp), np.asarray(gp_ref), atol=1e-9)
            assert hits >= 3, f"primitive kind {kind}: too few penetrating cases"
        # The term is the sum of the kinds.
        for x in xs:
            parts = sum(float(one_pass(x, pts, k)) for k in kinds)
            np.testing.assert_allclose(float(total(x, pts)), parts, rtol=1e-12)


def test_penetration_margin_counts_the_missing_clearance(shadow):
    """With a margin m, hand samples with SDF d < m and object samples within m of a
    primitive count by the shortfall (m - d); without one, only what is inside counts."""
    surface_d = jnp.asarray([-0.002, 0.0, 0.0005, 0.003])
    np.testing.assert_allclose(float(hand_in_object_energy(surface_d)), 0.002, rtol=1e-6)
    np.testing.assert_allclose(
        float(hand_in_object_energy(surface_d, 0.001)), 0.003 + 0.001 + 0.0005, rtol=1e-6
    )

    # Object samples just beyond the end of the capsule farthest from the hand's centre,
    # 0.5 mm off its surface along its axis: nothing else is near them.
    poses = forward_kinematics(shadow, jnp.zeros(3), jnp.asarray([1.0, 0, 0, 0]), shadow.init_q())
    n = shadow.primitives.count
    axes, centres, sizes = (np.asarray(a) for a in _primitive_frames(shadow, poses, np.arange(n)))
    kinds = np.asarray(shadow.primitives.kind)
    capsules = np.flatnonzero(kinds == CAPSULE)
    far = capsules[np.argmax(np.linalg.norm(centres[capsules] - centres.mean(0), axis=1))]
    axis = axes[far][:, 2]
    axis = axis * np.sign(axis @ (centres[far] - centres.mean(0)))
    gap = 0.0005
    tip = centres[far] + axis * (sizes[far, 1] + sizes[far, 0] + gap)
    side = np.cross(axis, [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side)
    pts = jnp.asarray(np.stack([tip, tip + 1e-4 * side]))  # two samples, both ~0.5 mm off
    # Precondition: every other primitive is more than 2 mm from the samples.
    for i in range(n):
        local = (np.asarray(pts) - centres[i]) @ axes[i]
        d = np.asarray(
            primitive_sdf(int(kinds[i]), jnp.asarray(sizes[i : i + 1]), *local.T[:, None])
        )
        assert (d > 0.002).all() or i == far, i

    assert float(object_in_hand_energy(shadow, poses, pts)) == 0.0
    assert float(object_in_hand_energy(shadow, poses, pts, 0.0004)) == 0.0
    e = float(object_in_hand_energy(shadow, poses, pts, 0.001))
    # Each sample lies ~gap off the rounded end: shortfall ~(1 mm - gap) each.
    np.testing.assert_allclose(e, 2 * (0.001 - gap), atol=2e-5)
    grad = jax.grad(lambda p: object_in_hand_energy(shadow, poses, p, 0.001))(pts)
    assert np.all(np.isfinite(np.asarray(grad))) and float(jnp.abs(grad).sum()) > 0


def test_self_penetration_gradient_matches_plain_autodiff(shadow):
    """The one-pass sphere-overlap gradient equals autodiff of the plain pairwise sum."""
    s = shadow.spheres
    mask = np.zeros((len(s.body),) * 2, dtype=bool)
    mask[np.asarray(s.pair_i), np.asarray(s.pair_j)] = True

    def plain(hand, poses):
        c = points_to_world(poses, s.body, jnp.asarray(hand.spheres.centers))
        r = jnp.asarray(hand.spheres.radii)
        d = jnp.sqrt(jnp.sum((c[:, None] - c[None]) ** 2, -1) + 1e-12)
        return jnp.sum(jnp.where(mask, jnp.maximum(r[:, None] + r[None] - d, 0.0), 0.0))

    rng = np.random.default_rng(3)
    lo, hi = np.asarray(shadow.q_range).T
    with jax.enable_x64(True):
        hand64 = float64_copy(shadow)
        grads = {
            fn: jax.jit(
                jax.value_and_grad(
                    lambda x, fn=fn: fn(hand64, forward_kinematics(hand64, x[:3], x[3:7], x[7:]))
                )
            )
            for fn in (plain, self_penetration_energy)
        }
        hits = 0
        for _ in range(6):  # random joints: fingers often cross
            x = jnp.asarray(
                np.concatenate([rng.normal(size=3), rng.normal(size=4), rng.uniform(lo, hi)])
            )
            v, g = grads[self_penetration_energy](x)
            v_ref, g_ref = grads[plain](x)
            hits += float(v_ref) > 0.0
            np.testing.assert_allclose(float(v), float(v_ref), atol=1e-8)
            np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), atol=1e-7)
        assert hits >= 3  # the cases are not vacuous


def test_sdf_first_order_value_and_gradient(mug):
    pts = jnp.asarray(np.asarray(mug.points)[:32] + 0.004)
    d, g = mug.sdf(pts)
    d1 = sdf_first_order(mug, pts)
    g1 = jax.grad(lambda x: jnp.sum(sdf_first_order(mug, x)))(pts)
    np.testing.assert_allclose(np.asarray(d1), np.asarray(d), atol=1e-7)
    np.testing.assert_allclose(np.asarray(g1), np.asarray(g), atol=1e-6)


def test_batched_energy_solves_lp_first_and_matches_per_hand_energy(shadow, mug):
    """`batched_energy_and_grad` runs the LP-DFC inner solve for the whole batch before
    the chunked energy + gradient; the result equals each hand's own `total_energy`
    (which solves in place). Thresholds that always take the LP forces keep the check
    on the LP branch; Pinch checks the pre-pass uses the same contacts."""
    fingers = ("thumb", "index", "middle", "palm")
    from energies import EnergyParams, batched_energy_and_grad, target_samples

    params = EnergyParams(tau_fc=1e3, tau_f=0.0)
    w, part, length = EnergyWeights(), mug.part_index("handle"), length_scale(mug)
    samples = target_samples(mug, params)
    rng = np.random.default_rng(3)
    x = np.stack(
        [_pose(shadow, rng, np.asarray(mug.com) + rng.normal(size=3) * 0.03) for _ in range(10)]
    )
    p, r, q = (jnp.asarray(a, jnp.float32) for a in (x[:, :3], x[:, 3:7], x[:, 7:]))
    kw = dict(fingers=fingers, target_part=part, params=params, scale=length, samples=samples)

    (e, terms), grads = jax.jit(
        lambda p, r, q: batched_energy_and_grad(w, shadow, mug, p, r, q, chunk=4, **kw)
    )(p, r, q)

    def one(a, b, c):
        return total_energy(w, shadow, mug, a, b, c, **kw)

    (e_ref, terms_ref), grads_ref = jax.jit(
        jax.vmap(jax.value_and_grad(one, argnums=(0, 1, 2), has_aux=True))
    )(p, r, q)
    assert np.all(np.asarray(terms["fc"]) > 0)
    np.testing.assert_allclose(np.asarray(terms["fc"]), np.asarray(terms_ref["fc"]), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(e), np.asarray(e_ref), rtol=1e-5)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        scale = max(float(jnp.max(jnp.abs(g_ref))), 1.0)
        np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), atol=1e-5 * scale)
    # The LP branch differs from plain DFC (else the check above says nothing about f).
    plain = jax.jit(
        jax.vmap(
            lambda a, b, c: total_energy(
                w, shadow, mug, a, b, c, **{**kw, "params": EnergyParams(use_lp=False)}
            )[1]["fc"]
        )
    )(p, r, q)
    assert np.all(np.asarray(terms["fc"]) < np.asarray(plain) - 1e-4)


def test_energy_gradient_under_shard_map_matches_one_device():
    """Under `shard_map` with its default varying-axes check (4 host devices), the batched
    energy + gradient and the gradient w.r.t. the replicated object samples (summed over
    devices by the custom VJPs) equal the unsharded ones. The custom VJPs' backward
    passes once returned device-varying cotangents for replicated inputs, which
    `shard_map(check_vma=True)` rejects."""
    script = textwrap.dedent(
        """
        import jax, jax.numpy as jnp, numpy as np
        from jax.sharding import Mesh, PartitionSpec as P
        assert len(jax.devices()) == 4, jax.devices()
        from energies import EnergyWeights, ObjectSamples, batched_energy_and_grad
        from energies import length_scale, target_samples, total_energy, EnergyParams
        from jaxgrasp import objects
        from kinematics import load_hand

        hand, mug = load_hand("shadow"), objects.make_object("mug", 0, n_points=512)
        part, length, w = mug.part_index("handle"), length_scale(mug), EnergyWeights()
        rng = np.random.default_rng(0)
        lo, hi = np.asarray(hand.q_range).T
        quat = rng.normal(size=(8, 4))
        p = jnp.asarray(np.asarray(mug.com) + rng.normal(size=(8, 3)) * 0.03, jnp.float32)
        r = jnp.asarray(quat / np.linalg.norm(quat, axis=1, keepdims=True), jnp.float32)
        q = jnp.asarray(rng.uniform(lo, hi, (8, hand.n_q)), jnp.float32)
        pts = target_samples(mug, EnergyParams()).pen_points
        mesh = Mesh(np.array(jax.devices()), ("h",))

        def batched(p, r, q):
            return batched_energy_and_grad(
                w, hand, mug, p, r, q, chunk=2, target_part=part, scale=length
            )

        def loss(o, p, r, q):
            one = lambda a, b, c: total_energy(
                w, hand, mug, a, b, c, target_part=part, scale=length,
                samples=ObjectSamples(o),
            )[0]
            return jnp.sum(jax.vmap(one)(p, r, q))

        grad = jax.grad(loss, argnums=(0, 1, 2, 3))

        def both(o, p, r, q):  # one program each way: half the compilations
            return batched(p, r, q), grad(o, p, r, q)

        sharded = jax.jit(jax.shard_map(
            both, mesh=mesh, in_specs=(P(), P("h"), P("h"), P("h")),
            out_specs=(P("h"), (P(), P("h"), P("h"), P("h")))))
        got, want = sharded(pts, p, r, q), jax.jit(both)(pts, p, r, q)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            scale = max(float(jnp.max(jnp.abs(b))), 1.0)
            np.testing.assert_allclose(np.asarray(a), np.asarray(b),
                                       rtol=1e-3, atol=1e-4 * scale)
        g_samples = np.asarray(got[1][0])
        assert np.abs(g_samples).max() > 0  # the hands press into the mug: not vacuous
        """
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, env=env)
