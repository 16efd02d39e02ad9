"""Where a generated hand lies against the object's cloud (`jaxgrasp._hand_depth`), the
physics of the generator's guided sampling (`generate(..., guidance=)`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from conftest import random_q, random_quat

from jaxgrasp._hand_depth import cloud_distance, grasp_surface, rotation_from_6d
from jaxgrasp.grasp_vector import Normalizer, to_vector
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


def test_grasp_surface_matches_forward_kinematics_at_the_root_pose(shadow):
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
    for i in range(3):
        got = grasp_surface(shadow, *stats, z[i], jnp.asarray(origin[i]))
        poses = forward_kinematics(shadow, pos[i], quat[i], q[i])
        want = points_to_world(poses, shadow.surface.body, shadow.surface.points)
        np.testing.assert_allclose(got, want, atol=1e-5)
