"""Grasps as the simulator sees them: a root pose and three joint targets."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kinematics import HandModel


class GraspPoses(NamedTuple):
    """A batch of grasps (object frame).

    Fields:
        root_pos: hand root position. Shape: (B, 3).
        root_quat: hand root orientation, wxyz. Shape: (B, 4).
        q_pregrasp: joints before closing (the hand starts here). Shape: (B, n_q).
        q_grasp: the grasp's joints. Shape: (B, n_q).
        q_squeeze: joint targets held during the disturbance (past the grasp, so the
            servos press). Shape: (B, n_q).
    """

    root_pos: np.ndarray
    root_quat: np.ndarray
    q_pregrasp: np.ndarray
    q_grasp: np.ndarray
    q_squeeze: np.ndarray

    @property
    def count(self) -> int:  # type: ignore[override]  # shadows tuple.count on purpose
        """Number of grasps B (a NamedTuple's len() is its field count)."""
        return int(np.asarray(self.root_pos).shape[0])

    def take(self, index) -> GraspPoses:
        return GraspPoses(*(np.asarray(x)[index] for x in self))


def grasp_stages(
    hand: HandModel,
    root_pos,
    root_quat,
    q_grasp,
    *,
    pregrasp_rad: float = 0.3,
    squeeze_rad: float = 0.2,
    min_flex: float = 0.05,
) -> GraspPoses:
    """Pregrasp and squeeze joints from grasp joints, for any hand.

    A joint's closing direction is the way from the hand's "open" pose to the grasp,
    sign(q_grasp - q_open), for joints that moved more than `min_flex` (others stay):
    pregrasp backs each such joint off by up to `pregrasp_rad` (not past the open pose),
    squeeze pushes it on by `squeeze_rad`; both clipped to the joint limits.
    Shapes: root_pos (B, 3), root_quat (B, 4), q_grasp (B, n_q).
    """
    q = np.atleast_2d(np.asarray(q_grasp, dtype=np.float64))
    lo, hi = np.asarray(hand.q_range, dtype=np.float64).T
    d = q - np.asarray(hand.init_q("open"), dtype=np.float64)
    direction = np.where(np.abs(d) > min_flex, np.sign(d), 0.0)
    return GraspPoses(
        root_pos=np.atleast_2d(np.asarray(root_pos, dtype=np.float64)),
        root_quat=np.atleast_2d(np.asarray(root_quat, dtype=np.float64)),
        q_pregrasp=np.clip(q - direction * np.minimum(np.abs(d), pregrasp_rad), lo, hi),
        q_grasp=q,
        q_squeeze=np.clip(q + direction * squeeze_rad, lo, hi),
    )
