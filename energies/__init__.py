"""Grasp energies: pure functions of one hand's pose and an object, returning scalars.

Batch with `jax.vmap` at the call site. The object is anything satisfying
`energies.target.GraspTarget` (e.g. `jaxgrasp.PreparedObject`).
"""

from energies.force_closure import (
    contact_wrenches,
    dfc_energy,
    lp_contact_forces,
    lp_dfc_energy,
)
from energies.hand_state import HandState, hand_state
from energies.metrics import cone_wrenches, net_wrench_residual, q1_metric
from energies.object_samples import ObjectSamples, object_samples, target_part_gap
from energies.target import GraspTarget
from energies.terms import (
    direction_energy,
    distance_energy,
    hand_in_object_energy,
    inward_normals,
    ipc_barrier,
    joint_limit_energy,
    object_in_hand_energy,
    part_barrier_energy,
    self_penetration_energy,
    table_energy,
)
from energies.total import (
    TERMS,
    EnergyParams,
    EnergyWeights,
    balanced_pieces,
    batched_energy_and_grad,
    contact_lp_forces,
    length_scale,
    target_samples,
    total_energy,
)

__all__ = [
    "TERMS",
    "EnergyParams",
    "EnergyWeights",
    "balanced_pieces",
    "GraspTarget",
    "HandState",
    "ObjectSamples",
    "batched_energy_and_grad",
    "cone_wrenches",
    "contact_lp_forces",
    "contact_wrenches",
    "dfc_energy",
    "direction_energy",
    "distance_energy",
    "hand_in_object_energy",
    "hand_state",
    "inward_normals",
    "ipc_barrier",
    "joint_limit_energy",
    "length_scale",
    "lp_contact_forces",
    "lp_dfc_energy",
    "net_wrench_residual",
    "object_samples",
    "object_in_hand_energy",
    "part_barrier_energy",
    "q1_metric",
    "self_penetration_energy",
    "table_energy",
    "target_part_gap",
    "target_samples",
    "total_energy",
]
