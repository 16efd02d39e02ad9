"""The `jaxgrasp` command line: thin wrappers over the library API."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import tyro

os.environ.setdefault("MUJOCO_GL", "disable")


def hand(
    name: tyro.conf.Positional[str] = "shadow",
    out: Path = Path("out/hand"),
    pose: str = "open",
) -> None:
    """Picture of a hand's collision geometry and contact candidates + a JSON of its joints.

    Args:
        name: registered hand name (see `jaxgrasp hands`).
        out: output directory.
        pose: named joint pose from the hand's spec (open, wrap, pinch).
    """
    from jaxgrasp.hand_report import write_hand_report

    paths = write_hand_report(name, out, pose)
    for kind, path in paths.items():
        print(f"wrote {kind}: {path}")


def hands() -> None:
    """List the registered hands."""
    from kinematics import available_hands, hand_spec

    for n in available_hands():
        print(f"{n:10s} {hand_spec(n).description}")


COMMANDS = {
    "hand": hand,
    "hands": hands,
}


def main(argv: Annotated[list[str] | None, tyro.conf.Suppress] = None) -> None:
    from kinematics import HandModelError

    try:
        tyro.extras.subcommand_cli_from_dict(COMMANDS, args=argv, prog="jaxgrasp")
    except (HandModelError, FileNotFoundError, ValueError) as err:
        print(f"jaxgrasp: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
