"""How deep a generated hand reaches into an object (`jaxgrasp._hand_depth`): the
generator's physics-aware training term (`TrainConfig.penetration_weight`, on SDF grids)
and its guided sampling (`generate(..., guidance=)`, on the given cloud)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from conftest import random_q, random_quat

from jaxgrasp._hand_depth import cloud_distance, grasp_points, grid_depth, rotation_from_6d
from jaxgrasp.grasp_vector import Normalizer, palm_points, to_vector
from jaxgrasp.initialization import initial_poses
from jaxgrasp.objects import make_object
from jaxgrasp.sdf import stack_grids, stacked_sdf
from jaxgrasp.training import PenetrationTerm, penetration_mm
from kinematics import forward_kinematics, points_to_world
from kinematics._rotations import quat_to_mat

RADIUS = 0.05


def sphere_cloud(n: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """A Fibonacci sphere of radius RADIUS with outward normals. Shape: (n, 3) twice."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = np.pi * (1.0 + 5**0.5) * i
    r = np.sqrt(1.0 - z**2)
    normals = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1).astype(np.float32)
    return RADIUS * normals, normals


def test_distance_to_a_sphere_cloud_matches_the_distance_to_its_surface():
    cloud, normals = sphere_cloud()
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(200, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    radii = rng.uniform(0.01, 0.09, size=200)
    points = (dirs * radii[:, None]).astype(np.float32)
    signed = np.asarray(cloud_distance(jnp.asarray(points), cloud, normals))
    # Tangent planes of points ~4 mm apart: within a millimetre of the true distance
    # near the surface (and never beyond it further out).
    near = np.abs(radii - RADIUS) < 0.02
    np.testing.assert_allclose(signed[near], radii[near] - RADIUS, atol=1e-3)
    assert np.all(np.sign(signed) == np.sign(radii - RADIUS))


def test_distance_gradient_is_finite_and_points_out():
    cloud, normals = sphere_cloud()
    # On a cloud point exactly, at the centre (every point equally near), inside, outside.
    points = np.array([cloud[7], [0.0, 0.0, 0.0], [0.01, 0.0, 0.0], [0.2, 0.0, 0.0]], np.float32)
    grad = np.asarray(jax.grad(lambda p: jnp.sum(cloud_distance(p, cloud, normals)))(points))
    assert np.all(np.isfinite(grad))
    # The gradient is the nearest point's outward normal: unit length, outwards.
    np.testing.assert_allclose(np.linalg.norm(grad, axis=1), 1.0, atol=1e-5)
    assert grad[2, 0] > 0.9 and grad[3, 0] > 0.9


def test_rotation_from_6d_is_a_rotation_for_any_input():
    rng = np.random.default_rng(1)
    quat = random_quat(rng, 20)
    six = to_vector(np.zeros((20, 3)), quat, np.zeros((20, 0)))[:, 3:9]
    np.testing.assert_allclose(
        jax.vmap(rotation_from_6d)(jnp.asarray(six)),
        quat_to_mat(jnp.asarray(quat, jnp.float32)),
        atol=1e-5,
    )
    # Zero and parallel columns: finite values and gradients.
    for bad in (jnp.zeros(6), jnp.array([1.0, 0, 0, 2.0, 0, 0])):
        assert np.all(np.isfinite(rotation_from_6d(bad)))
        grad = jax.grad(lambda s: jnp.sum(rotation_from_6d(s) ** 2))(bad)
        assert np.all(np.isfinite(grad))


def test_grasp_points_match_forward_kinematics_at_the_root_pose(shadow):
    rng = np.random.default_rng(2)
    quat = random_quat(rng, 3)
    pos = rng.normal(scale=0.1, size=(3, 3))
    q = random_q(shadow, rng, 3)
    vectors = to_vector(pos, quat, q)
    norm = Normalizer.fit(vectors)
    origin = rng.normal(scale=0.1, size=(3, 3)).astype(np.float32)
    vectors[:, :3] -= origin  # translations relative to an anchor
    z = jnp.asarray(norm.normalize(vectors), jnp.float32)
    stats = jnp.asarray(norm.mean), jnp.asarray(norm.std)
    thumb = shadow.contacts.select(["thumb"])
    for i in range(3):
        got = grasp_points(shadow, *stats, z[i], jnp.asarray(origin[i]), thumb)
        poses = forward_kinematics(shadow, pos[i], quat[i], q[i])
        want = points_to_world(poses, shadow.surface.body, shadow.surface.points)
        np.testing.assert_allclose(got.surface, want, atol=1e-5)
        want = points_to_world(poses, thumb.body, thumb.points)
        np.testing.assert_allclose(got.contacts, want, atol=1e-5)


def test_stacked_grids_read_each_objects_own_field():
    objs = [make_object("mug", 0), make_object("bottle", 1)]
    coarse = [o.grid.coarsened(2) for o in objs]
    stack = stack_grids(coarse)
    rng = np.random.default_rng(3)
    for index, obj in enumerate(objs):
        # Near the surface, inside and out, and beyond the grid.
        pts = np.asarray(obj.points)[:300] + rng.normal(scale=0.01, size=(300, 3))
        pts[:10] *= 3.0
        pts = jnp.asarray(pts, jnp.float32)
        # As the training term reads it: vmapped over objects, the stack unbatched.
        got, got_grad = jax.vmap(lambda i, p: stacked_sdf(stack, i, p))(
            jnp.array([index]), pts[None]
        )
        own, own_grad = coarse[index].query(pts)
        np.testing.assert_allclose(got[0], own, atol=1e-7)
        np.testing.assert_allclose(got_grad[0], own_grad, atol=1e-6)
        np.testing.assert_array_equal(grid_depth(stack, index, pts), np.maximum(-own, 0.0))
        # Trilinear at twice the spacing (3 mm) against the fine grid: close to the mm.
        fine = np.asarray(obj.grid.query(pts)[0])
        err = np.abs(np.asarray(got[0]) - fine)
        assert np.median(err) < 2e-4 and err.max() < 2e-3, (np.median(err), err.max())


def test_training_term_reads_the_grasp_where_its_anchor_puts_it(shadow):
    obj = make_object("bottle", 0)
    cloud = np.asarray(obj.points, np.float32)
    pos, quat, q = initial_poses(shadow, obj, obj.part_index("body"), "wrap", 4, seed=0)
    vectors = to_vector(pos, quat, q)
    # The same hands with their palms pushed through the bottle's axis: deep inside.
    inside = vectors.copy()
    palms = palm_points(shadow, pos, quat)
    inside[:, :2] -= palms[:, :2] - cloud[:, :2].mean(0)
    norm = Normalizer.fit(np.concatenate([vectors, inside]))
    # Object 1 of the stack, one metre away (object 0: a mug where the bottle was).
    shift = np.array([1.0, 0.0, 0.0], np.float32)
    moved = obj.grid.coarsened(2)
    moved = dataclasses.replace(moved, origin=np.asarray(moved.origin) + shift)
    grids = stack_grids([make_object("mug", 0).grid.coarsened(2), moved])
    term = PenetrationTerm(
        shadow,
        jnp.asarray(norm.mean),
        jnp.asarray(norm.std),
        jax.tree.map(jnp.asarray, grids),
        jnp.float32(1.0),
    )
    objects = jnp.ones(4, jnp.int32)

    def depth(v, origin):  # translations relative to origin, as an anchored network's
        v = v.copy()
        v[:, :3] -= origin
        z = jnp.asarray(norm.normalize(v), jnp.float32)
        return np.asarray(penetration_mm(term, z, jnp.asarray(origin, jnp.float32), objects))

    anchors = np.tile(shift + cloud[0], (4, 1))
    at_bottle = np.r_[shift, np.zeros(vectors.shape[1] - 3)]
    start = depth(vectors + at_bottle, anchors)
    deep = depth(inside + at_bottle, anchors)
    assert np.all(start < 0.5), start  # initial hands stand off the surface
    assert np.all(deep > 1.0), deep  # mm, averaged over every surface sample
    # Where the object is not (its translation read without the anchor): nothing.
    np.testing.assert_array_equal(depth(inside, np.zeros((4, 3), np.float32)), 0.0)
