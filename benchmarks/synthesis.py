"""End-to-end synthesis quality and speed on the procedural library (issue 6).

Run: python benchmarks/synthesis.py [--num 64] [--seed 0] [--modes wrap pinch whole]
     [--categories mug bottle ...] [--batches 64 256 1024] [--retime]
     [--oversample 2] [--select-at 0.25] [--backend mujoco|mjx]
     [--energy-chunk N] [--device-batch 1024] [--no-overlap] [--name synthesis]
Writes benchmarks/results/NAME.json and benchmarks/results/NAME_throughput.png.

For every mode, every procedural category (instance `--seed`) and, in the part modes,
every part: `synthesize` `--num` grasps with the library defaults (`--oversample` k:
k * --num hands optimized, the --num of lowest energy after `--select-at` of the steps
kept and optimized to the end; the settings record the optimizer hand-iterations this
costs per grasp returned), then `sim.validate`
(`--backend`: MuJoCo C on all cores, or MJX; the six-direction disturbance test +
exact checks). One record per
mode with `mode`, `valid_fraction` (valid / grasps returned and validated),
`pen_mean_mm`, `pen_max_mm`, `self_pen_mean_mm` (over valid grasps), `q1_mean`, `pga`
(over valid grasps; None in whole-object mode, which has no target part),
`success_rate` (disturbance test alone), `disturbance_moved` / `disturbance_turned_only`
(the fractions whose object moved past 5 cm / turned past 15 degrees within 5 cm: the
failures, split), per-criterion pass rates,
`validated_grasps_per_s` (valid grasps / wall time of synthesis + validation,
compilation and scene building included: what a user waits for; each mode starts from
empty JAX caches and compiles the optimizer once, since every object's SDF grid is
padded to one shape), `us_per_hand_iter`
(steady-state optimizer cost per hand per iteration at B = --num, compile excluded) and
`compile_s` (lower + compile of one optimizer call), `synthesis_s` / `validation_s`
(each stage's time summed over the targets; they add up to the wall time only with
`--no-overlap`), plus one row per object/part. By default each target's validation
runs on a worker thread while the next target is synthesized (`jaxgrasp.pipeline.
pipelined`, as `jaxgrasp generate` runs; the same grasps and verdicts); `--no-overlap`
runs one stage at a time, as runs before session 40 did.
`--energy-chunk` / `--device-batch` set `SynthesisConfig.energy_chunk` / `device_batch`
(default: the library's; the chunk is then chosen for the platform, `energy_chunk_for`).
`--modes` with no mode runs the throughput sweep alone.
A separate sweep times the optimizer alone against the batch size (the plot).
`--retime` only re-measures `compile_s` / `us_per_hand_iter` of the records already in
NAME.json (the quality figures are kept).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks._common import RESULTS, compile_seconds, environment, write_results  # noqa: E402
from jaxgrasp import objects  # noqa: E402
from jaxgrasp.initialization import initial_poses  # noqa: E402
from jaxgrasp.pipeline import pipelined  # noqa: E402
from jaxgrasp.synthesis import (  # noqa: E402
    MODES,
    SynthesisConfig,
    _optimizer,
    optimizer_arguments,
    selection_plan,
    start_state,
    synthesize,
)
from kinematics import load_hand  # noqa: E402
from sim import build_scene, validate  # noqa: E402


def optimizer_timing(hand, obj, part, mode, batch, config):
    """(compile_s, us per hand per iteration) of one compiled optimizer call."""
    # Otherwise a shape the run already compiled comes from JAX's in-process cache and
    # "compiles" in under a millisecond.
    jax.clear_caches()
    part_index = None if part is None else obj.part_index(part)
    pos, quat, q = initial_poses(hand, obj, part_index, mode, batch, 0, config.init)
    run = _optimizer(hand, MODES[mode], config)
    hands = start_state(*(np.asarray(x, np.float32) for x in (pos, quat, q)))
    args = (*optimizer_arguments(obj, part_index, config), *hands)
    exe, compile_s = compile_seconds(run, *args)
    jax.block_until_ready(exe(*args))
    t0 = time.perf_counter()
    jax.block_until_ready(exe(*args))
    seconds = time.perf_counter() - t0
    return compile_s, 1e6 * seconds / (batch * config.steps)


def run_mode(hand, mode, categories, num, seed, config, log, backend="mujoco", overlap=True):
    # Every mode starts from empty caches, so each pays its own compilation whatever ran
    # before it.
    jax.clear_caches()
    contact_mode = "wrap" if mode == "whole" else mode

    def targets():  # this thread, before the object's first synthesis: part of the wall
        for category in categories:
            obj = objects.make_object(category, seed)
            scene = build_scene(hand, obj)
            for part in [None] if mode == "whole" else list(obj.part_names):
                yield category, obj, scene, part

    def synthesized(target):  # this thread: the optimizer (XLA)
        _, obj, _, part = target
        t0 = time.perf_counter()
        gs = synthesize(hand, obj, part, contact_mode, num=num, seed=seed, config=config)
        return gs, time.perf_counter() - t0

    def validated(target, made):  # the worker thread with --overlap: MuJoCo + checks
        _, obj, scene, part = target
        gs, synth_s = made
        t0 = time.perf_counter()
        report = validate(hand, obj, gs, part=part, scene=scene, backend=backend)
        return gs, report, synth_s, time.perf_counter() - t0

    rows = []
    started = time.perf_counter()
    for (category, _, _, part), (gs, report, synth_s, valid_s) in pipelined(
        targets(), synthesized, validated, overlap=overlap
    ):
        v = report.valid
        rows.append(
            {
                "object": category,
                "part": part,
                "num": gs.count,
                "valid": int(v.sum()),
                "success_rate": float(report.flags["disturbance"].mean()),
                "disturbance_moved": report.summary["disturbance_moved"],
                "disturbance_turned_only": report.summary["disturbance_turned_only"],
                "pass_rate": {k: float(x.mean()) for k, x in report.flags.items()},
                "pen_mm": (1e3 * report.checks.penetration[v]).tolist(),
                "self_pen_mm": (1e3 * report.checks.self_penetration[v]).tolist(),
                "q1": report.checks.q1[v].tolist(),
                "pga": report.checks.pga[v].tolist(),
                "synthesis_s": synth_s,
                "seconds": synth_s + valid_s,
            }
        )
        log(
            f"  {mode:6s} {category:13s} {part or '(whole)':9s} valid {int(v.sum()):3d}/"
            f"{gs.count}  disturbance {100 * rows[-1]['success_rate']:5.1f} %  "
            f"{synth_s + valid_s:5.1f} s"
        )
    wall = time.perf_counter() - started
    return rows, wall


def summarize(mode, rows, wall, timing):
    def cat(key):
        return np.concatenate([np.asarray(r[key], dtype=np.float64) for r in rows])

    num = sum(r["num"] for r in rows)
    valid = sum(r["valid"] for r in rows)
    pen, spen, q1, pga = cat("pen_mm"), cat("self_pen_mm"), cat("q1"), cat("pga")

    def mean(x):
        return float(x.mean()) if len(x) else None

    criteria = rows[0]["pass_rate"].keys()
    return {
        "mode": mode,
        "num_grasps": num,
        "num_valid": valid,
        "valid_fraction": valid / max(num, 1),
        "success_rate": sum(r["success_rate"] * r["num"] for r in rows) / max(num, 1),
        # The disturbance failures, split by the limit they broke (see sim.validate).
        **{
            k: sum(r[k] * r["num"] for r in rows) / max(num, 1)
            for k in ("disturbance_moved", "disturbance_turned_only")
        },
        "pass_rate": {
            k: sum(r["pass_rate"][k] * r["num"] for r in rows) / max(num, 1) for k in criteria
        },
        "pen_mean_mm": mean(pen),
        "pen_max_mm": float(pen.max()) if len(pen) else None,
        "self_pen_mean_mm": mean(spen),
        "q1_mean": mean(q1),
        # No target part in whole-object mode: PGA is undefined there, not 0.
        "pga": None if mode == "whole" else mean(pga),
        "validated_grasps_per_s": valid / wall,
        "optimized_grasps_per_s": num / wall,
        "wall_s": wall,
        "synthesis_s": sum(r["synthesis_s"] for r in rows),
        "validation_s": sum(r["seconds"] - r["synthesis_s"] for r in rows),
        "compile_s": timing[0],
        "us_per_hand_iter": timing[1],
        "targets": [{k: v for k, v in r.items() if not isinstance(v, list)} for r in rows],
    }


def hand_iters_per_grasp(num: int, config: SynthesisConfig) -> float:
    """Optimizer hand-iterations per grasp returned, oversampling included (as
    `synthesize` splits them: every hand runs to the selection, the kept ones on)."""
    optimized, first = selection_plan(num, config)
    return (optimized * first + num * (config.steps - first)) / num


def mode_timing(hand, mode, batch, config):
    obj = objects.make_object("bottle", 0)
    part, contacts = (None, "wrap") if mode == "whole" else ("body", mode)
    return optimizer_timing(hand, obj, part, contacts, batch, config)


def retime(hand, config, name):
    path = RESULTS / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"--retime: no {path} to re-time; run without --retime first")
    data = json.loads(path.read_text())
    for r in data["records"]:
        r["compile_s"], r["us_per_hand_iter"] = mode_timing(
            hand, r["mode"], data["settings"]["num_per_target"], config
        )
        print(f"{r['mode']}: compile {r['compile_s']:.1f} s, {r['us_per_hand_iter']:.1f} us")
    data["settings"]["retimed"] = environment()
    print(f"wrote {write_results(name, data)}")


def throughput_sweep(hand, batches, config, log):
    obj = objects.make_object("bottle", 0)
    out = []
    for b in batches:
        compile_s, us = optimizer_timing(hand, obj, "body", "wrap", b, config)
        out.append({"B": b, "compile_s": compile_s, "us_per_hand_iter": us})
        log(f"  optimizer B={b:5d}: {us:7.1f} us per hand-iteration (compile {compile_s:.1f} s)")
    return out


def plot(sweep, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b = [r["B"] for r in sweep]
    rate = [1e6 / r["us_per_hand_iter"] for r in sweep]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(b, rate, "o-")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size B (hands)")
    ax.set_ylabel("hand-iterations / s")
    ax.set_title("optimizer throughput (Shadow, bottle, Wrap)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--num", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--modes", nargs="*", default=["wrap", "pinch", "whole"])
    ap.add_argument("--categories", nargs="+", default=list(objects.categories()))
    ap.add_argument("--batches", type=int, nargs="*", default=[64, 256, 1024])
    ap.add_argument("--note", default="", help="stored with the results (run conditions)")
    ap.add_argument("--retime", action="store_true", help="re-measure the timings only")
    defaults = SynthesisConfig()
    ap.add_argument(
        "--oversample",
        type=float,
        default=defaults.oversample,
        help="SynthesisConfig.oversample: optimize this many times --num hands per target "
        "and validate the --num of lowest energy",
    )
    ap.add_argument(
        "--select-at",
        type=float,
        default=defaults.select_at,
        help="SynthesisConfig.select_at: the fraction of the steps after which the --num "
        "hands of lowest energy are kept (the others stop there)",
    )
    ap.add_argument(
        "--backend",
        choices=["mujoco", "mjx"],
        default="mujoco",
        help="validation backend: MuJoCo C on all cores, or MJX (worlds vmapped on an accelerator)",
    )
    ap.add_argument(
        "--no-overlap",
        dest="overlap",
        action="store_false",
        help="validate each target before synthesizing the next (default: validation of "
        "one target on a worker thread while the next is synthesized, as `jaxgrasp "
        "generate` runs)",
    )
    ap.add_argument("--energy-chunk", type=int, default=defaults.energy_chunk)
    ap.add_argument("--device-batch", type=int, default=defaults.device_batch)
    ap.add_argument(
        "--name", default="synthesis", help="results file: benchmarks/results/NAME.json"
    )
    args = ap.parse_args()
    config = SynthesisConfig(
        oversample=args.oversample,
        select_at=args.select_at,
        energy_chunk=args.energy_chunk,
        device_batch=args.device_batch,
    )
    if args.retime:
        retime(load_hand("shadow"), config, args.name)
        return

    hand = load_hand("shadow")
    records: list[dict] = []
    sweep: list[dict] = []

    def save():  # after every mode, so a long run keeps what it has measured
        return write_results(
            args.name,
            {
                "environment": environment(),
                "settings": {
                    "num_per_target": args.num,
                    "seed": args.seed,
                    "categories": args.categories,
                    "synthesis_config": repr(config),
                    "oversample": args.oversample,
                    "select_at": args.select_at,
                    "hand_iters_per_grasp": hand_iters_per_grasp(args.num, config),
                    "backend": args.backend,
                    "overlap": args.overlap,
                    "note": args.note,
                },
                "records": records,
                "throughput": sweep,
            },
        )

    for mode in args.modes:
        print(f"mode {mode}")
        rows, wall = run_mode(
            hand,
            mode,
            args.categories,
            args.num,
            args.seed,
            config,
            print,
            args.backend,
            args.overlap,
        )
        timing = mode_timing(hand, mode, args.num, config)
        records.append(summarize(mode, rows, wall, timing))
        r = records[-1]
        print(
            f"{mode}: valid {100 * r['valid_fraction']:.1f} %, disturbance "
            f"{100 * r['success_rate']:.1f} %, {r['validated_grasps_per_s']:.2f} validated/s"
        )
        save()
    if args.batches:
        sweep.extend(throughput_sweep(hand, args.batches, config, print))
        plot(sweep, RESULTS / f"{args.name}_throughput.png")
    print(f"wrote {save()}")


if __name__ == "__main__":
    main()
