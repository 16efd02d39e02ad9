"""The model's grasp vector and its normalisation (DESIGN.md §3, §10).

A grasp is `[T (3), R as 6D (first two columns of the rotation matrix, 6), q (n_q)]`:
the 6D rotation is continuous (Zhou et al. 2019), unlike quaternions, so a regressor or a
flow can move through it smoothly; `from_vector` maps any 6D back to a rotation by
Gram-Schmidt, so every sample is a valid pose.

An anchored model (`ModelConfig.anchored`) gives T relative to an anchor: the point of the
object cloud nearest the palm (`palm_points`, `anchored_vectors`).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
from jaxtyping import Float

from kinematics import HandModel
from kinematics._rotations import quat_to_mat
from sim.grasps import mat_to_quat, rotate

ROT_DIM = 6


def to_vector(
    root_pos: Float[np.ndarray, "n 3"],
    root_quat: Float[np.ndarray, "n 4"],
    q: Float[np.ndarray, "n n_q"],
) -> Float[np.ndarray, "n d"]:
    """Grasp vectors from root position, root quaternion (wxyz) and joints.
    Shape: (n, 3 + 6 + n_q)."""
    rot = np.asarray(quat_to_mat(jnp.asarray(root_quat, jnp.float32)), dtype=np.float64)
    six = np.concatenate([rot[..., :, 0], rot[..., :, 1]], axis=-1)
    return np.concatenate([np.asarray(root_pos), six, np.asarray(q)], axis=-1).astype(np.float32)


def from_vector(
    x: Float[np.ndarray, "n d"],
) -> tuple[Float[np.ndarray, "n 3"], Float[np.ndarray, "n 4"], Float[np.ndarray, "n n_q"]]:
    """(root_pos (n, 3), root_quat wxyz (n, 4), q (n, n_q)) from grasp vectors."""
    x = np.asarray(x, dtype=np.float64)
    a, b = x[:, 3:6], x[:, 6:9]
    e1 = _unit(a, np.array([1.0, 0.0, 0.0]))
    b = b - np.sum(e1 * b, axis=1, keepdims=True) * e1
    # A degenerate second column (parallel to the first) gets any perpendicular.
    fallback = np.cross(e1, np.where(np.abs(e1[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]]))
    e2 = _unit(np.where(np.linalg.norm(b, axis=1, keepdims=True) > 1e-9, b, fallback), None)
    e3 = np.cross(e1, e2)
    rot = np.stack([e1, e2, e3], axis=-1)
    return x[:, :3], mat_to_quat(rot), x[:, 9:]


def palm_points(
    hand: HandModel, root_pos: Float[np.ndarray, "n 3"], root_quat: Float[np.ndarray, "n 4"]
) -> Float[np.ndarray, "n 3"]:
    """Where each grasp's palm origin (`HandSpec.palm.origin`, a point on the palm's
    front face) lies, for unit root quaternions (wxyz). Shape: (n, 3)."""
    if hand.spec is None:
        raise ValueError(f"hand '{hand.name}' has no palm frame in its HandSpec")
    return np.asarray(root_pos, dtype=np.float64) + rotate(root_quat, hand.spec.palm.origin)


def nearest_anchors(
    points: Float[np.ndarray, "b n 3"], palms: Float[np.ndarray, "b 3"], sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each palm's nearest cloud point and a soft target around it (one cloud per
    palm, or one cloud of shape (1, n, 3) for all).

    Returns (index of the nearest point, shape (b,); log-probabilities over the cloud,
    proportional to exp(-d^2 / (2 sigma^2)), shape (b, n))."""
    d2 = np.sum((np.asarray(points) - np.asarray(palms)[:, None, :]) ** 2, axis=-1)
    logits = -d2 / (2.0 * sigma**2)
    # Relative to the nearest point: finite however far the palm is from the cloud.
    logits -= logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return d2.argmin(axis=1), logp.astype(np.float32)


def anchored_vectors(
    vectors: Float[np.ndarray, "b d"],
    points: Float[np.ndarray, "b n 3"],
    palms: Float[np.ndarray, "b 3"],
    sigma: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grasp vectors with T relative to each palm's nearest cloud point (clouds as for
    `nearest_anchors`). Returns (vectors, shape (b, d); the points' indices, shape (b,);
    the soft targets, shape (b, n))."""
    index, logp = nearest_anchors(points, palms, sigma)
    clouds = np.broadcast_to(points, (len(index), *np.shape(points)[1:]))
    rel = np.array(vectors, dtype=np.float32)
    rel[:, :3] -= clouds[np.arange(len(index)), index]
    return rel, index, logp


def yaw_rotations(yaw: Float[np.ndarray, " n"]) -> Float[np.ndarray, "n 3 3"]:
    """Rotations by `yaw` (radians) about the object frame's z axis, its up axis.
    Shape: (n, 3, 3)."""
    c, s = np.cos(yaw), np.sin(yaw)
    zero, one = np.zeros_like(c), np.ones_like(c)
    return np.stack(
        [np.stack([c, -s, zero], -1), np.stack([s, c, zero], -1), np.stack([zero, zero, one], -1)],
        axis=-2,
    )


def rotated_vectors(
    vectors: Float[np.ndarray, "n d"], rotations: Float[np.ndarray, "n 3 3"]
) -> Float[np.ndarray, "n d"]:
    """The grasp vectors of hands turned with their object by `rotations` about the
    object frame's origin: T and both columns of the 6D rotation turn, the joints stay
    (T relative to an anchor turns the same way, the anchor turning with the cloud).
    Shape: (n, d)."""
    out = np.array(vectors, dtype=np.float32)
    for start in (0, 3, 6):  # T, then the rotation's first and second columns
        out[:, start : start + 3] = np.einsum(
            "nij,nj->ni", rotations, np.asarray(vectors)[:, start : start + 3]
        )
    return out


def _unit(v: np.ndarray, default: np.ndarray | None) -> np.ndarray:
    n = np.linalg.norm(v, axis=1, keepdims=True)
    if default is not None:
        v = np.where(n > 1e-9, v, default)
        n = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(n, 1e-12)


@dataclasses.dataclass(frozen=True)
class Normalizer:
    """Per-dimension affine map of grasp vectors to roughly unit scale, from data.

    Fields:
        mean: Shape: (d,). std: Shape: (d,), floored so constant dimensions stay finite.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: Float[np.ndarray, "n d"], floor: float = 1e-2) -> Normalizer:
        x = np.asarray(x, dtype=np.float64)
        return cls(x.mean(0).astype(np.float32), np.maximum(x.std(0), floor).astype(np.float32))

    def normalize(self, x):
        return (x - self.mean) / self.std

    def denormalize(self, z):
        return z * self.std + self.mean

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> Normalizer:
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32))
