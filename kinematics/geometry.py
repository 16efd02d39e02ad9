"""Per-link geometry of a hand: collision primitives, surface samples, contact candidates.

All three are pytrees whose array leaves live in the frame of the body they are attached
to; `kinematics.fk.points_to_world` moves them with the forward-kinematics poses. Body
indices are static (tuples), so gathers compile to constants.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import trimesh
from jaxtyping import Array, Float

from kinematics._pytree import static_field

# Primitive kinds. Every collision geom of a hand is represented by one of these; MuJoCo
# cylinders, ellipsoids and meshes are approximated (see `_approximate_geom`).
SPHERE = 0
CAPSULE = 1
BOX = 2
PRIMITIVE_KIND_NAMES = {SPHERE: "sphere", CAPSULE: "capsule", BOX: "box"}

FINGER_NAMES = ("thumb", "index", "middle", "ring", "little", "palm")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class CollisionPrimitives:
    """Analytic collision shapes of the hand, one row per primitive, in body frames.

    Fields:
        pos: primitive centre in its body frame. Shape: (n_prims, 3).
        rot: primitive axes in its body frame (columns). Shape: (n_prims, 3, 3).
        size: sphere (r, 0, 0); capsule (r, half_length, 0) along local z; box half
            extents (hx, hy, hz). Shape: (n_prims, 3).
        body: index of the body each primitive rides on (static).
        kind: SPHERE / CAPSULE / BOX per primitive (static).
        names: MuJoCo geom names (static).
    """

    pos: Float[Array, "n_prims 3"]
    rot: Float[Array, "n_prims 3 3"]
    size: Float[Array, "n_prims 3"]
    body: tuple[int, ...] = static_field()
    kind: tuple[int, ...] = static_field()
    names: tuple[str, ...] = static_field()

    @property
    def count(self) -> int:
        return len(self.body)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class CollisionSpheres:
    """Spheres filling the collision primitives, for self-penetration.

    Fields:
        centers: sphere centres in their body frame. Shape: (n_spheres, 3).
        radii: sphere radii. Shape: (n_spheres,).
        body: body index of each sphere (static).
        pair_i / pair_j: sphere index pairs that may collide: different, non-adjacent
            links that do not already touch in the reference pose (static).
    """

    centers: Float[Array, "n_spheres 3"]
    radii: Float[Array, " n_spheres"]
    body: tuple[int, ...] = static_field()
    pair_i: tuple[int, ...] = static_field()
    pair_j: tuple[int, ...] = static_field()


def primitive_spheres(kind: int, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spheres inside a primitive (own frame): centres (k, 3) and radii (k,)."""
    size = np.asarray(size, dtype=np.float64)
    if kind == SPHERE:
        return np.zeros((1, 3)), size[:1].copy()
    if kind == CAPSULE:
        r, h = size[0], size[1]
        k = max(2, int(np.ceil(2 * h / r)) + 1)
        z = np.linspace(-h, h, k)
        return np.stack([0 * z, 0 * z, z], -1), np.full(k, r)
    if kind == BOX:
        r = float(size.min())
        axes = [np.linspace(-(s - r), s - r, max(1, int(np.ceil(s / r)))) for s in size]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        return grid, np.full(len(grid), r)
    raise ValueError(f"unknown primitive kind {kind}")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SurfacePoints:
    """Points spread evenly over the hand's collision surface, with outward normals.

    Fields:
        points: sample positions in their body frame. Shape: (n_points, 3).
        normals: unit outward normals in their body frame. Shape: (n_points, 3).
        body: body index of each point (static).
    """

    points: Float[Array, "n_points 3"]
    normals: Float[Array, "n_points 3"]
    body: tuple[int, ...] = static_field()

    @property
    def count(self) -> int:
        return len(self.body)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ContactCandidates:
    """Labelled points on the hand that the energies pull onto the object.

    Fields:
        points: candidate positions in their body frame. Shape: (n_contacts, 3).
        normals: outward normals of the link's front (grasping) face. Shape: (n_contacts, 3).
        body: body index of each candidate (static).
        finger: finger of each candidate: thumb, index, middle, ring, little or palm (static).
    """

    points: Float[Array, "n_contacts 3"]
    normals: Float[Array, "n_contacts 3"]
    body: tuple[int, ...] = static_field()
    finger: tuple[str, ...] = static_field()

    FINGERS: ClassVar[tuple[str, ...]] = FINGER_NAMES

    @property
    def count(self) -> int:
        return len(self.body)

    def select(self, fingers: tuple[str, ...] | list[str]) -> ContactCandidates:
        """Candidates of the given fingers only, in their original order."""
        unknown = sorted(set(fingers) - set(self.finger))
        if unknown:
            raise ValueError(
                f"unknown finger(s) {unknown}; this hand has contact candidates on "
                f"{sorted(set(self.finger))}"
            )
        keep = [i for i, f in enumerate(self.finger) if f in set(fingers)]
        idx = np.asarray(keep, dtype=np.int64)
        return ContactCandidates(
            points=np.asarray(self.points)[idx],
            normals=np.asarray(self.normals)[idx],
            body=tuple(self.body[i] for i in keep),
            finger=tuple(self.finger[i] for i in keep),
        )


