"""Objects: SDF accuracy and finiteness, part boxes and categories, library, bad input."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import trimesh

from jaxgrasp import ObjectError, load_object, objects
from jaxgrasp.part_geometry import oriented_box
from jaxgrasp.sdf import _nearest_node, build_sdf_grid, mesh_signed_distance
from kinematics.specs._gymnasium_robotics import asset_path

# Accuracy bar of the SDF grid against exact distance, within 1 cm of the surface.
RMS_TOL_M = 0.5e-3
NEAR_SURFACE = 0.01


def _near_surface_points(mesh: trimesh.Trimesh, n: int, rng) -> np.ndarray:
    pts, face = trimesh.sample.sample_surface(mesh, n, seed=int(rng.integers(1 << 30)))
    offset = rng.uniform(-NEAR_SURFACE, NEAR_SURFACE, n)[:, None]
    return pts + offset * mesh.face_normals[face]


def _exact_signed(mesh: trimesh.Trimesh, pts: np.ndarray) -> np.ndarray:
    """Reference independent of the build: trimesh's closest point + ray-cast containment."""
    _, dist, _ = trimesh.proximity.closest_point(mesh, pts)
    return np.where(mesh.contains(pts), -dist, dist)


def _gym_asset(*parts: str) -> Path:
    return asset_path(*parts)


# ------------------------------------------------------------------ SDF: analytic shapes
def _capsule_sdf(p, r, h):
    z = np.clip(p[:, 2], -h, h)
    return np.linalg.norm(p - np.stack([0 * z, 0 * z, z], -1), axis=1) - r


def _box_sdf(p, half):
    q = np.abs(p) - half
    return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(1), 0)


@pytest.mark.parametrize(
    "shape",
    ["sphere", "box", "capsule"],
)
def test_sdf_matches_analytic_shapes(shape):
    rng = np.random.default_rng(0)
    if shape == "sphere":
        mesh = trimesh.creation.icosphere(5, 0.05)
        exact = lambda p: np.linalg.norm(p, axis=1) - 0.05  # noqa: E731
    elif shape == "box":
        half = np.array([0.06, 0.03, 0.02])
        mesh = trimesh.creation.box(extents=2 * half)
        exact = lambda p: _box_sdf(p, half)  # noqa: E731
    else:
        mesh = trimesh.creation.capsule(height=0.08, radius=0.02, count=[64, 64])
        exact = lambda p: _capsule_sdf(p, 0.02, 0.04)  # noqa: E731
    obj = load_object(mesh, n_points=256)
    pts = _near_surface_points(mesh, 4000, rng)
    d, g = obj.sdf(pts)
    err = np.asarray(d) - exact(pts)
    assert np.sqrt(np.mean(err**2)) < RMS_TOL_M
    # Sign is right wherever the point is more than a voxel from the surface.
    far = np.abs(exact(pts)) > 2 * float(obj.grid.spacing)
    assert np.all(np.sign(np.asarray(d)[far]) == np.sign(exact(pts)[far]))
    # Gradient is (close to) the unit outward normal.
    gn = np.linalg.norm(np.asarray(g), axis=1)
    assert np.median(np.abs(gn - 1)) < 0.05


@pytest.mark.parametrize(
    "asset, scale",
    [
        (("kitchen_franka", "kitchen_assets", "meshes", "kettlehandle.stl"), 1.0),
        (("kitchen_franka", "franka_assets", "meshes", "collision", "hand.stl"), 1.0),
        (("kitchen_franka", "franka_assets", "meshes", "collision", "link4.stl"), 1.0),
    ],
)
def test_sdf_on_real_meshes(asset, scale):
    """Real meshes shipped by a PyPI package (gymnasium-robotics) vs exact distance."""
    path = _gym_asset(*asset)
    obj = load_object(path, scale=scale, n_points=256)
    mesh = obj.trimesh()
    assert mesh.is_watertight
    pts = _near_surface_points(mesh, 3000, np.random.default_rng(1))
    ref = _exact_signed(mesh, pts)
    d = np.asarray(obj.sdf(pts)[0])
    assert np.sqrt(np.mean((d - ref) ** 2)) < RMS_TOL_M
    far = np.abs(ref) > 2 * float(obj.grid.spacing)
    assert np.mean(np.sign(d[far]) == np.sign(ref[far])) > 0.995


