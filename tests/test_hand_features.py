"""The hand-against-cloud features of a model trained with `TrainConfig.hand_features`:
what they read, against forward kinematics and a brute-force nearest point, and that
they stay finite for any grasp vector."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial import cKDTree

from jaxgrasp._hand_depth import grasp_surface
from jaxgrasp._hand_features import (
    FEATURE_CLIP,
    SAMPLES_PER_BODY,
    HandReader,
    batch_hand_features,
    feature_samples,
    hand_features,
)

# float32 features in cm: 1e-4 cm is a micrometre.
TOL_CM = 1e-4


def _reader(hand) -> HandReader:
    # Identity statistics: a normalised grasp vector is the grasp vector itself.
    d = 9 + hand.n_q
    return HandReader.of(hand, np.zeros(d, np.float32), np.ones(d, np.float32))


def _grasp(hand, pos) -> jnp.ndarray:
    """A grasp vector: the root at `pos`, the identity rotation, joints mid-range."""
    q = np.asarray(hand.q_range).mean(axis=1)
    return jnp.asarray(np.r_[pos, [1, 0, 0, 0, 1, 0], q], jnp.float32)


def test_samples_spread_over_every_body_with_a_surface(shadow):
    samples = feature_samples(shadow)
    body = np.asarray(samples.body)
    counts = np.bincount(np.asarray(shadow.surface.body), minlength=shadow.n_bodies)
    kept = np.bincount(body, minlength=shadow.n_bodies)
    np.testing.assert_array_equal(kept, np.minimum(counts, SAMPLES_PER_BODY))
    # A subset of the hand's own samples, each on its own body.
    own = np.asarray(shadow.surface.points)
    dist, idx = cKDTree(own).query(np.asarray(samples.points))
    assert dist.max() < 1e-7
    np.testing.assert_array_equal(np.asarray(shadow.surface.body)[idx], body)


def test_features_read_each_bodys_depth_below_a_plane(shadow):
    """Over a plane cloud z = 0 (normals up) every tangent plane is the plane itself:
    each body's feature is its lowest sample's height, in cm, within the clip."""
    reader = _reader(shadow)
    xs = np.linspace(-0.4, 0.4, 41)
    grid = np.stack(np.meshgrid(xs, xs), axis=-1).reshape(-1, 2)
    points = jnp.asarray(np.c_[grid, np.zeros(len(grid))], jnp.float32)
    normals = jnp.asarray(np.tile([0.0, 0.0, 1.0], (len(grid), 1)), jnp.float32)
    for height in (0.0, -0.08, -0.3):
        z = _grasp(shadow, [0.0, 0.0, height])
        got = np.asarray(hand_features(reader, z, jnp.zeros(3), points, normals))
        surface = np.asarray(
            grasp_surface(shadow, reader.mean, reader.std, z, jnp.zeros(3), reader.samples)
        )
        body = np.asarray(reader.samples.body)
        want = np.zeros(shadow.n_bodies)
        for b in np.unique(body):
            want[b] = np.clip(100.0 * surface[body == b, 2].min(), -FEATURE_CLIP, FEATURE_CLIP)
        np.testing.assert_allclose(got, want, atol=TOL_CM)
        # The fingers point up (+z): 8 cm down the palm lies under the plane, the
        # fingertips above it; 30 cm down the whole hand lies under it.
        if height == -0.08:
            assert want.min() < -0.5 and want.max() > 0.5
        if height == -0.3:
            assert np.all(want[np.unique(body)] == -FEATURE_CLIP)
    # The translation is relative to the origin (an anchored network's anchor point).
    up = np.asarray(
        hand_features(reader, _grasp(shadow, [0, 0, 0]), jnp.array([0, 0, 0.03]), points, normals)
    )
    np.testing.assert_allclose(
        up,
        np.asarray(
            hand_features(reader, _grasp(shadow, [0, 0, 0.03]), jnp.zeros(3), points, normals)
        ),
        atol=TOL_CM,
    )


def test_features_match_the_nearest_cloud_point_of_a_sphere(shadow):
    """On a sphere's cloud: each sample's nearest point by brute force (cKDTree) and the
    distance to its tangent plane, the body's least of them."""
    rng = np.random.default_rng(0)
    normals = rng.normal(size=(300, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    points = 0.05 * normals
    reader = _reader(shadow)
    zs = jnp.stack([_grasp(shadow, [0.0, -0.04, -0.02]), _grasp(shadow, [0.02, 0.0, 0.01])])
    zs = zs.at[1, 9:].add(0.3)  # other joints too
    origin = jnp.zeros((2, 3))
    got = np.asarray(
        batch_hand_features(
            reader,
            zs,
            origin,
            jnp.asarray(np.broadcast_to(points, (2, 300, 3)), jnp.float32),
            jnp.asarray(np.broadcast_to(normals, (2, 300, 3)), jnp.float32),
        )
    )
    body = np.asarray(reader.samples.body)
    for k in range(2):
        surface = np.asarray(
            grasp_surface(shadow, reader.mean, reader.std, zs[k], origin[k], reader.samples)
        )
        _, nearest = cKDTree(points).query(surface)
        signed = 100.0 * np.sum((surface - points[nearest]) * normals[nearest], axis=1)
        signed = np.clip(signed, -FEATURE_CLIP, FEATURE_CLIP)
        want = np.zeros(shadow.n_bodies)
        for b in np.unique(body):
            want[b] = signed[body == b].min()
        np.testing.assert_allclose(got[k], want, atol=1e-3)
    # Bodies without surface samples read 0.
    empty = np.setdiff1d(np.arange(shadow.n_bodies), body)
    assert len(empty) > 0 and np.all(got[:, empty] == 0.0)


def test_features_stay_finite_for_any_grasp_vector(shadow):
    """Noise of any size (x_t early in the flow), a zero rotation, a one-point cloud, a
    hand on the cloud's point (zero distance), overflowing coordinates: all finite."""
    reader = _reader(shadow)
    d = 9 + shadow.n_q
    cloud = jnp.asarray(np.random.default_rng(1).normal(size=(64, 3)) * 0.05, jnp.float32)
    normals = cloud / jnp.linalg.norm(cloud, axis=1, keepdims=True)
    cases = [jnp.full(d, v, jnp.float32) for v in (0.0, -1.0, 1e3, 1e20, 3e38, -3e38)]
    cases.append(jax.random.normal(jax.random.key(0), (d,)) * 10.0)
    for z in cases:
        for pts, nrm in ((cloud, normals), (cloud[:1], normals[:1])):
            f = hand_features(reader, z, jnp.zeros(3), pts, nrm)
            assert bool(jnp.all(jnp.isfinite(f))), z
            assert float(jnp.abs(f).max()) <= FEATURE_CLIP
    # The hand's root on the cloud's only point, a zero rotation: every sample there.
    on = jnp.zeros(d).at[:3].set(cloud[0])
    f = hand_features(reader, on, jnp.zeros(3), cloud[:1], normals[:1])
    np.testing.assert_allclose(np.asarray(f), 0.0, atol=TOL_CM)
