"""`load_object`: read, check, repair and prepare an object mesh with named parts."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import trimesh

from jaxgrasp.object_model import PROCEDURAL_PREFIX, ObjectError, PreparedObject
from jaxgrasp.part_geometry import (
    CORNER_POINTS,
    allowed_mask,
    classify_parts,
    oriented_box,
)
from jaxgrasp.sdf import build_clearance_grid, build_sdf_grid
from kinematics.geometry import farthest_point_sampling

SUPPORTED_SUFFIXES = (".obj", ".stl", ".ply", ".glb", ".gltf", ".off")
# Plausible object sizes after scaling (diagonal of the bounding box, metres).
MIN_DIAGONAL, MAX_DIAGONAL = 0.01, 2.0
# Grid: voxel = longest side / VOXELS_PER_SIDE (25 cm -> 1.95 mm) but at least
# MIN_VOXEL, with a padding margin around the mesh.
VOXELS_PER_SIDE = 128
MIN_VOXEL = 1.5e-3
GRID_PADDING = 0.03
# A mesh that stays open after repair is accepted only if its generalized winding number
# decides inside from outside at (nearly) every probe point of its bounding box.
MAX_AMBIGUOUS_PROBES = 0.02
# Holes are filled only while their total rim is short next to the mesh's size
# (rim length < SMALL_HOLES * sqrt(area)); large openings are not guessed at.
SMALL_HOLES = 0.25

PartsArg = Mapping[str, Any] | tuple[Sequence[int], Sequence[str]] | None


def load_object(
    source: str | Path | trimesh.Trimesh | trimesh.Scene,
    scale: float = 1.0,
    name: str | None = None,
    parts: PartsArg = None,
    *,
    n_points: int = 2048,
    voxel_size: float | None = None,
    seed: int = 0,
) -> PreparedObject:
    """Load an object and prepare it for grasp synthesis.

    Args:
        source: a mesh file (OBJ/STL/PLY/GLB/GLTF/OFF), a `trimesh.Trimesh`, a
            `trimesh.Scene`, or `procedural:CATEGORY:SEED` (an instance of the built-in
            library, as the CLI and `GraspSet.object_ref` name it; `scale` must be 1 and
            `parts` None). A GLB/GLTF scene's named geometries become the parts.
        scale: multiplies the mesh coordinates (e.g. 0.001 for a mesh in millimetres).
        name: object name (default: file stem, or "object").
        parts: optional parts, overriding a scene's: a dict {part name: mesh or mesh
            path}, or `(face_labels, names)` with one label (index into names) per face.
        n_points: surface samples (evenly spread, with normals and part ids).
        voxel_size: SDF grid spacing in metres (default: longest side / 128).
        seed: seed of the surface sampling.

    Raises:
        ObjectError: with one line naming the problem (missing or unreadable file, empty
            or degenerate mesh, non-finite vertices, bad scale, parts that do not cover
            the mesh, an open mesh whose inside is ambiguous).
    """
    if not np.isfinite(scale) or scale <= 0:
        raise ObjectError(f"scale must be a positive number, got {scale}")
    if n_points <= 0:
        raise ObjectError(f"n_points must be positive, got {n_points}")
    if isinstance(source, str) and source.startswith(PROCEDURAL_PREFIX):
        return _procedural(source, scale, name, parts, n_points, voxel_size, seed)
    label = str(source) if isinstance(source, str | Path) else type(source).__name__
    if name is None:
        name = Path(source).stem if isinstance(source, str | Path) else "object"

    part_meshes, face_labels, part_names = _read_parts(source, parts, label)
    mesh, face_part = _combine(part_meshes, face_labels, part_names, label)
    mesh.apply_scale(scale)
    _check_size(mesh, scale, label)
    watertight = _repair(mesh, label)
    if len(face_part) != len(mesh.faces):  # repair removed or reordered faces: relabel
        face_part = _relabel(mesh, part_meshes, scale)
    return _prepare(
        mesh, face_part, part_names, name, scale, label, watertight, n_points, voxel_size, seed
    )


def _procedural(reference, scale, name, parts, n_points, voxel_size, seed) -> PreparedObject:
    from jaxgrasp.objects import object_from_reference

    if parts is not None:
        raise ObjectError(f"'{reference}' has its own parts; leave parts out")
    obj = object_from_reference(
        reference, scale, n_points=n_points, voxel_size=voxel_size, seed=seed
    )
    return obj if name is None else dataclasses.replace(obj, name=name)


# --------------------------------------------------------------------------- reading
def _read_mesh_file(path: Path, label: str) -> trimesh.Trimesh | trimesh.Scene:
    if not path.exists():
        raise ObjectError(f"object mesh not found: {path}")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise ObjectError(
            f"cannot read {path}: unsupported format '{path.suffix}'; use one of "
            f"{', '.join(SUPPORTED_SUFFIXES)}"
        )
    try:
        loaded = trimesh.load(str(path), process=False)
    except Exception as err:
        raise ObjectError(f"cannot read {path} as a mesh: {' '.join(str(err).split())}") from None
    if not isinstance(loaded, trimesh.Trimesh | trimesh.Scene):
        raise ObjectError(f"{path} holds no triangle mesh (got {type(loaded).__name__})")
    return loaded


def _scene_parts(scene: trimesh.Scene) -> dict[str, trimesh.Trimesh]:
    out: dict[str, trimesh.Trimesh] = {}
    for node in scene.graph.nodes_geometry:
        transform, geom_name = scene.graph[node]
        geom = scene.geometry[geom_name]
        if not isinstance(geom, trimesh.Trimesh):
            continue
        mesh = geom.copy()
        mesh.apply_transform(transform)
        part = str(geom_name if geom_name not in out else node)
        if part in out:
            out[part] = cast(trimesh.Trimesh, trimesh.util.concatenate([out[part], mesh]))
        else:
            out[part] = mesh
    return out


def _as_mesh(item: Any, label: str) -> trimesh.Trimesh:
    if isinstance(item, trimesh.Trimesh):
        return item.copy()
    if isinstance(item, trimesh.Scene):
        return cast(trimesh.Trimesh, item.to_geometry())
    if isinstance(item, str | Path):
        loaded = _read_mesh_file(Path(item), label)
        return (
            cast(trimesh.Trimesh, loaded.to_geometry())
            if isinstance(loaded, trimesh.Scene)
            else loaded
        )
    raise ObjectError(f"{label}: a part must be a trimesh or a mesh path, got {type(item)}")


def _read_parts(source, parts: PartsArg, label: str):
    """-> (part meshes by name or None, face labels or None, part names)."""
    if isinstance(source, str | Path):
        loaded = _read_mesh_file(Path(source), label)
    elif isinstance(source, trimesh.Trimesh | trimesh.Scene):
        loaded = source
    elif parts is None or isinstance(parts, tuple):
        raise ObjectError(f"source must be a mesh path or a trimesh object, got {type(source)}")
    else:
        loaded = None

    if isinstance(parts, Mapping):
        if not parts:
            raise ObjectError(f"{label}: parts is an empty dict")
        meshes = {str(k): _as_mesh(v, label) for k, v in parts.items()}
        return meshes, None, list(meshes)
    if isinstance(parts, tuple):
        if len(parts) != 2:
            raise ObjectError(f"{label}: parts must be (face_labels, names)")
        labels, names = np.asarray(parts[0]), [str(n) for n in parts[1]]
        return None, (labels, loaded), names
    if parts is not None:
        raise ObjectError(f"{label}: parts must be a dict of meshes or (face_labels, names)")
    if isinstance(loaded, trimesh.Scene):
        meshes = _scene_parts(loaded)
        if not meshes:
            raise ObjectError(f"{label}: the scene holds no triangle meshes")
        return meshes, None, list(meshes)
    return {"object": loaded}, None, ["object"]


def _check_mesh(mesh: trimesh.Trimesh, what: str) -> None:
    if len(mesh.faces) == 0 or len(mesh.vertices) == 0:
        raise ObjectError(f"{what} is empty (no faces)")
    if not np.all(np.isfinite(mesh.vertices)):
        raise ObjectError(f"{what} has NaN or infinite vertex coordinates")


def _combine(part_meshes, face_labels, part_names, label):
    """One mesh + a part index per face."""
    if face_labels is not None:
        labels, loaded = face_labels
        mesh = loaded.to_geometry() if isinstance(loaded, trimesh.Scene) else loaded.copy()
        _check_mesh(mesh, label)
        if labels.shape != (len(mesh.faces),):
            raise ObjectError(
                f"{label}: {labels.shape[0] if labels.ndim else 0} face labels for "
                f"{len(mesh.faces)} faces; give exactly one label per face"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise ObjectError(f"{label}: face labels must be integers (indices into names)")
        bad = (labels < 0) | (labels >= len(part_names))
        if bad.any():
            raise ObjectError(
                f"{label}: parts do not cover the mesh: {int(bad.sum())} faces have no valid "
                f"label (labels must be 0..{len(part_names) - 1})"
            )
        missing = [n for i, n in enumerate(part_names) if not (labels == i).any()]
        if missing:
            raise ObjectError(f"{label}: parts {missing} have no faces")
        return mesh, labels.astype(np.int32)

    for n, m in part_meshes.items():
        _check_mesh(m, f"{label}: part '{n}'" if len(part_meshes) > 1 else label)
    if len(part_meshes) == 1:
        mesh = next(iter(part_meshes.values())).copy()
        return mesh, np.zeros(len(mesh.faces), dtype=np.int32)
    # Overlapping closed parts: a boolean union gives the object's true outer surface.
    meshes = [m.copy() for m in part_meshes.values()]
    try:
        if not all(m.is_watertight for m in meshes):
            raise ValueError("open part")
        mesh = trimesh.boolean.union(meshes, engine="manifold")
        if len(mesh.faces) == 0:
            raise ValueError("empty union")
    except Exception:
        mesh = trimesh.util.concatenate(meshes)
    return mesh, _nearest_part(mesh, meshes)


def _nearest_part(mesh: trimesh.Trimesh, parts: list[trimesh.Trimesh]) -> np.ndarray:
    """Label each face with the part whose surface is nearest to its centroid."""
    import igl

    centroids = np.ascontiguousarray(mesh.triangles_center, dtype=np.float64)
    dists = []
    for p in parts:
        d2, _, _ = igl.point_mesh_squared_distance(
            centroids,
            np.ascontiguousarray(p.vertices, dtype=np.float64),
            np.ascontiguousarray(p.faces, dtype=np.int64),
        )
        dists.append(d2)
    return np.argmin(np.stack(dists), axis=0).astype(np.int32)


def _relabel(mesh, part_meshes, scale):
    if part_meshes is None:  # labels given per face but repair changed faces
        raise ObjectError(
            "repair changed the faces of a mesh with per-face part labels; pass a clean "
            "mesh (merged vertices, no degenerate faces) with its labels"
        )
    scaled = []
    for m in part_meshes.values():
        c = m.copy()
        c.apply_scale(scale)
        scaled.append(c)
    return _nearest_part(mesh, scaled)


def _check_size(mesh: trimesh.Trimesh, scale: float, label: str) -> None:
    diag = float(np.linalg.norm(mesh.extents))
    if not (MIN_DIAGONAL <= diag <= MAX_DIAGONAL):
        raise ObjectError(
            f"{label}: object diagonal is {diag:.4g} m after scale {scale:g}; expected "
            f"{MIN_DIAGONAL}-{MAX_DIAGONAL} m (is the mesh in millimetres? try scale=0.001)"
        )
    if mesh.area <= 0 or np.linalg.matrix_rank(mesh.vertices - mesh.vertices.mean(0), 1e-9) < 3:
        raise ObjectError(f"{label}: the mesh is degenerate (flat or zero area)")


def _repair(mesh: trimesh.Trimesh, label: str) -> bool:
    """Merge vertices, drop degenerate faces, fix winding/normals, fill small holes.

    Returns whether the mesh is watertight; an open mesh is kept only if its generalized
    winding number separates inside from outside at surface probes.
    """
    mesh.merge_vertices()
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.update_faces(mesh.unique_faces())
    mesh.remove_unreferenced_vertices()
    trimesh.repair.fix_winding(mesh)
    trimesh.repair.fix_inversion(mesh)
    if not mesh.is_watertight and _boundary_length(mesh) < SMALL_HOLES * np.sqrt(mesh.area):
        trimesh.repair.fill_holes(mesh)
    if len(mesh.faces) == 0:
        raise ObjectError(f"{label}: no valid faces remain after removing degenerate ones")
    if mesh.is_watertight:
        return True
    import igl

    # Winding number at random points of the bounding box: ~0 outside, ~1 inside for a
    # mesh with small defects; a surface with a real opening leaves many points in between.
    lo, hi = mesh.bounds
    probes = np.random.default_rng(0).uniform(lo, hi, (4000, 3))
    wn = igl.fast_winding_number(
        np.ascontiguousarray(mesh.vertices, dtype=np.float64),
        np.ascontiguousarray(mesh.faces, dtype=np.int64),
        probes,
    )
    ambiguous = float(np.mean(np.abs(wn - 0.5) < 0.3))
    if ambiguous > MAX_AMBIGUOUS_PROBES:
        raise ObjectError(
            f"{label}: the mesh is not closed and its inside is ambiguous "
            f"(winding number undecided at {100 * ambiguous:.0f}% of probes); close the mesh "
            "(e.g. in a mesh editor) or pass a watertight one"
        )
    return False


def _boundary_length(mesh: trimesh.Trimesh) -> float:
    """Total length of edges used by only one face (the rims of holes)."""
    edges = np.sort(mesh.edges, axis=1)
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    rim = uniq[counts == 1]
    return float(np.linalg.norm(mesh.vertices[rim[:, 0]] - mesh.vertices[rim[:, 1]], axis=1).sum())


# --------------------------------------------------------------------------- preparing
def _prepare(
    mesh, face_part, part_names, name, scale, label, watertight, n_points, voxel_size, seed
) -> PreparedObject:
    spacing = voxel_size or max(float(mesh.extents.max()) / VOXELS_PER_SIDE, MIN_VOXEL)
    grid = build_sdf_grid(mesh.vertices, mesh.faces, spacing, GRID_PADDING, closed=watertight)
    clearance = build_clearance_grid(mesh.vertices, mesh.faces, face_part, len(part_names), grid)

    cand, face = trimesh.sample.sample_surface(mesh, max(8 * n_points, 16000), seed=seed)
    chosen = farthest_point_sampling(cand, n_points)
    points = cand[chosen]
    normals = mesh.face_normals[face[chosen]]
    point_part = face_part[face[chosen]]

    com = mesh.center_mass if watertight else mesh.triangles_center.T @ mesh.area_faces / mesh.area
    part_surfaces, boxes = [], []
    for i in range(len(part_names)):
        sub = mesh.submesh([np.flatnonzero(face_part == i)], append=True)
        dense, _ = trimesh.sample.sample_surface(sub, CORNER_POINTS, seed=seed)
        part_surfaces.append(dense)
        boxes.append(oriented_box(sub.vertices))
    infos = classify_parts(part_names, boxes, part_surfaces, mesh.bounds.mean(0))
    allowed = np.zeros(len(points), dtype=bool)
    for i, info in enumerate(infos):
        sel = point_part == i
        allowed[sel] = allowed_mask(info.category, info.principal, normals[sel])

    return PreparedObject(
        grid=grid,
        clearance=clearance,
        points=points,
        normals=normals,
        point_part=point_part.astype(np.int32),
        allowed=allowed,
        part_center=np.stack([b.center for b in boxes]),
        part_axes=np.stack([b.axes for b in boxes]),
        part_half=np.stack([b.half for b in boxes]),
        part_principal=np.stack([i.principal for i in infos]),
        com=np.asarray(com, dtype=np.float64),
        vertices=np.asarray(mesh.vertices, dtype=np.float64),
        faces=np.asarray(mesh.faces, dtype=np.int32),
        face_part=np.asarray(face_part, dtype=np.int32),
        name=name,
        part_names=tuple(part_names),
        part_categories=tuple(i.category for i in infos),
        watertight=bool(watertight),
        scale=float(scale),
        source=label,
    )
