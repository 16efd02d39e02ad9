"""Per-hand specification: everything about a hand that its model file does not say.

A `HandSpec` names the model file, the body the grasp pose is attached to, the labelled
contact candidates (fingertips and palm, with outward front normals), the palm frame used
by initialisation, and hand-crafted initial joint poses. Adding a hand means writing one
spec (see `kinematics/specs/`) and shipping or locating one model file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

Vec3 = tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class ContactSpec:
    """One contact candidate: a point on a link's front face and its outward normal.

    `pos` and `normal` are in the frame of `body` (MuJoCo body frame, metres).
    """

    finger: str
    body: str
    pos: Vec3
    normal: Vec3


@dataclasses.dataclass(frozen=True)
class PalmFrame:
    """The palm's grasping frame, in the root body's frame.

    `origin` is a point on the palm's front face, `normal` points out of the palm towards a
    grasped object, `up` points along the fingers (wrist -> fingertips) and `thumb` to the
    thumb side; the three are orthonormal.
    """

    origin: Vec3
    normal: Vec3
    up: Vec3
    thumb: Vec3


@dataclasses.dataclass(frozen=True)
class HandSpec:
    """Everything needed to build a grasp-ready `HandModel` from a model file.

    Fields:
        name: registry name, e.g. "shadow".
        model_file: zero-argument callable returning the MJCF/URDF path (resolved lazily so
            that importing the registry never touches the file system).
        root_body: body whose world pose is the grasp's root pose; joints above it and its
            own joints are held at their reference value (e.g. the Shadow wrist joints).
        contacts: labelled contact candidates.
        palm: palm grasping frame in the root body's frame.
        init_poses: named joint poses ("open", "wrap", "pinch") as (joint name, angle)
            pairs; joints not named take the value closest to 0 inside their limits.
        n_surface_points: default number of surface samples over the whole hand.
        description: one line for listings.
        license: licence of the model file.
    """

    name: str
    model_file: Callable[[], Path]
    root_body: str
    contacts: tuple[ContactSpec, ...]
    palm: PalmFrame
    init_poses: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()
    n_surface_points: int = 1024
    description: str = ""
    license: str = ""

    def init_pose(self, mode: str) -> dict[str, float]:
        """Joint angles (by joint name) of a named initial pose."""
        poses = dict(self.init_poses)
        if mode not in poses:
            raise ValueError(
                f"hand '{self.name}' has no initial pose '{mode}'; it has {sorted(poses)}"
            )
        return dict(poses[mode])
