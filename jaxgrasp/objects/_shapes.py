"""Closed (watertight) building blocks for procedural objects; metres, z up."""

from __future__ import annotations

from typing import cast

import numpy as np
import trimesh

SECTIONS = 48  # facets around solids of revolution


def _align_z_to(axis) -> np.ndarray:
    """4x4 rotation taking +z onto `axis`."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    return trimesh.geometry.align_vectors([0.0, 0.0, 1.0], axis)


def place(mesh: trimesh.Trimesh, center=(0, 0, 0), axis=(0, 0, 1)) -> trimesh.Trimesh:
    """Rotate a z-aligned mesh onto `axis`, then move its origin to `center`."""
    mesh = mesh.copy()
    mesh.apply_transform(_align_z_to(axis))
    mesh.apply_translation(np.asarray(center, dtype=np.float64))
    return mesh


def cylinder(radius: float, height: float, center=(0, 0, 0), axis=(0, 0, 1)):
    """Solid cylinder centred on `center` along `axis`."""
    return place(
        trimesh.creation.cylinder(radius=radius, height=height, sections=SECTIONS), center, axis
    )


def box(extents, center=(0, 0, 0), rotation: np.ndarray | None = None):
    """Solid box with full `extents`, optionally rotated (3x3) about its centre."""
    mesh = trimesh.creation.box(extents=np.asarray(extents, dtype=np.float64))
    if rotation is not None:
        tf = np.eye(4)
        tf[:3, :3] = rotation
        mesh.apply_transform(tf)
    mesh.apply_translation(np.asarray(center, dtype=np.float64))
    return mesh


def revolve(profile, center=(0, 0, 0), axis=(0, 0, 1)):
    """Solid of revolution of a (radius, height) polyline running from the axis to the axis."""
    mesh = trimesh.creation.revolve(np.asarray(profile, dtype=np.float64), sections=SECTIONS)
    if mesh.volume < 0:
        mesh.invert()
    return place(mesh, center, axis)


def frustum(r_bottom: float, r_top: float, height: float, center=(0, 0, 0), axis=(0, 0, 1)):
    """Truncated cone from z=0 (r_bottom) to z=height (r_top) in its own frame."""
    profile = [(0, 0), (r_bottom, 0), (r_top, height), (0, height)]
    return revolve(profile, center, axis)


def tube_arc(major: float, minor: float, angle: float, start: float = 0.0) -> trimesh.Trimesh:
    """A closed arc of a torus in the xy-plane (centre at the origin) from angle `start`
    over `angle` radians, tube radius `minor`, with flat end caps."""
    n_ring, n_path = 24, max(8, int(SECTIONS * angle / (2 * np.pi)) + 4)
    phi = start + np.linspace(0.0, angle, n_path)
    t = np.linspace(0.0, 2 * np.pi, n_ring, endpoint=False)
    # ring point k of path step i: radial offset cos(t), vertical offset sin(t)
    rad = major + minor * np.cos(t)[None, :]  # (1, n_ring)
    x = rad * np.cos(phi)[:, None]  # (n_path, n_ring)
    y = rad * np.sin(phi)[:, None]
    z = np.broadcast_to(minor * np.sin(t)[None, :], x.shape)
    verts = np.stack([x, y, z], axis=-1).reshape(-1, 3)
    faces = []
    for i in range(n_path - 1):
        for k in range(n_ring):
            a, b = i * n_ring + k, i * n_ring + (k + 1) % n_ring
            c, d = a + n_ring, b + n_ring
            faces += [[a, c, b], [b, c, d]]
    centres = np.array(
        [
            [major * np.cos(phi[0]), major * np.sin(phi[0]), 0.0],
            [major * np.cos(phi[-1]), major * np.sin(phi[-1]), 0.0],
        ]
    )
    c0, c1 = len(verts), len(verts) + 1
    last = (n_path - 1) * n_ring
    for k in range(n_ring):
        faces.append([c0, k, (k + 1) % n_ring])
        faces.append([c1, last + (k + 1) % n_ring, last + k])
    mesh = trimesh.Trimesh(np.concatenate([verts, centres]), np.array(faces), process=True)
    trimesh.repair.fix_normals(mesh)
    return mesh


def rotate(mesh: trimesh.Trimesh, angle: float, axis, point=(0, 0, 0)) -> trimesh.Trimesh:
    mesh = mesh.copy()
    mesh.apply_transform(trimesh.transformations.rotation_matrix(angle, axis, point))
    return mesh


def concatenate(*meshes: trimesh.Trimesh) -> trimesh.Trimesh:
    """Several closed pieces as one part (e.g. the two cups of headphones)."""
    return cast(trimesh.Trimesh, trimesh.util.concatenate(list(meshes)))
