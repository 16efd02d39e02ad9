"""Hand models loaded by MuJoCo's compiler and pure-JAX forward kinematics."""

from kinematics.fk import (
    LinkPoses,
    forward_kinematics,
    full_joint_angles,
    points_to_world,
    vectors_to_world,
)
from kinematics.geometry import (
    BOX,
    CAPSULE,
    FINGER_NAMES,
    SPHERE,
    CollisionPrimitives,
    CollisionSpheres,
    ContactCandidates,
    SurfacePoints,
    primitive_sdf,
)
from kinematics.hand_model import HandModel, HandModelError
from kinematics.hands import available_hands, hand_spec, load_hand, register_hand
from kinematics.spec import ContactSpec, HandSpec, PalmFrame

__all__ = [
    "BOX",
    "CAPSULE",
    "FINGER_NAMES",
    "SPHERE",
    "CollisionPrimitives",
    "CollisionSpheres",
    "ContactCandidates",
    "ContactSpec",
    "HandModel",
    "HandModelError",
    "HandSpec",
    "LinkPoses",
    "PalmFrame",
    "SurfacePoints",
    "available_hands",
    "forward_kinematics",
    "full_joint_angles",
    "hand_spec",
    "load_hand",
    "points_to_world",
    "primitive_sdf",
    "register_hand",
    "vectors_to_world",
]
