"""One hand's FK-derived geometry in the object frame, computed once per energy call."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Float

from kinematics import HandModel, LinkPoses, forward_kinematics, points_to_world, vectors_to_world
from kinematics.geometry import ContactCandidates


class HandState(NamedTuple):
    """Geometry of one hand pose, world (= object) frame.

    Fields:
        poses: body poses (see `kinematics.LinkPoses`).
        contact_points: contact candidate positions. Shape: (n_contacts, 3).
        contact_normals: outward front normals of the candidates. Shape: (n_contacts, 3).
        surface_points: hand surface samples. Shape: (n_surface, 3).
        q: independent joint values. Shape: (n_q,).
    """

    poses: LinkPoses
    contact_points: Float[Array, "n_contacts 3"]
    contact_normals: Float[Array, "n_contacts 3"]
    surface_points: Float[Array, "n_surface 3"]
    q: Float[Array, " n_q"]


def hand_state(
    hand: HandModel,
    root_pos: Float[Array, 3],
    root_quat: Float[Array, 4],
    q: Float[Array, " n_q"],
    contacts: ContactCandidates | None = None,
) -> HandState:
    """FK once, then move contact candidates (default: all of the hand's) and surface
    samples into the world."""
    contacts = hand.contacts if contacts is None else contacts
    poses = forward_kinematics(hand, root_pos, root_quat, q)
    return HandState(
        poses=poses,
        contact_points=points_to_world(poses, contacts.body, jnp.asarray(contacts.points)),
        contact_normals=vectors_to_world(poses, contacts.body, jnp.asarray(contacts.normals)),
        surface_points=points_to_world(poses, hand.surface.body, jnp.asarray(hand.surface.points)),
        q=jnp.asarray(q),
    )
