"""`PreparedObject`: everything the energies need about an object, built once.

An immutable pytree (arrays as leaves, names as static metadata) in the object frame,
metres, scale already applied. Build it with `jaxgrasp.load_object`.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from jaxgrasp.sdf import SDFGrid, part_clearance_query, sdf_query
from kinematics._pytree import static_field

# How the CLI, `load_object` and saved grasp sets name an instance of the built-in
# library: `procedural:CATEGORY:SEED`.
PROCEDURAL_PREFIX = "procedural:"


class ObjectError(ValueError):
    """An object mesh, part specification or scale that cannot be used."""


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PreparedObject:
    """A grasp target: SDF grid, surface samples with part labels, part boxes.

    Array fields:
        grid: signed-distance grid (see `jaxgrasp.sdf.SDFGrid`).
        clearance: on the same lattice, per part, the unsigned distance to the surface
            of every other part (`jaxgrasp.sdf.build_clearance_grid`; the part barrier).
            Shape: values (n_parts, nx, ny, nz).
        points: surface samples. Shape: (n_points, 3).
        normals: outward unit normals at the samples. Shape: (n_points, 3).
        point_part: part index of each sample. Shape: (n_points,).
        allowed: whether a sample lies in its part's grasp-point region (App. C.2).
            Shape: (n_points,).
        part_center: oriented part box centres. Shape: (n_parts, 3).
        part_axes: box axes as columns, longest first. Shape: (n_parts, 3, 3).
        part_half: box half extents, longest first. Shape: (n_parts, 3).
        part_principal: principal direction per part (App. C.2). Shape: (n_parts, 3).
        com: centre of mass (uniform density). Shape: (3,).
        vertices / faces / face_part: the (repaired, scaled) triangle mesh and the part
            index of every face. Shapes: (n_vertices, 3), (n_faces, 3), (n_faces,).
    Static fields: name, part_names, part_categories, watertight, scale, source.
    """

    grid: SDFGrid
    clearance: SDFGrid
    points: Float[Array, "n_points 3"]
    normals: Float[Array, "n_points 3"]
    point_part: Int[Array, " n_points"]
    allowed: Bool[Array, " n_points"]
    part_center: Float[Array, "n_parts 3"]
    part_axes: Float[Array, "n_parts 3 3"]
    part_half: Float[Array, "n_parts 3"]
    part_principal: Float[Array, "n_parts 3"]
    com: Float[Array, 3]
    vertices: Float[Array, "n_vertices 3"]
    faces: Int[Array, "n_faces 3"]
    face_part: Int[Array, " n_faces"]

    name: str = static_field()
    part_names: tuple[str, ...] = static_field()
    part_categories: tuple[str, ...] = static_field()
    watertight: bool = static_field()
    scale: float = static_field()
    source: str = static_field()

    @property
    def n_parts(self) -> int:
        return len(self.part_names)

    @property
    def n_points(self) -> int:
        return int(np.shape(self.points)[0])

    @property
    def diagonal(self) -> float:
        v = np.asarray(self.vertices)
        return float(np.linalg.norm(v.max(0) - v.min(0)))

    def sdf(self, points: Float[Array, "n 3"]) -> tuple[Float[Array, " n"], Float[Array, "n 3"]]:
        """Signed distance (positive outside) and its gradient at object-frame points.

        Shape: points (n, 3) -> distance (n,), gradient (n, 3). Finite everywhere.
        """
        return sdf_query(self.grid, points)

    def part_clearance(
        self, part: Int[Array, ""] | int, points: Float[Array, "n 3"]
    ) -> tuple[Float[Array, " n"], Float[Array, "n 3"]]:
        """Distance from object-frame points to the surface of the parts other than
        `part` (may be traced), and its gradient; `NO_OTHER_PART` (zero gradient) for
        a whole-object target (`part` < 0). Shape: (n,), (n, 3)."""
        return part_clearance_query(self.clearance, part, points)

    def part_index(self, name: str) -> int:
        """Index of a named part; a clear error listing the parts otherwise."""
        if name not in self.part_names:
            raise ObjectError(
                f"unknown part '{name}' of object '{self.name}'; its parts are: "
                f"{', '.join(self.part_names)}"
            )
        return self.part_names.index(name)

    def part_category(self, name: str) -> str:
        return self.part_categories[self.part_index(name)]

    def trimesh(self, part: str | None = None):
        """The object's (or one part's) triangle mesh as a `trimesh.Trimesh`."""
        import trimesh

        faces = np.asarray(self.faces)
        if part is not None:
            faces = faces[np.asarray(self.face_part) == self.part_index(part)]
        mesh = trimesh.Trimesh(np.asarray(self.vertices), faces, process=False)
        if part is not None:
            mesh.remove_unreferenced_vertices()
        return mesh

    def describe(self) -> dict:
        """JSON-ready summary: parts with categories, boxes and principal directions."""
        return {
            "name": self.name,
            "source": self.source,
            "scale": self.scale,
            "watertight": self.watertight,
            "diagonal_m": self.diagonal,
            "n_points": self.n_points,
            "grid_shape": list(self.grid.shape),
            "grid_spacing_m": float(self.grid.spacing),
            "parts": [
                {
                    "name": n,
                    "category": c,
                    "box_center": np.asarray(self.part_center[i]).tolist(),
                    "box_half_extents": np.asarray(self.part_half[i]).tolist(),
                    "principal_direction": np.asarray(self.part_principal[i]).tolist(),
                    "n_points": int((np.asarray(self.point_part) == i).sum()),
                }
                for i, (n, c) in enumerate(zip(self.part_names, self.part_categories, strict=True))
            ],
        }
