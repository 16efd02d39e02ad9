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


def objects_list() -> None:
    """List the procedural object categories and their parts."""
    from jaxgrasp import objects

    for c in objects.categories():
        print(f"{c:14s} {', '.join(objects.make_parts(c, 0))}")


def objects_export(
    category: tyro.conf.Positional[str],
    out: Path,
    seed: int = 0,
) -> None:
    """Write one random instance of a category as GLB with named parts.

    Args:
        category: procedural category (see `jaxgrasp objects list`).
        out: output .glb file.
        seed: instance seed (shape parameters are drawn from it).
    """
    from jaxgrasp import objects

    if out.suffix.lower() != ".glb":
        raise ValueError(f"--out must end in .glb, got {out}")
    path = objects.export_glb(category, seed, out)
    print(f"wrote {path} (parts: {', '.join(objects.make_parts(category, seed))})")


def object_info(
    mesh: tyro.conf.Positional[Path],
    scale: float = 1.0,
    json: Path | None = None,
) -> None:
    """Load a mesh (GLB/GLTF parts become named parts) and describe its parts.

    Args:
        mesh: mesh file (OBJ/STL/PLY/GLB/GLTF/OFF).
        scale: multiplies the coordinates (0.001 for millimetres).
        json: also write the description to this JSON file.
    """
    import json as _json

    from jaxgrasp.object_loading import load_object

    obj = load_object(mesh, scale=scale)
    info = obj.describe()
    for part in info["parts"]:
        print(
            f"{part['name']:12s} {part['category']:11s} half extents (m) "
            f"{', '.join(f'{v:.3f}' for v in part['box_half_extents'])}"
        )
    if json is not None:
        json.parent.mkdir(parents=True, exist_ok=True)
        json.write_text(_json.dumps(info, indent=2))
        print(f"wrote {json}")


COMMANDS = {
    "hand": hand,
    "hands": hands,
    "object": object_info,
}
OBJECT_COMMANDS = {
    "list": objects_list,
    "export": objects_export,
}


def main(argv: Annotated[list[str] | None, tyro.conf.Suppress] = None) -> None:
    from jaxgrasp.object_model import ObjectError
    from kinematics import HandModelError

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["objects"]:
            tyro.extras.subcommand_cli_from_dict(
                OBJECT_COMMANDS, args=args[1:], prog="jaxgrasp objects"
            )
        else:
            tyro.extras.subcommand_cli_from_dict(
                {**COMMANDS, "objects": objects_list},
                args=args,
                prog="jaxgrasp",
                description="jaxgrasp: dexterous grasp synthesis (hands, objects, ...). "
                "Object library: `jaxgrasp objects list|export`.",
            )
    except (HandModelError, ObjectError, FileNotFoundError, ValueError) as err:
        print(f"jaxgrasp: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
