"""Convex decomposition of an object (CoACD), cached on disk.

CoACD (collision-aware approximate convex decomposition, Wei et al. 2022) keeps concave
features such as a mug handle's opening, which a single convex hull would fill. It runs
on the whole repaired, watertight object mesh (its parts are open where they meet, and
CoACD needs closed input). Results are cached under $JAXGRASP_CACHE (default
~/.cache/jaxgrasp) keyed by the geometry and the parameters: a decomposition costs up to
several seconds.
"""

from __future__ import annotations

import hashlib

import numpy as np
import trimesh

from jaxgrasp._io import write_npz_atomic
from jaxgrasp.cache import cache_dir

Hull = tuple[np.ndarray, np.ndarray]  # (vertices (v, 3), faces (f, 3))

# A watertight part whose volume is at least this fraction of its convex hull's is convex.
CONVEX_VOLUME_RATIO = 0.97


def decompose(mesh: trimesh.Trimesh, threshold: float, max_hulls: int) -> list[Hull]:
    """Convex pieces of a closed mesh: [(vertices, faces)], each a closed convex hull.

    A mesh that is already convex (watertight, volume >= 97 % of its hull's) is its own
    hull; CoACD is slow on, and over-splits, low-poly convex shapes.
    """
    hull = mesh.convex_hull
    if mesh.is_watertight and mesh.volume >= CONVEX_VOLUME_RATIO * hull.volume:
        return [(np.asarray(hull.vertices), np.asarray(hull.faces))]
    vertices = np.ascontiguousarray(mesh.vertices, dtype=np.float64)
    faces = np.ascontiguousarray(mesh.faces, dtype=np.int64)
    key = hashlib.sha256(
        vertices.round(9).tobytes() + faces.tobytes() + f"{threshold}:{max_hulls}".encode()
    ).hexdigest()[:24]
    path = cache_dir() / "coacd" / f"{key}.npz"
    if path.exists():
        with np.load(path) as z:
            return [(z[f"v{i}"], z[f"f{i}"]) for i in range(int(z["n"]))]
    hulls = _run_coacd(vertices, faces, threshold, max_hulls)
    arrays = {"n": np.array(len(hulls))}
    for i, (v, f) in enumerate(hulls):
        arrays[f"v{i}"], arrays[f"f{i}"] = v, f
    write_npz_atomic(path, arrays)  # a killed run never leaves a half-written cache entry
    return hulls


def _run_coacd(vertices, faces, threshold, max_hulls) -> list[Hull]:
    import coacd

    coacd.set_log_level("error")
    pieces = coacd.run_coacd(
        coacd.Mesh(vertices, faces),
        threshold=threshold,
        max_convex_hull=max_hulls,
        preprocess_mode="off",  # parts are watertight already (load_object repairs them)
        resolution=2000,
        mcts_iterations=100,
        decimate=True,
        max_ch_vertex=64,  # small hulls keep MuJoCo's and MJX's convex collisions cheap
        seed=0,
    )
    hulls = []
    for v, _ in pieces:
        hull = trimesh.convex.convex_hull(np.asarray(v, dtype=np.float64))
        if hull.volume > 1e-12:  # drop slivers MuJoCo would reject
            hulls.append((np.asarray(hull.vertices), np.asarray(hull.faces)))
    if not hulls:  # degenerate pieces only: fall back to the part's own hull
        hull = trimesh.convex.convex_hull(vertices)
        hulls.append((np.asarray(hull.vertices), np.asarray(hull.faces)))
    return hulls
