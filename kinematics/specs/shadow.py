"""Shadow Dexterous Hand (gymnasium-robotics' MJCF, MIT licence).

Frames (MuJoCo body frames of the MJCF): in the palm frame the fingers point along +z, the
palm's front (grasping) face looks along -y and the thumb sits on the +x side. Finger
distal links flex about +x, so their pads face -y; the thumb's distal link flexes about +y
and its pad faces -x. The two wrist joints (WRJ1, WRJ0) sit at and above the root body
"robot0:palm" and are held at 0. Each distal joint (FFJ0, MFJ0, RFJ0, LFJ0) is coupled to
its middle joint by a tendon in the MJCF, so the joint vector has 18 independent finger
joints (22 finger joints in all).
"""

from __future__ import annotations

from kinematics.spec import ContactSpec, HandSpec, PalmFrame
from kinematics.specs._gymnasium_robotics import asset_path

# Distal capsules: radius 7.05 mm (fingers) / 9.18 mm (thumb); pads ~6 mm below the tip.
_FINGER_PAD = (0.0, -0.00705, 0.018)
_THUMB_PAD = (-0.00918, 0.0, 0.018)

SHADOW = HandSpec(
    name="shadow",
    model_file=lambda: asset_path("hand", "reach.xml"),
    root_body="robot0:palm",
    contacts=(
        ContactSpec("thumb", "robot0:thdistal", _THUMB_PAD, (-1.0, 0.0, 0.0)),
        ContactSpec("index", "robot0:ffdistal", _FINGER_PAD, (0.0, -1.0, 0.0)),
        ContactSpec("middle", "robot0:mfdistal", _FINGER_PAD, (0.0, -1.0, 0.0)),
        ContactSpec("ring", "robot0:rfdistal", _FINGER_PAD, (0.0, -1.0, 0.0)),
        ContactSpec("little", "robot0:lfdistal", _FINGER_PAD, (0.0, -1.0, 0.0)),
        ContactSpec("palm", "robot0:palm", (0.011, -0.0111, 0.04), (0.0, -1.0, 0.0)),
    ),
    palm=PalmFrame(
        origin=(0.011, -0.0111, 0.04),
        normal=(0.0, -1.0, 0.0),
        up=(0.0, 0.0, 1.0),
        thumb=(1.0, 0.0, 0.0),
    ),
    init_poses=(
        ("open", ()),
        (
            "wrap",
            (
                ("robot0:FFJ2", 0.35),
                ("robot0:FFJ1", 0.35),
                ("robot0:MFJ2", 0.35),
                ("robot0:MFJ1", 0.35),
                ("robot0:RFJ2", 0.35),
                ("robot0:RFJ1", 0.35),
                ("robot0:LFJ2", 0.35),
                ("robot0:LFJ1", 0.35),
                ("robot0:THJ4", 0.9),
                ("robot0:THJ3", 0.9),
                ("robot0:THJ1", 0.2),
                ("robot0:THJ0", -0.3),
            ),
        ),
        (
            "pinch",
            (
                ("robot0:FFJ2", 0.5),
                ("robot0:FFJ1", 0.4),
                ("robot0:MFJ2", 0.5),
                ("robot0:MFJ1", 0.4),
                ("robot0:RFJ2", 1.2),
                ("robot0:RFJ1", 1.2),
                ("robot0:LFJ2", 1.2),
                ("robot0:LFJ1", 1.2),
                ("robot0:THJ4", 1.0),
                ("robot0:THJ3", 1.1),
                ("robot0:THJ1", 0.3),
                ("robot0:THJ0", -0.4),
            ),
        ),
    ),
    n_surface_points=512,
    description="Shadow Dexterous Hand, gymnasium-robotics MJCF (18 independent finger DoF)",
    license="MIT (gymnasium-robotics)",
)
