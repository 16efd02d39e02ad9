"""What the energies need from an object (duck-typed, so `energies` does not depend on
`jaxgrasp`): `jaxgrasp.PreparedObject` satisfies this protocol."""

from __future__ import annotations

from typing import Protocol

from jaxtyping import Array, Float, Int


class GraspTarget(Protocol):
    """An object in its own frame.

    Attributes:
        points: surface samples. Shape: (n_points, 3).
        normals: outward normals at the samples. Shape: (n_points, 3).
        point_part: part index of each sample. Shape: (n_points,).
        com: centre of mass. Shape: (3,).
        part_half: part box half extents (used for the torque length scale).
            Shape: (n_parts, 3).
        vertices: mesh vertices (for the length scale). Shape: (n_vertices, 3).
    """

    # Read-only (properties), so that frozen dataclasses such as PreparedObject match.
    @property
    def points(self) -> Float[Array, "n_points 3"]: ...
    @property
    def normals(self) -> Float[Array, "n_points 3"]: ...
    @property
    def point_part(self) -> Int[Array, " n_points"]: ...
    @property
    def com(self) -> Float[Array, 3]: ...
    @property
    def part_half(self) -> Float[Array, "n_parts 3"]: ...
    @property
    def vertices(self) -> Float[Array, "n_vertices 3"]: ...

    def sdf(self, points: Float[Array, "n 3"]) -> tuple[Float[Array, " n"], Float[Array, "n 3"]]:
        """Signed distance (positive outside) and gradient. Shape: (n,), (n, 3)."""
        ...

    def part_clearance(
        self, part: Int[Array, ""] | int, points: Float[Array, "n 3"]
    ) -> tuple[Float[Array, " n"], Float[Array, "n 3"]]:
        """Distance to the surface of every part but `part` (large, with a zero
        gradient, when `part` < 0 or there is no other part) and its gradient.
        Shape: (n,), (n, 3)."""
        ...
