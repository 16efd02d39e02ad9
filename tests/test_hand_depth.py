"""Where a generated hand lies against the object's cloud (`jaxgrasp._hand_depth`), the
physics of the generator's guided sampling (`generate(..., guidance=)`): the cloud's
signed-distance grid, the hand of a grasp vector."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from conftest import random_q, random_quat

from jaxgrasp._hand_depth import (
    CLOUD_GRID_NODES,
    CLOUD_GRID_SPACING,
    VIEW_BAND,
    cloud_sdf,
    grasp_surface,
    rotation_from_6d,
    view_sdf,
)
from jaxgrasp.grasp_vector import Normalizer, to_vector
from jaxgrasp.point_views import camera_position, visible_points
from jaxgrasp.sdf import sdf_query
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


def test_cloud_grid_holds_the_signed_distance_to_a_sphere_cloud():
    cloud, normals = sphere_cloud()
    grid = cloud_sdf(cloud, normals)
    assert grid.values.dtype == np.float32 and np.all(np.isfinite(grid.values))
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(300, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    radii = rng.uniform(0.0, 0.2, size=300)  # from the centre to beyond the grid
    points = jnp.asarray(dirs * radii[:, None], jnp.float32)
    signed, grad = sdf_query(jax.tree.map(jnp.asarray, grid.bucketed()), points)
    signed, grad = np.asarray(signed), np.asarray(grad)
    assert np.all(np.isfinite(signed)) and np.all(np.isfinite(grad))
    # Tangent planes of points ~4 mm apart on 3 mm nodes: within a millimetre of the
    # true distance near the surface, and the right side everywhere.
    near = np.abs(radii - RADIUS) < 0.02
    np.testing.assert_allclose(signed[near], radii[near] - RADIUS, atol=1e-3)
    assert np.all(
        np.sign(signed[np.abs(radii - RADIUS) > 2e-3])
        == np.sign(radii[np.abs(radii - RADIUS) > 2e-3] - RADIUS)
    )
    # Descending the depth moves a point near the surface outwards.
    shell = near & (radii > 0.01)
    assert np.median(np.sum(grad[shell] * dirs[shell], axis=1)) > 0.95


def test_cloud_grid_of_any_size_pads_to_one_shape():
    cloud, normals = sphere_cloud(512)
    small = cloud_sdf(cloud * 0.2, normals)  # a 2 cm ball: 3 mm nodes
    large = cloud_sdf(cloud * 20.0, normals)  # a 2 m ball: wider nodes, no more of them
    assert float(small.spacing) == CLOUD_GRID_SPACING
    assert max(large.shape) <= CLOUD_GRID_NODES and float(large.spacing) > 0.01
    assert np.shape(small.bucketed().values) == np.shape(large.bucketed().values)
    # One point: the distance to its tangent plane, around it.
    one = cloud_sdf(cloud[:1], normals[:1])
    assert np.all(np.isfinite(one.values)) and min(one.shape) > 2


def test_view_grid_takes_the_unseen_side_for_unknown_not_inside():
    cloud, normals = sphere_cloud()
    camera = camera_position(np.zeros(3), 0.8, 45.0, 0.3)
    seen = visible_points(cloud, normals, camera)
    hidden = np.setdiff1d(np.arange(len(cloud)), seen)
    assert 0.3 * len(cloud) < len(seen) < 0.7 * len(cloud)
    one_view = cloud[seen], normals[seen]
    view = jax.tree.map(jnp.asarray, view_sdf(*one_view, camera).bucketed())
    closed = jax.tree.map(jnp.asarray, cloud_sdf(*one_view).bucketed())

    def read(grid, points):
        return np.asarray(sdf_query(grid, jnp.asarray(points, jnp.float32))[0])

    unit = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    # 5 mm outside the unseen side: the closed reading takes many for inside, the
    # view's none.
    beyond = unit[hidden] * (RADIUS + 0.005)
    assert np.mean(read(closed, beyond) < -0.003) > 0.3
    assert np.mean(read(view, beyond) < -0.003) < 0.01
    # A third of the band inside the seen side: inside; 5 mm in front of it: outside.
    # (Not at the rim, where the rays graze the sphere: there a point under the surface
    # lies more than the band behind the seen surface, unknown.)
    ray = cloud[seen] - camera
    facing = -np.sum(unit[seen] * ray, axis=1) / np.linalg.norm(ray, axis=1) > 0.6
    assert facing.mean() > 0.3
    under = read(view, unit[seen] * (RADIUS - VIEW_BAND / 3))
    np.testing.assert_array_less(under[facing], -VIEW_BAND / 10)
    assert np.all(under < 5e-4)  # nowhere outside, to the grid's rounding at the rim
    over = read(view, unit[seen] * (RADIUS + 0.005))
    np.testing.assert_allclose(over[facing], 0.005, atol=1.5e-3)
    assert np.all(over >= -1e-6)
    # Deeper behind the seen surface than the band: unknown, read as 0.
    assert VIEW_BAND < RADIUS
    np.testing.assert_allclose(read(view, np.zeros((1, 3))), 0.0, atol=1e-6)
    # Everywhere finite, one point included.
    assert np.all(np.isfinite(np.asarray(view.values)))
    assert np.all(np.isfinite(view_sdf(cloud[:1], normals[:1], camera).values))


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
