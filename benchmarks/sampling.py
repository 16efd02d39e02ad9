"""What sampling a trained grasp generator costs, with and without physics guidance and
the choice of the best-placed samples of more (`oversample`), and unguided with the
samples opened out of the cloud (`open_to_clear`).

Run: python benchmarks/sampling.py RUN [--object procedural:mug:5] [--nums 16,64,256]
     [--steps 16] [--guidance 1] [--oversample 4] [--name sampling]
Writes benchmarks/results/NAME.json: per (num, guidance, oversample, open_to_clear) the
first call of `jaxgrasp.generate` (tracing and XLA compilation included), the steady
call (median and fastest of repeated calls; the grasp set's pregrasp / squeeze poses
included) and the compile time read as first minus steady; versions and hardware.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import environment, wall_seconds, write_results  # noqa: E402
from jaxgrasp.evaluation import instruction_for  # noqa: E402
from jaxgrasp.generator import GraspGenerator, generate  # noqa: E402
from jaxgrasp.objects import object_from_reference  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a `jaxgrasp train` run directory")
    ap.add_argument("--object", default="procedural:mug:5")
    ap.add_argument("--part", default="body")
    ap.add_argument("--nums", default="16,64,256")
    ap.add_argument("--steps", type=int, default=16, help="midpoint integration steps")
    ap.add_argument("--guidance", type=float, default=1.0)
    ap.add_argument("--oversample", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--name", default="sampling")
    args = ap.parse_args()

    model = GraspGenerator.load(args.run)
    obj = object_from_reference(args.object)
    pts, nrm = np.asarray(obj.points), np.asarray(obj.normals)
    text = instruction_for(obj.name, args.part, "wrap")
    records = []
    for num in (int(n) for n in args.nums.split(",")):
        for guidance, oversample, clear in (
            (0.0, 1.0, False),
            (0.0, 1.0, True),
            (args.guidance, 1.0, False),
            (args.guidance, args.oversample, False),
        ):

            def call(num=num, guidance=guidance, oversample=oversample, clear=clear):
                generate(
                    model,
                    pts,
                    text,
                    num,
                    normals=nrm,
                    steps=args.steps,
                    guidance=guidance,
                    oversample=oversample,
                    open_to_clear=clear,
                )

            t0 = time.perf_counter()
            call()
            first = time.perf_counter() - t0
            steady = wall_seconds(call, repeats=args.repeats, warmup=0)
            record = {
                "num": num,
                "guidance": guidance,
                "oversample": oversample,
                "open_to_clear": clear,
                "first_call_s": first,
                "steady_ms": 1e3 * steady["median"],
                "steady_min_ms": 1e3 * steady["min"],
                "compile_s": first - steady["median"],
                "ms_per_grasp": 1e3 * steady["median"] / num,
            }
            print(
                f"num {num:4d} guidance {guidance:g} oversample {oversample:g}"
                f"{' open_to_clear' if clear else ''}: "
                f"{record['steady_ms']:8.1f} ms "
                f"({record['ms_per_grasp']:.2f} ms/grasp), compile ~{record['compile_s']:.1f} s",
                flush=True,
            )
            records.append(record)
    path = write_results(
        args.name,
        {
            "run": str(args.run),
            "train_steps": model.step,
            "object": args.object,
            "part": args.part,
            "instruction": text,
            "steps": args.steps,
            "method": "midpoint",
            "cloud_points": len(pts),
            "records": records,
            "environment": environment(),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