def test_open_mesh_in_millimetres_is_repaired_or_signed_robustly():
    """The Shadow palm STL: millimetres, not watertight; loads with scale=0.001."""
    obj = load_object(_gym_asset("stls", "hand", "palm.stl"), scale=0.001, n_points=256)
    assert 0.1 < obj.diagonal < 0.2
    centre = np.asarray(obj.vertices).mean(0)
    far = centre + np.array([0.0, 0.0, 0.5])
    d, _ = obj.sdf(np.stack([far]))
    assert float(d[0]) > 0.3


def test_sdf_finite_everywhere():
    obj = load_object(trimesh.creation.box(extents=(0.1, 0.06, 0.04)), n_points=128)
    grid = obj.grid
    lo = np.asarray(grid.origin)
    hi = lo + float(grid.spacing) * (np.array(grid.shape) - 1)
    pts = np.concatenate(
        [
            np.array([lo, hi, [lo[0], hi[1], lo[2]], 0.5 * (lo + hi)]),  # grid corners, centre
            np.array([[hi[0], 0.0, 0.0], [lo[0], 0.0, 0.0]]),  # exactly on the boundary
            np.array([[1e3, -1e3, 5e2], [0.05, 0.0, 0.0], [0.05, 0.03, 0.02]]),  # far, surface
            np.array([[0.0, 0.0, 0.0]]),  # medial point (gradient ambiguous)
            np.random.default_rng(0).uniform(-2, 2, (500, 3)),
        ]
    )
    d, g = obj.sdf(pts)
    assert np.all(np.isfinite(np.asarray(d))) and np.all(np.isfinite(np.asarray(g)))

    def total(p):
        return jnp.sum(obj.sdf(p)[0])

    autograd = jax.jit(jax.grad(total))(jnp.asarray(pts, jnp.float32))
    assert np.all(np.isfinite(np.asarray(autograd)))
    # The analytic gradient is the derivative of the value (inside and outside the grid).
    np.testing.assert_allclose(np.asarray(autograd), np.asarray(g), atol=2e-3)


def test_padded_grid_queries_the_same_field():
    from jaxgrasp.sdf import GRID_BUCKET, bucket_shape, sdf_query

    obj = objects.make_object("mug", 0)
    grid = obj.grid
    padded = grid.bucketed()
    assert np.shape(padded.values) == (GRID_BUCKET,) * 3 and padded.shape == grid.shape
    assert bucket_shape((200, 10, 176)) == (256, GRID_BUCKET, GRID_BUCKET)
    # Inside, on and outside the grid box (the padding must never be read).
    lo = np.asarray(grid.origin)
    hi = lo + float(grid.spacing) * (np.array(grid.shape) - 1)
    pts = np.random.default_rng(0).uniform(lo - 0.05, hi + 0.05, (4000, 3))
    pts = jnp.asarray(np.r_[pts, [hi, lo, hi - 1e-4]], jnp.float32)
    (d0, g0), (d1, g1) = sdf_query(grid, pts), sdf_query(padded, pts)
    np.testing.assert_array_equal(np.asarray(d0), np.asarray(d1))
    np.testing.assert_array_equal(np.asarray(g0), np.asarray(g1))
    np.testing.assert_array_equal(np.asarray(padded.query(pts)[0]), np.asarray(d0))
    with pytest.raises(ValueError, match="cannot pad"):
        grid.padded((10, 10, 10))