def primitive_sdf(kind: int, size: Float[Array, "k 3"], x, y, z, xp=jnp) -> Float[Array, "k n"]:
    """Signed distance of points in the frames of k primitives of one kind.

    Coordinates come as separate (k, n) arrays (structure of arrays: the long point axis
    is the minor one, which vectorises on CPU). Values and gradients are finite at the
    centre / axis / surface (a 1e-12 floor under every square root). `xp` is the array
    module: `jax.numpy` (default, traceable) or `numpy` (host code, no dispatch or
    compilation per call). Shape: (k, n).
    """
    if kind == SPHERE:
        return xp.sqrt(x * x + y * y + z * z + 1e-12) - size[:, 0:1]
    if kind == CAPSULE:
        h = size[:, 1:2]
        dz = z - xp.clip(z, -h, h)
        return xp.sqrt(x * x + y * y + dz * dz + 1e-12) - size[:, 0:1]
    if kind == BOX:
        qx = xp.abs(x) - size[:, 0:1]
        qy = xp.abs(y) - size[:, 1:2]
        qz = xp.abs(z) - size[:, 2:3]
        ox, oy, oz = xp.maximum(qx, 0.0), xp.maximum(qy, 0.0), xp.maximum(qz, 0.0)
        outside = xp.sqrt(ox * ox + oy * oy + oz * oz + 1e-12) - 1e-6
        return outside + xp.minimum(xp.maximum(qx, xp.maximum(qy, qz)), 0.0)
    raise ValueError(f"unknown primitive kind {kind}")


def primitive_sdf_np(kind: int, size: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Signed distance of points `p` (n, 3) in one primitive's frame, in float64 NumPy
    (hand building and the exact checks run it on the host). Shape: (n,)."""
    p = np.asarray(p, dtype=np.float64)
    x, y, z = p[None, :, 0], p[None, :, 1], p[None, :, 2]
    size = np.asarray(size, dtype=np.float64)[None]
    return np.asarray(primitive_sdf(int(kind), size, x, y, z, xp=np)[0])


def primitive_mesh(kind: int, size: np.ndarray) -> trimesh.Trimesh:
    """Triangle mesh of an analytic primitive in its own frame (for sampling and pictures)."""
    if kind == SPHERE:
        return trimesh.creation.icosphere(3, float(size[0]))
    if kind == CAPSULE:
        return trimesh.creation.capsule(
            height=2 * float(size[1]), radius=float(size[0]), count=[24, 24]
        )
    if kind == BOX:
        return trimesh.creation.box(extents=2 * np.asarray(size, dtype=np.float64))
    raise ValueError(f"unknown primitive kind {kind}")


def farthest_point_sampling(points: np.ndarray, k: int) -> np.ndarray:
    """Indices of k evenly spread points (deterministic farthest-point sampling, starting
    at the point nearest the centroid). Shape: (min(k, n),)."""
    points = np.asarray(points, dtype=np.float64)
    k = min(k, len(points))
    x, y, z = points.T.copy()

    def sq_dist(p):  # squared distances to one point, three contiguous passes (fast)
        return (x - p[0]) ** 2 + (y - p[1]) ** 2 + (z - p[2]) ** 2

    start = int(np.argmin(sq_dist(points.mean(0))))
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = start
    dist = sq_dist(points[start])
    for i in range(1, k):
        nxt = int(np.argmax(dist))
        chosen[i] = nxt
        np.minimum(dist, sq_dist(points[nxt]), out=dist)
    return chosen
