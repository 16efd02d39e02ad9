"""Adroit hand (gymnasium-robotics' Adroit MJCF, Apache-2.0): a Shadow-derived hand with
its own limits, actuators and scene. Frames as for the Shadow Hand (fingers +z, palm front
-y, thumb +x); distal joints are tendon-coupled, giving 18 independent finger joints.
Loaded from the relocate scene: the table, the object and the arm slides lie outside the
root body's subtree and are ignored."""

from __future__ import annotations

from kinematics.spec import ContactSpec, HandSpec, PalmFrame
from kinematics.specs._gymnasium_robotics import asset_path

_FINGER_PAD = (0.0, -0.00705, 0.018)
_THUMB_PAD = (-0.00918, 0.0, 0.018)

ADROIT = HandSpec(
    name="adroit",
    model_file=lambda: asset_path("adroit_hand", "adroit_relocate.xml"),
    root_body="palm",
    contacts=(
        ContactSpec("thumb", "thdistal", _THUMB_PAD, (-1.0, 0.0, 0.0)),
        ContactSpec("index", "ffdistal", _FINGER_PAD, (0.0, -1.0, 0.0)),
        ContactSpec("middle", "mfdistal", _FINGER_PAD, (0.0, -1.0, 0.0)),
        ContactSpec("ring", "rfdistal", _FINGER_PAD, (0.0, -1.0, 0.0)),
        ContactSpec("little", "lfdistal", _FINGER_PAD, (0.0, -1.0, 0.0)),
        ContactSpec("palm", "palm", (0.011, -0.0111, 0.04), (0.0, -1.0, 0.0)),
    ),
    palm=PalmFrame(
        origin=(0.011, -0.0111, 0.04),
        normal=(0.0, -1.0, 0.0),
        up=(0.0, 0.0, 1.0),
        thumb=(1.0, 0.0, 0.0),
    ),
    init_poses=(("open", ()),),
    n_surface_points=512,
    description="Adroit hand, gymnasium-robotics MJCF (Shadow-derived, 18 independent DoF)",
    license="Apache-2.0 (gymnasium-robotics)",
)
