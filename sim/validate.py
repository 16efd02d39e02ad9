"""`validate`: which grasps are real (DESIGN.md §8, DexVLG §4.4).

A grasp is valid when it survives the six-direction disturbance test, penetrates the
object by less than `max_penetration`, itself by less than `max_self_penetration`, has
at least `min_contacts` fingers (palm included) touching the object, is part-aligned
(when a target part is given) and, with a table, stays above it (less than
`max_penetration` below its plane).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable

import numpy as np

from kinematics import HandModel
from sim.checks import GeometryChecks, caption, check_grasps
from sim.config import SimConfig
from sim.disturbance import (
    DIRECTION_NAMES,
    DisturbanceResult,
    closed_contacts,
    disturbance_test_mujoco,
)
from sim.grasps import GraspPoses
from sim.scene import Scene, build_scene

BACKENDS = ("mujoco", "mjx")
CRITERIA = ("disturbance", "penetration", "self_penetration", "contact", "part_alignment")
# With a table, one more criterion: the hand stays above it.
TABLE_CRITERION = "table"


@dataclasses.dataclass(frozen=True)
class ValidationReport:
    """Per-grasp flags and measurements, and their summary.

    Fields:
        valid: passes every criterion. Shape: (B,).
        flags: {criterion: passes} for `CRITERIA` (+ `TABLE_CRITERION` with a table).
            Shape: (B,) each.
        disturbance: the simulation outcome (`DisturbanceResult`).
        checks: the exact geometric measurements (`GeometryChecks`).
        fingers: finger names, in the order of `checks.in_contact`'s columns.
        closed_contact: fingers in contact (within `config.contact_distance`) in the
            simulation once the hand has closed (`sim.closed_contacts`;
            `checks.in_contact` is the stored grasp pose's). Shape: (B, n_fingers).
        captions: one caption per grasp (fingers in contact; for valid grasps these are
            the dataset captions).
        summary: aggregate numbers (see `summarize`).
        config: the physics / acceptance parameters used.
    """

    valid: np.ndarray
    flags: dict[str, np.ndarray]
    disturbance: DisturbanceResult
    checks: GeometryChecks
    fingers: tuple[str, ...]
    closed_contact: np.ndarray
    captions: list[str]
    summary: dict
    config: SimConfig

    def per_grasp(self) -> list[dict]:
        """One JSON-able record per grasp."""
        out = []
        for i in range(len(self.valid)):
            out.append(
                {
                    "valid": bool(self.valid[i]),
                    **{k: bool(v[i]) for k, v in self.flags.items()},
                    "translation_m": dict(
                        zip(DIRECTION_NAMES, self.disturbance.translation[i].tolist(), strict=True)
                    ),
                    "rotation_deg": dict(
                        zip(DIRECTION_NAMES, self.disturbance.rotation_deg[i].tolist(), strict=True)
                    ),
                    "penetration_mm": 1e3 * float(self.checks.penetration[i]),
                    "self_penetration_mm": 1e3 * float(self.checks.self_penetration[i]),
                    "fingers_in_contact": [
                        f for f, c in zip(self.fingers, self.checks.in_contact[i], strict=True) if c
                    ],
                    "fingers_in_contact_closed": [
                        f for f, c in zip(self.fingers, self.closed_contact[i], strict=True) if c
                    ],
                    "q1": float(self.checks.q1[i]),
                    "pta": bool(self.checks.pta[i]),
                    "pga": bool(self.checks.pga[i]),
                    "caption": self.captions[i],
                }
            )
        return out

    def to_json(self) -> dict:
        return {"summary": self.summary, "grasps": self.per_grasp()}


def validate(
    hand: HandModel,
    obj,
    grasps,
    part: str | None = None,
    backend: str = "mujoco",
    config: SimConfig | None = None,
    *,
    table_height: float | None = None,
    scene: Scene | None = None,
    nthread: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ValidationReport:
    """Validate grasps of `hand` on `obj` (a `jaxgrasp.PreparedObject`).

    Args:
        grasps: `sim.GraspPoses` or anything with `.poses()` (e.g. `jaxgrasp.GraspSet`).
        part: target part name (None: whole object, no part alignment / PTA / PGA).
        backend: "mujoco" (MuJoCo C on `nthread` cores) or "mjx" (worlds vmapped on an
            accelerator; slower than MuJoCo C on a 16-core host even with an H100,
            see `sim.mjx_backend`).
        config: physics and thresholds (default `SimConfig()`).
        table_height: add a table plane z = table_height (default: the grasps' own
            `table_height` when they carry one, e.g. a tabletop `GraspSet`).
        scene: a scene built before by `build_scene` for this hand/object (reused).
        nthread: threads of the MuJoCo C simulation and the exact checks (default: all
            cores).
        progress: called with (stage, grasps done, grasps total) as the two stages go
            on, stage "simulation" (after every 32 grasps on MuJoCo C, once at the end
            on MJX) then "checks" (every 32 grasps).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    poses = grasps.poses() if hasattr(grasps, "poses") else GraspPoses(*grasps)
    _check_poses(hand, poses)
    part_index = None if part is None else obj.part_index(part)
    if table_height is None:
        table_height = getattr(grasps, "table_height", None)
    if scene is not None and table_height is not None and scene.table_height != table_height:
        raise ValueError(
            f"the grasps need a table at z = {table_height:.4f} but the given scene has "
            f"{'none' if scene.table_height is None else scene.table_height}; build it with "
            "build_scene(..., table_height=...) or leave scene out"
        )
    config = config or (scene.config if scene is not None else SimConfig())
    scene = scene or build_scene(hand, obj, config, table_height=table_height)
    start = time.perf_counter()

    def stage(name: str) -> Callable[[int, int], None] | None:
        return None if progress is None else functools.partial(progress, name)

    if backend == "mujoco":
        dist = disturbance_test_mujoco(
            scene, hand, poses, nthread=nthread, progress=stage("simulation")
        )
    else:
        from sim.mjx_backend import disturbance_test_mjx

        dist = disturbance_test_mjx(scene, hand, poses)
        if progress is not None:
            progress("simulation", poses.count, poses.count)
    closed = closed_contacts(scene, hand, poses, dist.closed_qpos)
    sim_seconds = time.perf_counter() - start
    checks = check_grasps(
        scene, hand, obj, poses, part_index, nthread=nthread, progress=stage("checks")
    )
    total_seconds = time.perf_counter() - start
    flags = {
        "disturbance": dist.success,
        "penetration": checks.penetration < config.max_penetration,
        "self_penetration": checks.self_penetration < config.max_self_penetration,
        "contact": checks.in_contact.sum(axis=1) >= config.min_contacts,
        "part_alignment": checks.aligned,
    }
    if scene.table_height is not None:
        flags[TABLE_CRITERION] = checks.table_penetration < config.max_penetration
    valid = np.logical_and.reduce(list(flags.values()))
    fingers = tuple(hand.contacts.finger)
    captions = [
        caption(obj.name, part, [f for f, c in zip(fingers, row, strict=True) if c])
        for row in checks.in_contact
    ]
    summary = summarize(valid, flags, dist, checks, fingers, config, has_part=part is not None)
    summary.update(
        backend=backend,
        hand=hand.name,
        object=obj.name,
        part=part,
        sim_seconds=sim_seconds,
        # Fingers (palm included) in contact once the hand has closed in the simulation.
        closed_contacts_mean=float(closed.sum(axis=1).mean()) if len(closed) else float("nan"),
        validated_grasps_per_s=poses.count / max(total_seconds, 1e-9),
        disturbance_grasps_per_s=poses.count / max(sim_seconds, 1e-9),
        config=config.describe(),
    )
    return ValidationReport(valid, flags, dist, checks, fingers, closed, captions, summary, config)


def summarize(
    valid,
    flags,
    dist: DisturbanceResult,
    checks: GeometryChecks,
    fingers,
    config: SimConfig | None = None,
    *,
    has_part: bool = True,
) -> dict:
    """Success rate, which disturbance limit the failures broke, penetration (all and
    valid grasps), Q1, PTA, PGA, contact counts. `config`: the limits the test used
    (default `SimConfig()`). `has_part` False (whole-object grasps): PTA and PGA are
    None, since there is no target part to measure them against."""
    n = len(valid)
    moved, turned = dist.limits_crossed(config or SimConfig())

    def mean(x, mask=None):
        x = np.asarray(x, dtype=np.float64)
        x = x if mask is None else x[mask]
        return float(x.mean()) if x.size else float("nan")

    def maximum(x, mask=None):
        x = np.asarray(x, dtype=np.float64)
        x = x if mask is None else x[mask]
        return float(x.max()) if x.size else float("nan")

    contacts = checks.in_contact.sum(axis=1)
    return {
        "num_grasps": n,
        "num_valid": int(valid.sum()),
        "valid_fraction": mean(valid),
        "success_rate": mean(dist.success),
        # The disturbance failures, split: the object moved past the translation limit,
        # or it turned past the rotation limit while staying within the translation one.
        "disturbance_moved": mean(moved),
        "disturbance_turned_only": mean(turned & ~moved),
        "pass_rate": {k: mean(v) for k, v in flags.items()},
        "pen_mean_mm": 1e3 * mean(checks.penetration),
        "pen_max_mm": 1e3 * maximum(checks.penetration),
        "self_pen_mean_mm": 1e3 * mean(checks.self_penetration),
        "self_pen_max_mm": 1e3 * maximum(checks.self_penetration),
        "valid_pen_mean_mm": 1e3 * mean(checks.penetration, valid),
        "valid_pen_max_mm": 1e3 * maximum(checks.penetration, valid),
        "valid_self_pen_mean_mm": 1e3 * mean(checks.self_penetration, valid),
        "q1_mean": mean(checks.q1),
        "valid_q1_mean": mean(checks.q1, valid),
        "pta": mean(checks.pta) if has_part else None,
        "pga": mean(checks.pga) if has_part else None,
        "contacts_mean": mean(contacts),
        "finger_contact_rate": {f: mean(checks.in_contact[:, k]) for k, f in enumerate(fingers)},
    }


def _check_poses(hand: HandModel, poses: GraspPoses) -> None:
    b = poses.count
    want = {
        "root_pos": (b, 3),
        "root_quat": (b, 4),
        "q_pregrasp": (b, hand.n_q),
        "q_grasp": (b, hand.n_q),
        "q_squeeze": (b, hand.n_q),
        "root_pos_squeeze": (b, 3),
    }
    for name, shape in want.items():
        x = np.asarray(
            poses.squeeze_root_pos() if name == "root_pos_squeeze" else getattr(poses, name)
        )
        if x.shape != shape:
            raise ValueError(
                f"grasps.{name} has shape {x.shape}, expected {shape} for hand '{hand.name}'"
            )
        if not np.all(np.isfinite(x)):
            raise ValueError(f"grasps.{name} has NaN/inf values; drop or fix those grasps")
    if np.any(np.linalg.norm(poses.root_quat, axis=1) < 1e-6):
        raise ValueError("grasps.root_quat has a zero quaternion; give unit wxyz quaternions")
