"""Single-view partial point clouds (DexVLG §4.5, App. D): a camera `distance` from the
object's centre, `elevation` above the horizon looking at it, at an azimuth; the points
it sees are found by hidden point removal (Katz, Tal and Basri 2007) on the object's
dense surface samples, keeping points whose normal faces the camera."""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull


def camera_position(center: np.ndarray, distance: float, elevation_deg: float, azimuth: float):
    """World position of a camera looking at `center`. Shape: (3,)."""
    el = np.radians(elevation_deg)
    d = np.array([np.cos(el) * np.cos(azimuth), np.cos(el) * np.sin(azimuth), np.sin(el)])
    return np.asarray(center, dtype=np.float64) + distance * d


def visible_points(
    points: np.ndarray, normals: np.ndarray, camera: np.ndarray, radius_exp: float = 3.0
) -> np.ndarray:
    """Indices of the points seen from `camera`. Shapes: points, normals (n, 3)."""
    rel = np.asarray(points, dtype=np.float64) - camera
    norm = np.maximum(np.linalg.norm(rel, axis=1, keepdims=True), 1e-12)
    radius = norm.max() * 10.0**radius_exp
    flipped = rel + 2.0 * (radius - norm) * rel / norm  # spherical flip
    hull = ConvexHull(np.vstack([flipped, np.zeros((1, 3))]))
    seen = np.zeros(len(rel), bool)
    seen[hull.vertices[hull.vertices < len(rel)]] = True
    facing = np.sum(np.asarray(normals) * rel, axis=1) < 0.0
    keep = seen & facing
    return np.flatnonzero(keep if keep.any() else seen)


def partial_views(
    points: np.ndarray,
    normals: np.ndarray,
    n_views: int = 8,
    distance: float = 0.8,
    elevation_deg: float = 45.0,
) -> list[np.ndarray]:
    """Visible-point indices from `n_views` cameras at evenly spaced azimuths
    (`view_camera` gives view i's camera)."""
    return [
        visible_points(points, normals, view_camera(points, i, n_views, distance, elevation_deg))
        for i in range(n_views)
    ]


def view_camera(
    points: np.ndarray,
    view: int,
    n_views: int = 8,
    distance: float = 0.8,
    elevation_deg: float = 45.0,
) -> np.ndarray:
    """The camera of `partial_views`' view `view` of the cloud `points`. Shape: (3,)."""
    azimuth = view * (2 * np.pi / n_views)  # as np.linspace spaces them
    return camera_position(np.asarray(points).mean(0), distance, elevation_deg, azimuth)


def single_view(
    points: np.ndarray, normals: np.ndarray, view: int = 0, n_views: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """`partial_views`' view `view` alone: (the indices of the points it sees, shape
    (m,); its camera, shape (3,))."""
    camera = view_camera(points, view, n_views)
    return visible_points(points, normals, camera), camera
