"""Why a trained generator's raw samples fail, and what opening their fingers does.

Run: python benchmarks/opening.py RUN [--objects SPEC] [--num 16] [--temperature 1]
     [--openings 0,0.02,0.04,0.06] [--cleared 0] [--palm-back 0.003,0.006] [--name N]
Writes benchmarks/results/NAME.json.

For every part of every object (Wrap, the evaluation's instruction and seeds, so the
samples at opening 0 are `jaxgrasp evaluate`'s raw ones) the model's samples are
validated as drawn and with each closing joint opened by each of --openings rad
(`generate(..., open_by=)`), with --cleared, opened by each of those and then backed
out of the cloud (`generate(..., open_to_clear=True)`, "open_by X, cleared"), and, with
--palm-back, with the hand moved back along its
palm normal by each distance (m; a diagnostic, not a `generate` option). Per variant the
JSON carries Suc / held / valid / PGA / contact-mode accuracy at the stored pose and
once closed in the simulation (means over the targets, as `evaluate`'s), the
share of samples deeper than the 3 mm penetration limit, percentiles of their
penetration (mm), which hand body lies deepest in those over the limit, and each
target's figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import environment, write_results  # noqa: E402
from benchmarks.model import HOLDOUT  # noqa: E402
from jaxgrasp.dataset import object_part_names, parse_objects  # noqa: E402
from jaxgrasp.evaluation import instruction_for, sample_metrics  # noqa: E402
from jaxgrasp.generator import GraspGenerator, generate  # noqa: E402
from jaxgrasp.objects import categories, object_from_reference  # noqa: E402
from sim import SimConfig, build_scene, grasp_stages, validate  # noqa: E402
from sim.grasps import rotate  # noqa: E402

PERCENTILES = (10, 25, 50, 75, 90)
# `evaluate`'s metrics kept per target (contact-mode accuracy at the stored pose and once
# the hand has closed in the simulation: an opened grasp touches only in the second).
METRICS = ("suc", "held", "valid", "pga", "contact_acc", "contact_acc_closed")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a `jaxgrasp train` run directory")
    # `benchmarks/model.py`'s held-out targets in its order: the same seeds per target.
    held_out = [f"{c}:5" for c in categories() if c != HOLDOUT] + [f"{HOLDOUT}:5"]
    ap.add_argument("--objects", default=",".join(held_out))
    ap.add_argument("--num", type=int, default=16)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--openings", default="0,0.02,0.04,0.06", help="rad, comma-separated")
    ap.add_argument(
        "--cleared", default="", help="openings (rad) to clear from, comma-separated (none)"
    )
    ap.add_argument("--palm-back", default="", help="m, comma-separated (none by default)")
    ap.add_argument("--name", default="opening")
    args = ap.parse_args()
    openings = [float(x) for x in args.openings.split(",") if x]
    cleared = [float(x) for x in args.cleared.split(",") if x]
    palm_back = [float(x) for x in args.palm_back.split(",") if x]

    model = GraspGenerator.load(args.run)
    hand = model.hand
    assert hand.spec is not None
    normal = np.asarray(hand.spec.palm.normal)
    limit = SimConfig().max_penetration
    variants = (
        [f"open_by {o:g}" for o in openings]
        + [f"open_by {o:g}, cleared" for o in cleared]
        + [f"palm back {b:g}" for b in palm_back]
    )
    samples: dict[str, list[dict]] = {v: [] for v in variants}
    targets = []
    start = time.perf_counter()
    k = -1
    for ref in parse_objects(args.objects):
        obj = object_from_reference(ref)
        scene = build_scene(hand, obj)
        pts, nrm = np.asarray(obj.points), np.asarray(obj.normals)
        for part in object_part_names(ref):
            k += 1  # `evaluate`'s seed of the k-th target

            instruction = instruction_for(obj.name, part, "wrap")
            common: dict[str, Any] = {
                "normals": nrm,
                "seed": k,
                "temperature": args.temperature,
                "object_ref": ref,
            }
            drawn = {
                o: generate(model, pts, instruction, args.num, open_by=o, **common)
                for o in sorted({0.0, *openings})
            }
            poses = {f"open_by {o:g}": drawn[o].poses() for o in openings}
            for o in cleared:
                poses[f"open_by {o:g}, cleared"] = generate(
                    model, pts, instruction, args.num, open_by=o, open_to_clear=True, **common
                ).poses()
            raw = drawn[0.0]
            for b in palm_back:
                poses[f"palm back {b:g}"] = grasp_stages(
                    hand,
                    raw.root_pos - b * rotate(raw.root_quat, normal),
                    raw.root_quat,
                    raw.q_grasp,
                    **model.stage_settings,
                )
            record: dict = {"object_ref": ref, "part": part}
            for name, grasps in poses.items():
                report = validate(hand, obj, grasps, part=part, scene=scene)
                metrics = sample_metrics(hand, report, grasps, "wrap")
                record[name] = {m: metrics[m] for m in METRICS}
                deepest = np.argmin(report.checks.link_distance, axis=1)
                per_sample: dict[str, Any] = {
                    "pen_mm": 1e3 * report.checks.penetration,
                    "deepest": [hand.body_names[i] for i in deepest],
                }
                samples[name].append(per_sample)
            targets.append(record)
            print(
                f"{k + 1} {ref} {part}: "
                + ", ".join(f"{v} suc {record[v]['suc']:.2f}" for v in variants),
                flush=True,
            )

    summary = []
    for name in variants:
        rows = samples[name]
        pen = np.concatenate([r["pen_mm"] for r in rows])
        over = pen > 1e3 * limit
        deepest = [b for r in rows for b in r["deepest"]]
        summary.append(
            {
                "variant": name,
                **{m: float(np.mean([t[name][m] for t in targets])) for m in METRICS},
                "pen_over_limit": float(np.mean(over)),
                "pen_mm_percentiles": {str(p): float(np.percentile(pen, p)) for p in PERCENTILES},
                "deepest_body_over_limit": dict(
                    Counter(b for b, o in zip(deepest, over, strict=True) if o).most_common()
                ),
            }
        )
        print(
            f"{name}: suc {summary[-1]['suc']:.3f} held {summary[-1]['held']:.3f} "
            f"valid {summary[-1]['valid']:.3f} pga {summary[-1]['pga']:.3f} "
            f"contact acc. {summary[-1]['contact_acc']:.3f} "
            f"closed {summary[-1]['contact_acc_closed']:.3f} "
            f"over {limit * 1e3:g} mm {summary[-1]['pen_over_limit']:.3f}",
            flush=True,
        )
    path = write_results(
        args.name,
        {
            "run": str(args.run),
            "step": model.step,
            "objects": args.objects,
            "num": args.num,
            "temperature": args.temperature,
            "variants": summary,
            "targets": targets,
            "seconds": time.perf_counter() - start,
            "environment": environment(),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
