"""Every physics and acceptance parameter of validation, in one object (DESIGN.md §8)."""

from __future__ import annotations

import dataclasses

from energies._checks import (
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    check_fields,
    one_of,
)


@dataclasses.dataclass(frozen=True)
class SimConfig:
    """Scene physics, the disturbance protocol and the acceptance thresholds.

    Physics (DexGraspBench / DexVLG §4.4): gravity off, friction 0.6 with torsional 0.02,
    condim 4, elliptic cones, object mass 0.1 kg, finger joints position-controlled.
    `impratio` 10 (MuJoCo's default is 1) makes the friction constraints ten times
    stiffer than the normal ones: with soft friction a firmly held object creeps through
    the fingers during a static hold (a solver artefact, not physics: static friction
    holds), and the creep alone rotated many held objects past 15 degrees in 2 s. It is
    the setting MuJoCo recommends for grasping with elliptic cones (e.g. the Menagerie
    grippers use it).
    Protocol: the hand starts at the pregrasp joints, its targets ramp to the grasp joints
    (`close_s`), then to the squeeze joints (`squeeze_s`); then, separately for each of
    +-x, +-y, +-z, a force `force_scale * mass * dir` (N) pushes the object's centre of
    mass for `hold_s`. A grasp survives a direction if the object's centre of mass moved
    < `max_translation` (m) and it turned < `max_rotation_deg` from where it started.

    Attributes:
        timestep: simulation time step (s).
        integrator: euler, implicit, implicitfast or rk4.
        friction: sliding friction coefficient of every contact.
        torsional_friction: torsional friction (m).
        rolling_friction: rolling friction (m).
        condim: contact dimensionality (1, 3, 4 or 6).
        cone: friction cone, elliptic or pyramidal.
        impratio: friction-to-normal constraint stiffness ratio (see above).
        object_mass: object mass (kg), spread uniformly over its volume.
        kp: position gain of the finger servos (N m / rad).
        kv: damping of the finger servos (N m s / rad).
        close_s: ramp of the joint targets from pregrasp to grasp (s).
        squeeze_s: ramp of the joint targets from grasp to squeeze (s).
        hold_s: how long each push lasts (s).
        force_scale: the push is force_scale * object_mass (N) along each direction.
        max_translation: largest allowed object displacement (m).
        max_rotation_deg: largest allowed object rotation (degrees).
        max_penetration: largest hand-object penetration, exact meshes (m).
        max_self_penetration: largest penetration between hand links (m).
        contact_distance: a finger within this distance of the object is in contact (m).
        part_alignment_distance: hand links within this distance of the object must be
            nearest the target part (m).
        min_contacts: fingers (palm included) in contact a valid grasp needs.
        coacd_threshold: CoACD concavity threshold of the object's convex pieces.
        coacd_max_hulls: most convex pieces per part.
        mjx_dtype: float type of the MJX backend (MuJoCo C is always float64).
    """

    timestep: float = 0.005
    integrator: str = "implicitfast"
    friction: float = 0.6
    torsional_friction: float = 0.02
    rolling_friction: float = 0.0
    condim: int = 4
    cone: str = "elliptic"
    impratio: float = 10.0
    object_mass: float = 0.1
    kp: float = 5.0  # position gain (N m / rad)
    kv: float = 0.1  # damping of the position servo (N m s / rad)
    close_s: float = 0.1
    squeeze_s: float = 0.1
    hold_s: float = 2.0
    force_scale: float = 10.0
    max_translation: float = 0.05
    max_rotation_deg: float = 15.0
    # Exact checks (metres).
    max_penetration: float = 0.003
    max_self_penetration: float = 0.003
    contact_distance: float = 0.003  # a finger is "in contact" within this distance
    part_alignment_distance: float = 0.002
    min_contacts: int = 2
    # Convex decomposition of the object (CoACD), per part.
    coacd_threshold: float = 0.05
    coacd_max_hulls: int = 16
    # Float type of the MJX backend (MuJoCo C is always float64). In float64 MJX and
    # MuJoCo C decided 63 of 64 optimized grasps alike, in float32 58 (grasps near a
    # threshold; benchmarks/validate.py). "float32" suits GPUs with slow float64.
    mjx_dtype: str = "float64"

    def __post_init__(self):
        check_fields(
            self,
            {
                "timestep": POSITIVE,
                "integrator": one_of("euler", "implicit", "implicitfast", "rk4"),
                "friction": POSITIVE,
                "torsional_friction": NON_NEGATIVE,
                "rolling_friction": NON_NEGATIVE,
                "condim": one_of(1, 3, 4, 6),
                "cone": one_of("elliptic", "pyramidal"),
                "impratio": POSITIVE,
                "object_mass": POSITIVE,
                "kp": POSITIVE,
                "kv": NON_NEGATIVE,
                "close_s": POSITIVE,
                "squeeze_s": POSITIVE,
                "hold_s": POSITIVE,
                "force_scale": NON_NEGATIVE,
                "max_translation": POSITIVE,
                "max_rotation_deg": POSITIVE,
                "max_penetration": POSITIVE,
                "max_self_penetration": POSITIVE,
                "contact_distance": NON_NEGATIVE,
                "part_alignment_distance": NON_NEGATIVE,
                "min_contacts": NON_NEGATIVE_INT,
                "coacd_threshold": POSITIVE,
                "coacd_max_hulls": POSITIVE_INT,
                "mjx_dtype": one_of("float32", "float64"),
            },
        )

    @property
    def close_steps(self) -> int:
        return max(1, round(self.close_s / self.timestep))

    @property
    def squeeze_steps(self) -> int:
        return max(1, round(self.squeeze_s / self.timestep))

    @property
    def hold_steps(self) -> int:
        return max(1, round(self.hold_s / self.timestep))

    def describe(self) -> dict:
        return dataclasses.asdict(self)