def test_part_clearance_is_the_distance_to_the_other_parts():
    """Channel p of the clearance grid vs trimesh's exact distance to the faces of every
    other part; padded to the shared bucket it reads the same; a whole-object target has
    nothing to keep away from."""
    obj = objects.make_object("kettle", 0)
    spacing = float(obj.grid.spacing)
    rng = np.random.default_rng(3)
    faces, face_part = np.asarray(obj.faces), np.asarray(obj.face_part)
    padded = obj.clearance.bucketed()
    assert np.shape(padded.values)[0] % 4 == 0 and padded.shape == obj.grid.shape
    for p, name in enumerate(obj.part_names):
        others = trimesh.Trimesh(np.asarray(obj.vertices), faces[face_part != p], process=False)
        pts = _near_surface_points(obj.trimesh(), 3000, rng)
        _, ref, _ = trimesh.proximity.closest_point(others, pts)
        d, g = obj.part_clearance(p, pts)
        d = np.asarray(d)
        near = ref < NEAR_SURFACE  # the barrier's range; the grid is exact in this band
        # Trilinear interpolation of |x| overestimates near the surface by < spacing / 2.
        assert np.sqrt(np.mean((d - ref)[near] ** 2)) < RMS_TOL_M, name
        assert np.all(np.abs(d - ref)[near] < 0.5 * spacing + 1e-4), name
        np.testing.assert_array_equal(np.asarray(padded.query(pts, p)[0]), d)
        gn = np.linalg.norm(np.asarray(g)[near & (ref > 2 * spacing)], axis=1)
        assert np.median(np.abs(gn - 1)) < 0.05, name
    d, g = obj.part_clearance(-1, pts)
    assert np.all(np.asarray(d) >= 1.0) and not np.any(np.asarray(g))
    # One part: nothing else to keep away from.
    single = load_object(trimesh.creation.box(extents=(0.1, 0.06, 0.04)), n_points=128)
    assert float(jnp.min(single.part_clearance(0, pts[:10])[0])) >= 1.0


@pytest.mark.parametrize("category", ["bowl", "knife", "headphones", "kettle"])
def test_exact_signed_distance_signed_from_the_grid_matches_the_winding_number(category):
    """With the object's own grid, points away from the surface take a grid node's sign
    instead of the winding number: the same distances, faces and closest points (a thin
    shell, a thin blade, a thin band, a four-part union), also outside the grid."""
    obj = objects.make_object(category, 0)
    rng = np.random.default_rng(5)
    pts = _near_surface_points(obj.trimesh(), 20000, rng)
    pts[:2000] += rng.normal(scale=0.0005, size=(2000, 3))  # right at the surface
    pts[-500:] = rng.uniform(-0.6, 0.6, (500, 3))  # most beyond the grid's padding
    v, f = obj.vertices, obj.faces
    plain = mesh_signed_distance(pts, v, f)
    signed_by_grid = mesh_signed_distance(pts, v, f, obj.grid)
    for a, b in zip(plain, signed_by_grid, strict=True):
        np.testing.assert_array_equal(a, b)
    assert 0.05 < np.mean(plain[0] < 0) < 0.95
    _, gap = _nearest_node(obj.grid, pts)  # the shortcut is what decided most signs
    assert np.mean(gap < np.abs(plain[0])) > 0.5 and np.mean(np.isinf(gap[-500:])) > 0.5


@pytest.mark.parametrize("category", ["headphones", "kettle"])
def test_closed_mesh_grid_takes_the_band_signs_from_the_coarse_lattice(category):
    """`build_sdf_grid(closed=True)` signs the band's nodes from the coarse lattice where
    no surface lies between: the same grid as with the winding number everywhere (up to
    the sign of a zero: a node exactly on the surface, where w = 1/2)."""
    mesh = trimesh.util.concatenate(list(objects.make_parts(category, 0).values()))
    spacing = max(float(mesh.extents.max()) / 128, 1.5e-3)
    plain = build_sdf_grid(mesh.vertices, mesh.faces, spacing, 0.03)
    closed = build_sdf_grid(mesh.vertices, mesh.faces, spacing, 0.03, closed=True)
    np.testing.assert_allclose(closed.values, plain.values, rtol=0, atol=1e-15)
    assert np.mean(closed.values == plain.values) > 0.99999


