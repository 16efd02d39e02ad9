"""The main job for one object: synthesize -> (validate) -> pictures + summary.json.

`run_synthesis` is what `jaxgrasp synthesize` and `jaxgrasp demo` call; `show_grasps`
is `jaxgrasp show`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from jaxgrasp._io import write_json_atomic
from jaxgrasp.grasp_set import GraspSet
from jaxgrasp.synthesis import SynthesisConfig, _check_inputs, synthesize
from sim.config import SimConfig

Item = TypeVar("Item")
Made = TypeVar("Made")
Result = TypeVar("Result")

SUMMARY_KEYS = (
    "num_grasps",
    "num_valid",
    "valid_fraction",
    "success_rate",
    "pen_mean_mm",
    "pen_max_mm",
    "self_pen_mean_mm",
    "q1_mean",
    "pta",
    "pga",
    "grasps_per_s",
)


def run_synthesis(
    obj,
    out: str | Path,
    *,
    hand_name: str = "shadow",
    part: str | None = None,
    mode: str = "wrap",
    num: int = 256,
    steps: int | None = None,
    seed: int = 0,
    validate: bool = True,
    tabletop: bool = False,
    top_k: int = 4,
    config: SynthesisConfig | None = None,
    sim_config: SimConfig | None = None,
    log=print,
) -> dict:
    """Synthesize grasps of `obj` (a PreparedObject), optionally validate them, write
    `grasps.npz`, `validation.json`, `summary.json` and PNGs of the best grasps to `out`.
    `tabletop`: the object rests on a table (see `synthesize`); `config` / `sim_config`:
    synthesis and validation settings (defaults: the library's; the summary records
    both). Returns the summary."""
    from kinematics import load_hand

    hand = load_hand(hand_name)
    t0 = time.perf_counter()
    progress = functools.partial(stage_logger(log), "optimization")

    _check_inputs(hand, obj, part, mode, num)  # before the first line of output
    where = (f" / {part}" if part else "") + (" on a table" if tabletop else "")
    log(f"synthesizing {num} {mode} grasps of {obj.name}{where}")
    grasps = synthesize(
        hand,
        obj,
        part,
        mode,
        num=num,
        steps=steps,
        seed=seed,
        config=config,
        tabletop=tabletop,
        progress=progress,
    )
    synth_s = time.perf_counter() - t0
    # Only now: bad input (part, mode, num, object size) fails in synthesize and leaves
    # no empty output folder behind.
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    grasps.save(out / "grasps.npz")
    summary: dict = {
        "hand": hand.name,
        "object": obj.name,
        "object_ref": obj.source,
        "part": part,
        "mode": mode,
        "table_height": grasps.table_height,
        "num_grasps": grasps.count,
        "synthesis_seconds": synth_s,
        "energy_median": float(np.median(grasps.energy)),
        "synthesis_config": _settings(config or SynthesisConfig(), steps),
    }
    order = np.argsort(grasps.energy)
    if validate:
        from sim import validate as run_validation

        log("validating in MuJoCo (six-direction disturbance test + exact checks)")
        report = run_validation(
            hand, obj, grasps, part=part, config=sim_config, progress=stage_logger(log)
        )
        (out / "validation.json").write_text(json.dumps(report.to_json(), indent=2))
        summary.update({k: v for k, v in report.summary.items() if k != "config"})
        summary["sim_config"] = report.summary["config"]
        # Show valid grasps first (lowest energy among them), then the rest.
        order = np.lexsort((grasps.energy, ~report.valid))
        captions = report.captions
    else:
        captions = [""] * grasps.count
        for key in SUMMARY_KEYS[1:-1]:
            summary.setdefault(key, None)
    total_s = time.perf_counter() - t0
    summary["seconds"] = total_s
    summary["grasps_per_s"] = grasps.count / max(total_s, 1e-9)
    pictures = show_grasps(
        grasps, out / "pictures", top_k=top_k, obj=obj, order=order, captions=captions
    )
    summary["pictures"] = [str(p) for p in pictures]
    write_json_atomic(out / "summary.json", summary)
    return summary


def stage_logger(log=print, step: float = 0.1) -> Callable[[str, int, int], None]:
    """A progress callback (stage, done, total), e.g. for `sim.validate`, that logs a
    line whenever a stage has gone another `step` (a fraction) of the way, and at its
    end: about ten lines per stage, however many grasps."""
    t0 = time.perf_counter()
    shown: dict[str, float] = {}

    def report(stage: str, done: int, total: int) -> None:
        fraction = done / max(total, 1)
        if fraction >= shown.get(stage, 0.0) + step or (done >= total and shown.get(stage) != 1.0):
            shown[stage] = 1.0 if done >= total else fraction
            log(f"  {stage} {100 * fraction:3.0f} % ({time.perf_counter() - t0:.1f} s)")

    return report


def pipelined(
    items: Iterable[Item],
    produce: Callable[[Item], Made],
    consume: Callable[[Item, Made], Result],
    *,
    overlap: bool = True,
) -> Iterator[tuple[Item, Result]]:
    """Yield `(item, consume(item, produce(item)))` for every item, in order.

    With `overlap`, `consume` runs on one worker thread while this thread produces the
    next item: the synthesis of one job (XLA, on the accelerator or the CPU's cores) and
    the validation of the one before (MuJoCo and NumPy on the host) run at once. Both
    release the GIL while they compute. At most two produced items wait (the one being
    consumed and the next), so memory stays bounded when producing is faster. Each
    result depends only on its own item, so the results are those of the sequential
    loop (`overlap=False`). If a consumer fails, its error is raised here; on any exit
    the queued work is cancelled and the running `consume` is allowed to finish.
    """
    if not overlap:
        for item in items:
            yield item, consume(item, produce(item))
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxgrasp-consume")
    pending: tuple[Item, Future[Result]] | None = None
    try:
        for item in items:
            made = produce(item)
            # Queued behind the running consume: the worker never waits for the caller.
            queued = (item, pool.submit(consume, item, made))
            if pending is not None:
                yield pending[0], pending[1].result()
            pending = queued
        if pending is not None:
            yield pending[0], pending[1].result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _settings(config: SynthesisConfig, steps: int | None) -> dict:
    """The synthesis settings as JSON (with `steps` as the run used it)."""
    if steps is not None:
        config = dataclasses.replace(config, steps=steps)
    return json.loads(json.dumps(dataclasses.asdict(config)))


def show_grasps(
    grasps: GraspSet | str | Path,
    out: str | Path,
    *,
    top_k: int = 4,
    obj=None,
    order=None,
    captions=None,
) -> list[Path]:
    """PNG pictures (three views, target part coloured) of the `top_k` best grasps
    (lowest energy unless `order` is given; a generated set, whose energy is unknown,
    in its own order: best first where `generate` chose them). Works without a display."""
    from jaxgrasp.objects import object_from_reference
    from jaxgrasp.visualize import render_grasp
    from kinematics import load_hand

    gs = grasps if isinstance(grasps, GraspSet) else GraspSet.load(grasps)
    if top_k <= 0:
        raise ValueError(f"top_k must be positive, got {top_k}")
    hand = load_hand(gs.hand)
    obj = obj if obj is not None else object_from_reference(gs.object_ref, gs.object_scale)
    order = np.argsort(gs.energy, kind="stable") if order is None else np.asarray(order)
    paths = []
    for rank, i in enumerate(order[:top_k]):
        if np.isfinite(gs.energy[i]):
            title = f"#{rank} (grasp {i}, E = {gs.energy[i]:.3f})"
        elif "cloud_depth_mm" in gs.terms:  # chosen by `generate(..., oversample=k)`
            depth, gap = gs.terms["cloud_depth_mm"][i], gs.terms["cloud_gap_mm"][i]
            title = f"#{rank} (grasp {i}, {depth:.1f} mm in the cloud, contacts {gap:.1f} mm off)"
        else:
            title = f"#{rank} (grasp {i})"
        if captions is not None and captions[i]:
            title += f"\n{captions[i]}"
        paths.append(
            render_grasp(
                hand,
                obj,
                gs.root_pos[i],
                gs.root_quat[i],
                gs.q_grasp[i],
                Path(out) / f"grasp_{rank:02d}.png",
                part=gs.part,
                title=title,
                table_height=gs.table_height,
            )
        )
    return paths
