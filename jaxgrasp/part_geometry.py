"""Part geometry of DexVLG App. C: oriented part boxes, part categories, principal
directions and the surface region where grasp points may be sampled (numpy, built once).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import trimesh

LID, DISK, L_SHAPED, SHAFT = "lid-like", "disk-like", "L-shaped", "shaft-like"
PART_CATEGORIES = (LID, DISK, L_SHAPED, SHAFT)

N_DIRECTIONS = 256  # Fibonacci lattice directions tried as the box x-axis (App. C.1)
FLAT_RATIO = 3.0  # disk-like: second-shortest axis >= 3x the shortest (App. C.2)
CORNER_FRACTION = 0.2  # size of a box "corner section", as a fraction of each extent
CORNER_POINTS = 4096  # surface samples used to test corner sections for emptiness
# Allowed grasp-point regions: "aligned" means normal . principal > cos 30 deg,
# "perpendicular" means |normal . principal| < sin 30 deg.
ALIGNED_COS = np.cos(np.deg2rad(30.0))
PERPENDICULAR_SIN = np.sin(np.deg2rad(30.0))


@dataclasses.dataclass(frozen=True)
class OrientedBox:
    """A box in the object frame: centre, axes (columns, sorted longest first), half extents."""

    center: np.ndarray  # (3,)
    axes: np.ndarray  # (3, 3), column k = axis k
    half: np.ndarray  # (3,)

    @property
    def volume(self) -> float:
        return float(8.0 * np.prod(self.half))

    def corners(self) -> np.ndarray:
        """The 8 corners. Shape: (8, 3); row k has signs given by `corner_signs()[k]`."""
        return self.center + (corner_signs() * self.half) @ self.axes.T

    def contains(self, points: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        local = (np.asarray(points) - self.center) @ self.axes
        return np.all(np.abs(local) <= self.half + tol, axis=-1)


def corner_signs() -> np.ndarray:
    return np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)


def fibonacci_directions(n: int = N_DIRECTIONS) -> np.ndarray:
    """n near-uniform unit vectors on the upper hemisphere (a box axis and its negation are
    the same box). Shape: (n, 3)."""
    i = np.arange(n) + 0.5
    z = 1.0 - i / n  # (0, 1]
    r = np.sqrt(np.maximum(0.0, 1.0 - z * z))
    phi = np.pi * (3.0 - np.sqrt(5.0)) * i
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=-1)


def _min_area_rectangle(p2: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Rotating calipers over the 2D convex hull: (area, unit u-axis, centre, half extents)."""
    from scipy.spatial import ConvexHull

    try:
        hull = p2[ConvexHull(p2).vertices]
    except Exception:  # degenerate (collinear) section: use the points themselves
        hull = p2
    edges = np.roll(hull, -1, axis=0) - hull
    ang = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    c, s = np.cos(ang), np.sin(ang)
    u = np.stack([c, s], -1)
    v = np.stack([-s, c], -1)
    pu = hull @ u.T  # (h, k)
    pv = hull @ v.T
    area = (pu.max(0) - pu.min(0)) * (pv.max(0) - pv.min(0))
    k = int(np.argmin(area))
    half = 0.5 * np.array([pu[:, k].max() - pu[:, k].min(), pv[:, k].max() - pv[:, k].min()])
    mid = 0.5 * np.array([pu[:, k].max() + pu[:, k].min(), pv[:, k].max() + pv[:, k].min()])
    centre2 = mid[0] * u[k] + mid[1] * v[k]
    return float(area[k]), u[k], np.concatenate([centre2, half])


