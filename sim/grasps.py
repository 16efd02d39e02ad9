"""Grasps as the simulator sees them: a root pose and three joint targets."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kinematics import HandModel

# How far the wrist moves along the palm normal while the fingers squeeze (m): the
# palm presses the object into the closing fingers instead of leaving the fingers to
# shove it off the palm. Whole Wrap library, 48 grasps per part: 30.8 % valid with
# 0, 32.7 % with 4 or 6 mm, 31.0 % with 14 mm (benchmarks/HISTORY.md, "Wrist squeeze").
WRIST_SQUEEZE = 0.004
# How far the pregrasp backs each closing joint off the grasp (rad): a short approach,
# the fingertips ~5 mm back (0.3 rad: ~34 mm). On eight Wrap targets (the same 48
# grasps each) the disturbance test passed .435 of them with 0.3 rad, .477 with 0.1,
# .516 with 0.05 and .529 starting at the grasp; whole Wrap library 38.6 -> 43.3 %
# (benchmarks/HISTORY.md, "Short pregrasp"): fingers that sweep in from far stop on
# the welded object short of their contacts, and fewer of them press it when it is
# released.
PREGRASP_RAD = 0.05


class GraspPoses(NamedTuple):
    """A batch of grasps (object frame).

    Fields:
        root_pos: hand root position. Shape: (B, 3).
        root_quat: hand root orientation, wxyz. Shape: (B, 4).
        q_pregrasp: joints before closing (the hand starts here). Shape: (B, n_q).
        q_grasp: the grasp's joints. Shape: (B, n_q).
        q_squeeze: joint targets held during the disturbance (past the grasp, so the
            servos press). Shape: (B, n_q).
        root_pos_squeeze: hand root position held from the squeeze on (the wrist
            presses too); None keeps `root_pos`. Shape: (B, 3).
    """

    root_pos: np.ndarray
    root_quat: np.ndarray
    q_pregrasp: np.ndarray
    q_grasp: np.ndarray
    q_squeeze: np.ndarray
    root_pos_squeeze: np.ndarray | None = None

    @property
    def count(self) -> int:  # type: ignore[override]  # shadows tuple.count on purpose
        """Number of grasps B (a NamedTuple's len() is its field count)."""
        return int(np.asarray(self.root_pos).shape[0])

    def squeeze_root_pos(self) -> np.ndarray:
        """The root position held from the squeeze on. Shape: (B, 3)."""
        pos = self.root_pos if self.root_pos_squeeze is None else self.root_pos_squeeze
        return np.asarray(pos, dtype=np.float64)

    def take(self, index) -> GraspPoses:
        def pick(x):
            return None if x is None else np.asarray(x)[index]

        return GraspPoses(*(pick(x) for x in self))


def rotate(quat, v) -> np.ndarray:
    """Rotate vectors v by unit quaternions (wxyz). Shapes: quat (..., 4), v (..., 3)
    broadcast; returns (..., 3)."""
    quat = np.asarray(quat, dtype=np.float64)
    w, u = quat[..., :1], quat[..., 1:]
    v = np.broadcast_to(np.asarray(v, dtype=np.float64), u.shape)
    uv = np.cross(u, v)
    # R v = v + 2 w (u x v) + 2 u x (u x v)
    return v + 2 * w * uv + 2 * np.cross(u, uv)


def mat_to_quat(rot) -> np.ndarray:
    """Unit wxyz quaternions of rotation matrices, w >= 0 (one of the two signs).
    Shape: rot (..., 3, 3); returns (..., 4)."""
    from scipy.spatial.transform import Rotation

    rot = np.asarray(rot, dtype=np.float64)
    xyzw = Rotation.from_matrix(rot.reshape(-1, 3, 3)).as_quat()
    wxyz = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], axis=1)
    wxyz *= np.where(wxyz[:, :1] < 0, -1.0, 1.0)
    return wxyz.reshape(*rot.shape[:-2], 4)


def closing_direction(hand: HandModel, q, min_flex: float = 0.05) -> np.ndarray:
    """+1 / -1 where a joint closed from the hand's "open" pose to `q` (the way it
    moved), 0 for joints within `min_flex` (rad or m) of it. Shape: q (B, n_q); returns
    (B, n_q)."""
    d = np.asarray(q, dtype=np.float64) - np.asarray(hand.init_q("open"), dtype=np.float64)
    return np.where(np.abs(d) > min_flex, np.sign(d), 0.0)


def back_off(hand: HandModel, q, rad: float | np.ndarray, min_flex: float = 0.05) -> np.ndarray:
    """`q` with each closing joint (`closing_direction`) moved back towards the hand's
    "open" pose by `rad`, not past it, and clipped to the joint limits: the pregrasp of
    a grasp, or a sampled grasp opened so that the squeeze closes its last millimetres.
    Shape: q (B, n_q); rad a scalar or per joint (broadcast to (B, n_q)); returns (B, n_q)."""
    q = np.atleast_2d(np.asarray(q, dtype=np.float64))
    lo, hi = np.asarray(hand.q_range, dtype=np.float64).T
    gap = np.abs(q - np.asarray(hand.init_q("open"), dtype=np.float64))
    return np.clip(q - closing_direction(hand, q, min_flex) * np.minimum(gap, rad), lo, hi)


def grasp_stages(
    hand: HandModel,
    root_pos,
    root_quat,
    q_grasp,
    *,
    pregrasp_rad: float = PREGRASP_RAD,
    squeeze_rad: float = 0.2,
    min_flex: float = 0.05,
    wrist_squeeze: float = WRIST_SQUEEZE,
) -> GraspPoses:
    """Pregrasp and squeeze poses from grasp poses, for any hand.

    A joint's closing direction is the way from the hand's "open" pose to the grasp,
    sign(q_grasp - q_open), for joints that moved more than `min_flex` (others stay):
    pregrasp backs each such joint off by up to `pregrasp_rad` (not past the open pose),
    squeeze pushes it on by `squeeze_rad`; both clipped to the joint limits. During the
    squeeze the root also moves `wrist_squeeze` (m) along the palm normal (towards the
    object; 0 keeps it still).
    Shapes: root_pos (B, 3), root_quat (B, 4), q_grasp (B, n_q).
    """
    q = np.atleast_2d(np.asarray(q_grasp, dtype=np.float64))
    lo, hi = np.asarray(hand.q_range, dtype=np.float64).T
    direction = closing_direction(hand, q, min_flex)
    pos = np.atleast_2d(np.asarray(root_pos, dtype=np.float64))
    quat = np.atleast_2d(np.asarray(root_quat, dtype=np.float64))
    unit = quat / np.maximum(np.linalg.norm(quat, axis=-1, keepdims=True), 1e-12)
    assert hand.spec is not None  # init_q above raises for a hand without one
    palm_normal = np.asarray(hand.spec.palm.normal, dtype=np.float64)
    return GraspPoses(
        root_pos=pos,
        root_quat=quat,
        q_pregrasp=back_off(hand, q, pregrasp_rad, min_flex),
        q_grasp=q,
        q_squeeze=np.clip(q + direction * squeeze_rad, lo, hi),
        root_pos_squeeze=pos + wrist_squeeze * rotate(unit, palm_normal),
    )
