"""Where the noisy grasp's hand lies against the cloud: inputs of the velocity network
of a model trained with `TrainConfig.hand_features`.

The raw samples fail on penetration by a few millimetres (README, "Grasp generator"):
from the pooled cloud feature alone the network places fingers by category, not by the
surface in front of them. These features hand it that surface directly: for each body
of the hand, how far its deepest surface sample lies from the cloud (the signed
distance to the tangent plane of the sample's nearest cloud point, as the guidance's
grid reads it, `_hand_depth.cloud_sdf`), for the hand of the current x_t. Near t = 1,
where x_t is nearly the grasp, they say which finger is how far inside or short of the
surface. They read only the cloud the network reads, so training (on the batch's full
or single-view clouds) and sampling compute them alike.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jaxgrasp._hand_depth import grasp_surface
from kinematics import HandModel
from kinematics.geometry import SurfacePoints

# Distances are given in cm and clipped to +-5 cm: a hand further from the cloud is
# not near a grasp, and beyond it the tangent plane of the nearest point says little.
FEATURE_UNIT = 0.01
FEATURE_CLIP = 5.0
# Surface samples per body (farthest-point subsets of the hand's own): the Shadow
# Hand's 512 cost ~15x the time of its 136 against a batch of clouds on this CPU
# (the (samples x points) arrays leave the cache), and every finger link keeps 8.
SAMPLES_PER_BODY = 8


class HandReader(NamedTuple):
    """What the features need beside the grasp: the hand, the normaliser's mean and
    std (shape (d,) each) that map normalised grasp vectors back to poses, and the
    surface samples read (`feature_samples`)."""

    hand: HandModel
    mean: Float[Array, " d"]
    std: Float[Array, " d"]
    samples: SurfacePoints

    @classmethod
    def of(cls, hand: HandModel, mean, std) -> HandReader:
        return cls(hand, jnp.asarray(mean), jnp.asarray(std), feature_samples(hand))


def n_hand_features(hand: HandModel) -> int:
    """How many features a hand gets: one per body (bodies without surface samples
    read 0)."""
    return hand.n_bodies


def feature_samples(hand: HandModel, per_body: int = SAMPLES_PER_BODY) -> SurfacePoints:
    """At most `per_body` of the hand's surface samples on each body, spread by
    farthest-point sampling (deterministic: from each body's first sample)."""
    points = np.asarray(hand.surface.points, np.float64)
    body = np.asarray(hand.surface.body)
    keep: list[int] = []
    for b in np.unique(body):
        mine = np.flatnonzero(body == b)
        chosen = [0]
        gap = np.linalg.norm(points[mine] - points[mine[0]], axis=1)
        while len(chosen) < min(per_body, len(mine)):
            chosen.append(int(np.argmax(gap)))
            gap = np.minimum(gap, np.linalg.norm(points[mine] - points[mine[chosen[-1]]], axis=1))
        keep.extend(mine[chosen])
    idx = np.sort(np.asarray(keep))
    return SurfacePoints(
        jnp.asarray(points[idx], jnp.float32),
        jnp.asarray(np.asarray(hand.surface.normals)[idx], jnp.float32),
        tuple(int(b) for b in body[idx]),
    )


def hand_features(
    reader: HandReader,
    z: Float[Array, " d"],
    origin: Float[Array, " 3"],
    points: Float[Array, "n 3"],
    normals: Float[Array, "n 3"],
) -> Float[Array, " n_bodies"]:
    """One grasp's features: per body, the least signed distance (cm, negative inside,
    clipped to +-`FEATURE_CLIP`) of its surface samples to the tangent planes of their
    nearest cloud points. `z`: a normalised grasp vector whose translation is relative
    to `origin` (the anchor point; zeros for a network that is not anchored). Finite for
    any z (`grasp_surface` orthonormalises any 6D rotation)."""
    z, origin = jax.lax.stop_gradient(z), jax.lax.stop_gradient(origin)
    surface = grasp_surface(reader.hand, reader.mean, reader.std, z, origin, reader.samples)
    # The nearest point by |p|^2 - 2 s.p (|s|^2 is the same for every point), and its
    # plane's distance picked by a mask: XLA's argmin on this CPU costs ~4x more.
    score = jnp.sum(points**2, axis=-1)[None, :] - 2.0 * surface @ points.T
    nearest = score <= jnp.min(score, axis=1, keepdims=True)
    plane = surface @ normals.T - jnp.sum(points * normals, axis=-1)[None, :]
    signed = jnp.max(jnp.where(nearest, plane, -jnp.inf), axis=1) / FEATURE_UNIT
    # A hand at overflowing coordinates (inf - inf) reads as far outside, not NaN.
    signed = jnp.clip(
        jnp.where(jnp.isnan(signed), FEATURE_CLIP, signed), -FEATURE_CLIP, FEATURE_CLIP
    )
    body = jnp.asarray(reader.samples.body)
    least = jax.ops.segment_min(signed, body, num_segments=reader.hand.n_bodies)
    has_samples = jax.ops.segment_sum(jnp.ones_like(signed), body, reader.hand.n_bodies) > 0
    return jnp.where(has_samples, least, 0.0)


def batch_hand_features(
    reader: HandReader,
    z: Float[Array, "b d"],
    origin: Float[Array, "b 3"],
    points: Float[Array, "b n 3"],
    normals: Float[Array, "b n 3"],
) -> Float[Array, "b n_bodies"]:
    """`hand_features` of a batch, one cloud per grasp."""
    return jax.vmap(hand_features, (None, 0, 0, 0, 0))(reader, z, origin, points, normals)
