"""Procedural object library: >= 12 household categories with named parts.

from jaxgrasp import objects
objects.categories()                        # ('bottle', 'bowl', ...)
parts = objects.make_parts("mug", seed=3)   # {"body": Trimesh, "handle": Trimesh}
obj = objects.make_object("mug", seed=3)    # a PreparedObject, parts named
objects.export_glb("mug", 3, "mug.glb")     # GLB whose named geometries are the parts
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import trimesh

from jaxgrasp.object_model import PROCEDURAL_PREFIX, ObjectError, PreparedObject
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


def make_object(
    category: str, seed: int = 0, *, sample_seed: int = 0, **load_kwargs
) -> PreparedObject:
    """A prepared object of `category`, instance `seed` (see `jaxgrasp.load_object` for
    the options; `sample_seed` is its `seed`, of the surface sampling)."""
    from jaxgrasp.object_loading import load_object

    obj = load_object(
        part_scene(make_parts(category, seed)), name=category, seed=sample_seed, **load_kwargs
    )
    return dataclasses.replace(obj, source=f"{PROCEDURAL_PREFIX}{category}:{seed}")


def object_from_reference(reference: str | Path, scale: float = 1.0, **load_kwargs):
    """The object a reference names: `procedural:CATEGORY:SEED` (what `make_object`
    records as `source`) or a mesh file path (loaded with `scale`). This is how saved
    grasp sets point at their object."""
    ref = str(reference)
    if ref.startswith(PROCEDURAL_PREFIX):
        try:
            category, seed = ref[len(PROCEDURAL_PREFIX) :].rsplit(":", 1)
            seed_value = int(seed)
        except ValueError:
            raise ObjectError(
                f"bad procedural object reference '{ref}'; expected procedural:CATEGORY:SEED"
            ) from None
        if scale != 1.0:
            raise ObjectError(f"procedural object '{ref}' cannot be rescaled (scale {scale})")
        if "seed" in load_kwargs:  # load_object's seed (of the sampling), not the instance
            load_kwargs["sample_seed"] = load_kwargs.pop("seed")
        return make_object(category, seed_value, **load_kwargs)
    from jaxgrasp.object_loading import load_object

    return load_object(ref, scale, **load_kwargs)


def export_glb(category: str, seed: int, path: str | Path) -> Path:
    """Write one instance as GLB with named parts (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = part_scene(make_parts(category, seed)).export(file_type="glb")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


__all__ = [
    "categories",
    "export_glb",
    "make_object",
    "make_parts",
    "object_from_reference",
    "part_scene",
]