def test_sdf_outside_grid_continues_and_points_back():
    obj = load_object(trimesh.creation.icosphere(3, 0.05), n_points=128)
    dirs = np.random.default_rng(2).normal(size=(50, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    for r in (0.2, 1.0, 10.0):
        d, g = obj.sdf(dirs * r)
        assert np.all(np.asarray(d) > r - 0.05 - 0.05)  # never less than box distance
        assert np.all(np.sum(np.asarray(g) * dirs, axis=1) > 0.5)  # points back


# ------------------------------------------------------------------ parts
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_canonical_part_categories(seed):
    expect = {
        ("mug", "handle"): "L-shaped",
        ("bottle", "cap"): "lid-like",
        ("lamp", "base"): "disk-like",
        ("hammer", "handle"): "shaft-like",
    }
    for (category, part), want in expect.items():
        obj = objects.make_object(category, seed, n_points=256)
        assert obj.part_category(part) == want, (category, part, seed)


def test_principal_directions():
    bottle = objects.make_object("bottle", 0, n_points=256)
    cap = bottle.part_index("cap")
    assert np.asarray(bottle.part_principal[cap])[2] > 0.95  # out of the neck: up
    lamp = objects.make_object("lamp", 0, n_points=256)
    base = lamp.part_index("base")
    assert np.asarray(lamp.part_principal[base])[2] > 0.95  # into the pole: up
    hammer = objects.make_object("hammer", 0, n_points=256)
    handle = hammer.part_index("handle")
    assert abs(np.asarray(hammer.part_principal[handle])[2]) > 0.95  # along the handle


def test_allowed_regions_follow_categories():
    mug = objects.make_object("mug", 0, n_points=512)
    part = np.asarray(mug.point_part)
    allowed = np.asarray(mug.allowed)
    normals = np.asarray(mug.normals)
    for i in range(mug.n_parts):
        sel = part == i
        assert allowed[sel].any()
        dots = normals[sel] @ np.asarray(mug.part_principal[i])
        if mug.part_categories[i] != "lid-like":
            assert np.all(np.abs(dots[allowed[sel]]) < 0.5 + 1e-6)


def test_obb_no_larger_than_trimesh():
    rng = np.random.default_rng(3)
    clouds = [rng.normal(size=(300, 3)) * rng.uniform(0.01, 0.1, 3) for _ in range(5)]
    for category in ("mug", "kettle", "drill"):
        obj = objects.make_object(category, 1, n_points=128)
        for name in obj.part_names:
            clouds.append(obj.trimesh(name).vertices)
    for pts in clouds:
        ours = oriented_box(pts)
        _, extents = trimesh.bounds.oriented_bounds(pts)
        assert ours.volume <= 1.01 * float(np.prod(extents))
        assert np.all(ours.contains(pts, tol=1e-7))


# ------------------------------------------------------------------ library
@pytest.mark.parametrize("category", objects.categories())
def test_library_category(category, tmp_path):
    parts = objects.make_parts(category, seed=5)
    assert all(m.is_watertight for m in parts.values())
    again = objects.make_parts(category, seed=5)
    for name in parts:
        np.testing.assert_array_equal(parts[name].vertices, again[name].vertices)
    other = objects.make_parts(category, seed=6)
    assert any(not np.array_equal(parts[n].vertices, other[n].vertices) for n in parts)
    path = objects.export_glb(category, 5, tmp_path / f"{category}.glb")
    obj = load_object(path, n_points=256)
    assert set(obj.part_names) == set(parts)  # names survive GLB export -> load
    assert obj.watertight
    assert 0.10 <= obj.diagonal <= 0.50
    counts = np.bincount(np.asarray(obj.point_part), minlength=obj.n_parts)
    assert np.all(counts > 0)


def test_library_has_twelve_categories():
    assert len(objects.categories()) >= 12


def test_load_object_reads_a_procedural_reference():
    """`load_object` takes the reference the CLI and saved grasp sets use; before, it
    looked for a file called "procedural:mug:3"."""
    made = objects.make_object("mug", 3, n_points=256)
    loaded = load_object("procedural:mug:3", n_points=256)
    assert loaded.source == made.source == "procedural:mug:3"
    assert loaded.part_names == made.part_names and loaded.name == "mug"
    np.testing.assert_array_equal(loaded.vertices, made.vertices)
    np.testing.assert_array_equal(loaded.points, made.points)
    assert load_object("procedural:mug:3", name="cup", n_points=64).name == "cup"
    resampled = load_object("procedural:mug:3", n_points=256, seed=1)  # the sampling's seed
    np.testing.assert_array_equal(resampled.vertices, made.vertices)
    assert not np.array_equal(resampled.points, made.points)
    with pytest.raises(ObjectError, match="expected procedural:CATEGORY:SEED"):
        load_object("procedural:mug")
    with pytest.raises(ObjectError, match="unknown object category 'flask'"):
        load_object("procedural:flask:0")
    with pytest.raises(ObjectError, match="cannot be rescaled"):
        load_object("procedural:mug:3", scale=0.5)
    with pytest.raises(ObjectError, match="has its own parts"):
        load_object("procedural:mug:3", parts={"a": "a.obj"})


# ------------------------------------------------------------------ bad input
def test_bad_inputs(tmp_path):
    box = trimesh.creation.box(extents=(0.1, 0.1, 0.1))
    with pytest.raises(ObjectError, match="object mesh not found"):
        load_object(tmp_path / "missing.obj")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ObjectError, match="unsupported format"):
        load_object(tmp_path / "notes.txt")
    (tmp_path / "garbage.glb").write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(ObjectError, match="cannot read"):
        load_object(tmp_path / "garbage.glb")
    with pytest.raises(ObjectError, match="empty"):
        load_object(trimesh.Trimesh())
    bad = box.copy()
    bad.vertices[0] = [np.nan, 0, 0]
    with pytest.raises(ObjectError, match="NaN or infinite"):
        load_object(bad)
    for scale in (0.0, -1.0, float("nan")):
        with pytest.raises(ObjectError, match="scale must be a positive"):
            load_object(box, scale=scale)
    with pytest.raises(ObjectError, match="diagonal"):
        load_object(box, scale=1000.0)
    with pytest.raises(ObjectError, match="diagonal"):
        load_object(box, scale=1e-3)
    labels = np.zeros(len(box.faces), dtype=int)
    labels[:2] = -1
    with pytest.raises(ObjectError, match="parts do not cover the mesh"):
        load_object(box, parts=(labels, ["a"]))
    with pytest.raises(ObjectError, match="one label per face"):
        load_object(box, parts=(labels[:5], ["a"]))
    with pytest.raises(ObjectError, match=r"parts \['b'\] have no faces"):
        load_object(box, parts=(np.zeros(len(box.faces), dtype=int), ["a", "b"]))
    mug = objects.make_object("mug", 0, n_points=128)
    with pytest.raises(ObjectError, match="unknown part 'lid'.*body, handle|handle, body"):
        mug.part_index("lid")
    # A wide-open surface: no inside to speak of.
    half = trimesh.creation.icosphere(3, 0.05)
    half.update_faces(half.triangles_center[:, 2] > 0.0)
    half.remove_unreferenced_vertices()
    with pytest.raises(ObjectError, match="not closed and its inside is ambiguous"):
        load_object(half)


def test_small_hole_and_flipped_faces_are_repaired():
    mesh = trimesh.creation.icosphere(3, 0.05)
    mesh.update_faces(np.arange(1, len(mesh.faces)))  # punch a one-triangle hole
    mesh.invert()  # and turn it inside out
    obj = load_object(mesh, n_points=128)
    assert obj.watertight
    d, _ = obj.sdf(np.array([[0.0, 0.0, 0.0], [0.2, 0.0, 0.0]]))
    assert float(d[0]) < -0.04 and float(d[1]) > 0.1


def test_face_label_parts():
    parts = objects.make_parts("hammer", 0)
    mesh = trimesh.util.concatenate(list(parts.values()))
    labels = np.concatenate([np.full(len(m.faces), i) for i, m in enumerate(parts.values())])
    obj = load_object(mesh, parts=(labels, list(parts)), n_points=256)
    assert obj.part_names == ("handle", "head")
    assert obj.part_category("handle") == "shaft-like"


def test_prepared_object_is_a_pytree_for_jit():
    obj = objects.make_object("hammer", 0, n_points=128)
    leaves = jax.tree_util.tree_leaves(obj)
    assert all(hasattr(x, "shape") for x in leaves)

    @jax.jit
    def min_distance(o, pts):
        return jnp.min(o.sdf(pts)[0])

    pts = jnp.asarray(np.asarray(obj.points)[:10] + 0.01 * np.asarray(obj.normals)[:10])
    assert abs(float(min_distance(obj, pts)) - 0.01) < 1e-3
    assert obj.n_points == 128 and np.asarray(obj.point_part).shape == (128,)
