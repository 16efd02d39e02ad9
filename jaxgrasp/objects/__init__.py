"""Procedural object library: >= 12 household categories with named parts.

from jaxgrasp import objects
objects.categories()                        # ('bottle', 'bowl', ...)
parts = objects.make_parts("mug", seed=3)   # {"body": Trimesh, "handle": Trimesh}
obj = objects.make_object("mug", seed=3)    # a PreparedObject, parts named
objects.export_glb("mug", 3, "mug.glb")     # GLB whose named geometries are the parts
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import trimesh

from jaxgrasp.object_model import ObjectError, PreparedObject
from jaxgrasp.objects._library import CATEGORIES


def categories() -> tuple[str, ...]:
    """Names of the procedural categories."""
    return tuple(sorted(CATEGORIES))


def make_parts(category: str, seed: int = 0) -> dict[str, trimesh.Trimesh]:
    """Closed part meshes of one random instance (deterministic for a seed)."""
    if category not in CATEGORIES:
        raise ObjectError(
            f"unknown object category '{category}'; categories: {', '.join(categories())}"
        )
    return CATEGORIES[category](np.random.default_rng(seed))


def part_scene(parts: dict[str, trimesh.Trimesh]) -> trimesh.Scene:
    """A scene whose geometry (and node) names are the part names."""
    scene = trimesh.Scene()
    for name, mesh in parts.items():
        scene.add_geometry(mesh, geom_name=name, node_name=name)
    return scene


def make_object(category: str, seed: int = 0, **load_kwargs) -> PreparedObject:
    """A prepared object of `category` (see `jaxgrasp.load_object` for the options)."""
    from jaxgrasp.object_loading import load_object

    return load_object(part_scene(make_parts(category, seed)), name=category, **load_kwargs)


def export_glb(category: str, seed: int, path: str | Path) -> Path:
    """Write one instance as GLB with named parts (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = part_scene(make_parts(category, seed)).export(file_type="glb")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


__all__ = ["categories", "export_glb", "make_object", "make_parts", "part_scene"]
