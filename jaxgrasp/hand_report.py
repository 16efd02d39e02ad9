"""Write a hand's picture and joint description: the work behind `jaxgrasp hand`."""

from __future__ import annotations

import json
from pathlib import Path

from jaxgrasp.visualize import render_hand
from kinematics import load_hand


def write_hand_report(name: str, out: str | Path, pose: str = "open") -> dict[str, Path]:
    """Render hand `name` at its named pose and describe its joints.

    Writes `OUT/{name}_{pose}.png` and `OUT/{name}.json`; returns both paths.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    hand = load_hand(name)
    q = hand.init_q(pose)
    png = render_hand(hand, q, out / f"{name}_{pose}.png", title=f"{name} ({pose} pose)")
    info = hand.describe()
    info["pose"] = {"name": pose, "q": [float(v) for v in q]}
    js = out / f"{name}.json"
    tmp = js.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2))
    tmp.replace(js)
    return {"png": png, "json": js}
