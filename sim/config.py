"""Every physics and acceptance parameter of validation, in one object (DESIGN.md §8)."""

from __future__ import annotations

import dataclasses


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
        checks = {
            "timestep": self.timestep > 0,
            "friction": self.friction > 0,
            "condim": self.condim in (1, 3, 4, 6),
            "cone": self.cone in ("elliptic", "pyramidal"),
            "integrator": self.integrator in ("euler", "implicit", "implicitfast", "rk4"),
            "object_mass": self.object_mass > 0,
            "kp": self.kp > 0,
            "hold_s": self.hold_s > 0,
            "mjx_dtype": self.mjx_dtype in ("float32", "float64"),
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid SimConfig field(s): {', '.join(bad)}")

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