def oriented_box(points: np.ndarray, n_directions: int = N_DIRECTIONS) -> OrientedBox:
    """Minimal-volume box over Fibonacci x-axis candidates (DexVLG App. C.1).

    For each of `n_directions` lattice directions as the x-axis the tightest in-plane
    rotation comes from rotating calipers on the projected hull; the smallest box wins.
    The three axes of trimesh's own oriented box are added as candidates, so the result
    is never larger than trimesh's box.
    """
    pts = np.asarray(points, dtype=np.float64)
    try:
        hull_pts = trimesh.convex.convex_hull(pts).vertices
    except Exception:
        hull_pts = pts
    tm_tf, _ = trimesh.bounds.oriented_bounds(hull_pts)
    tm_axes = np.linalg.inv(tm_tf)[:3, :3]
    candidates = np.concatenate([fibonacci_directions(n_directions), tm_axes.T])
    best = None
    for x in candidates:
        x = x / np.linalg.norm(x)
        helper = np.array([1.0, 0.0, 0.0]) if abs(x[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        e1 = np.cross(x, helper)
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(x, e1)
        px = hull_pts @ x
        p2 = np.stack([hull_pts @ e1, hull_pts @ e2], -1)
        area, u2, rect = _min_area_rectangle(p2)
        length = px.max() - px.min()
        vol = area * length
        if best is None or vol < best[0]:
            y = u2[0] * e1 + u2[1] * e2
            z = np.cross(x, y)
            centre = 0.5 * (px.max() + px.min()) * x + rect[0] * e1 + rect[1] * e2
            half = np.array([0.5 * length, rect[2], rect[3]])
            best = (vol, np.stack([x, y, z], axis=1), centre, half)
    assert best is not None, "no direction gave a box"  # 256 directions, never empty
    _, axes, centre, half = best
    order = np.argsort(-half)  # longest axis first
    axes = axes[:, order]
    if np.linalg.det(axes) < 0:
        axes[:, 2] = -axes[:, 2]
    return OrientedBox(center=centre, axes=axes, half=half[order])


@dataclasses.dataclass(frozen=True)
class PartInfo:
    """Category and principal direction of one part (object frame)."""

    name: str
    box: OrientedBox
    category: str
    principal: np.ndarray  # (3,) unit


def classify_parts(
    names: list[str],
    boxes: list[OrientedBox],
    part_surfaces: list[np.ndarray],
    object_center: np.ndarray,
) -> list[PartInfo]:
    """DexVLG App. C.2 rules, tested in the order L-shaped, lid-like, disk-like, else
    shaft-like (see the comments for where we had to decide what the paper leaves open)."""
    out = []
    for i, (name, box) in enumerate(zip(names, boxes, strict=True)):
        others = [b for j, b in enumerate(boxes) if j != i]
        corners = box.corners()
        inside = [o.contains(corners) for o in others]  # per other box: (8,) bool
        signs = corner_signs()
        ends = [signs[:, 0] > 0, signs[:, 0] < 0]  # the two ends of the longest axis
        category: str | None = None
        principal: np.ndarray | None = None

        # L-shaped first: a handle attached at both ends has corners inside its body's box
        # too. Some but not most corner sections must be empty: a part with every corner
        # empty (sphere, ellipsoid, ring) is round, not L-shaped.
        empty = _empty_corners(box, part_surfaces[i])
        if 1 <= len(empty) <= 4:
            category = L_SHAPED
            d = signs[empty].mean(0)
            if len(empty) == 1:
                d[0] = 0.0  # middle of the corner's edge along the longest axis
            vec = box.axes @ (d * box.half)
            norm = np.linalg.norm(vec)
            principal = vec / norm if norm > 1e-12 else box.axes[:, 1].copy()

        # Lid-like: >= 4 corners inside one other box, but no end of the longest axis
        # fully inside a single box (that would be a shaft stuck into something).
        end_embedded = any(ins[end].all() for ins in inside for end in ends)
        for o, ins in zip(others, inside, strict=True):
            if category is None and ins.sum() >= 4 and not end_embedded:
                category = LID
                away = box.center - o.center
                k = int(np.argmax(np.abs(away @ box.axes)))
                principal = box.axes[:, k] * np.sign(away @ box.axes[:, k] or 1.0)
                break

        if (
            category is None
            and box.half[1] >= FLAT_RATIO * box.half[2]
            and not any(ins.any() for ins in inside)
        ):
            category = DISK
            principal = box.axes[:, 2].copy()
            if others:  # point into the nearest adjacent part
                nearest = min(others, key=lambda o: np.linalg.norm(o.center - box.center))
                if (nearest.center - box.center) @ principal < 0:
                    principal = -principal

        if category is None:
            category = SHAFT
            principal = box.axes[:, 0].copy()
            if (object_center - box.center) @ principal < 0:
                principal = -principal
        assert principal is not None  # every branch that sets a category sets it
        out.append(PartInfo(name=name, box=box, category=category, principal=principal))
    return out


def _empty_corners(box: OrientedBox, surface: np.ndarray) -> list[int]:
    """Corner sections (CORNER_FRACTION of each extent) holding no surface sample."""
    local = (surface - box.center) @ box.axes  # (n, 3)
    frac = local / np.maximum(box.half, 1e-12)  # in [-1, 1]
    limit = 1.0 - 2.0 * CORNER_FRACTION
    empty = []
    for k, s in enumerate(corner_signs()):
        in_corner = np.all(frac * s >= limit, axis=-1)
        if not in_corner.any():
            empty.append(k)
    return empty


def allowed_mask(category: str, principal: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Where grasp points may be sampled on a part (App. C.2): lid-like where the normal
    aligns with the principal direction, elsewhere where it is perpendicular to it."""
    dots = np.asarray(normals) @ np.asarray(principal)
    if category == LID:
        return dots > ALIGNED_COS
    return np.abs(dots) < PERPENDICULAR_SIN
