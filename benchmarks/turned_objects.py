"""A trained generator on objects standing another way round than its training objects.

Run: python benchmarks/turned_objects.py RUN [--categories mug,pan,...] [--instance 5]
     [--turns 0,90] [--num 16] [--refine-steps 200] [--temperature 1] [--name N]
Writes benchmarks/results/NAME.json.

Each object (one instance of each category) is exported with its parts, turned about
its up axis (z) by each of --turns degrees, and loaded back as a mesh, so every turn,
0 included, goes through the same loading; `jaxgrasp.evaluate` then samples for every
part (Wrap), refines, and validates. A model trained on the library's upright, unturned
objects sees a turned object as new geometry unless it was trained with
`TrainConfig.yaw_augment` (session 52). The JSON carries, per turn, the raw and refined
Suc / held / PGA over the targets, and each target's figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import trimesh  # noqa: E402

from benchmarks._common import environment, write_results  # noqa: E402
from jaxgrasp.evaluation import EvalConfig, evaluate, mean_over_targets  # noqa: E402
from jaxgrasp.generator import GraspGenerator  # noqa: E402
from jaxgrasp.objects import make_parts, part_scene  # noqa: E402

# Categories whose parts lie to one side of the up axis, so a turn moves them.
CATEGORIES = "mug,pan,hammer,drill,knife,spray_bottle,kettle,headphones"
METRICS = ("suc", "held", "pga")
VARIANTS = ("raw", "refined")


def turned_object(category: str, instance: int, degrees: float, work: Path) -> str:
    """A GLB of the instance turned about z, named after its category (the name the
    instructions use). Returns its path."""
    path = work / f"{category}_{instance}_turn{degrees:g}" / f"{category}.glb"
    if not path.is_file():
        parts = make_parts(category, instance)
        turn = trimesh.transformations.rotation_matrix(np.radians(degrees), [0.0, 0.0, 1.0])
        for mesh in parts.values():
            mesh.apply_transform(turn)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(part_scene(parts).export(file_type="glb"))
    return str(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a `jaxgrasp train` run directory")
    ap.add_argument("--categories", default=CATEGORIES)
    ap.add_argument("--instance", type=int, default=5)
    ap.add_argument("--turns", default="0,90", help="degrees about the up axis")
    ap.add_argument("--num", type=int, default=16)
    ap.add_argument("--refine-steps", type=int, default=200)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--work", type=Path, default=Path("out/turned_objects"))
    ap.add_argument("--name", default="turned_objects")
    args = ap.parse_args()
    turns = [float(t) for t in args.turns.split(",")]

    model = GraspGenerator.load(args.run)
    config = EvalConfig(
        num=args.num,
        refine_steps=args.refine_steps,
        temperature=args.temperature,
        guidance=0.0,
        oversample=1.0,
    )
    records = []
    for degrees in turns:
        refs = [
            turned_object(c, args.instance, degrees, args.work) for c in args.categories.split(",")
        ]
        ev = evaluate(model, refs, config)
        figures = {
            f"{m}_{v}": mean_over_targets(ev["targets"], v, m) for m in METRICS for v in VARIANTS
        }
        print(f"turned {degrees:g} deg: " + ", ".join(f"{k} {x:.3f}" for k, x in figures.items()))
        targets = [
            {
                "object": Path(t["object_ref"]).stem,
                "part": t["part"],
                **{f"{m}_{v}": t[v][m] for m in METRICS for v in VARIANTS if v in t},
            }
            for t in ev["targets"]
        ]
        records.append({"turn_degrees": degrees, **figures, "targets": targets})
    train = model.train_config
    path = write_results(
        args.name,
        {
            "run": str(args.run),
            "yaw_augment": train.yaw_augment,
            "train_steps": model.step,
            "instance": args.instance,
            "eval": {**vars(args), "run": str(args.run), "work": str(args.work)},
            "turns": records,
            "environment": environment(),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
