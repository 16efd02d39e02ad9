"""Evaluating a grasp generator in simulation (DESIGN.md §10, DexVLG §6, Table 2).

For every held-out target (object x part x contact mode) the model samples grasps from
the object's cloud and the instruction `Grasp the {part} of the {object} object, with
contacts on {mode's fingers}`; the samples are validated in MuJoCo raw and after a few
optimizer steps with the instructed part as target (refined, ZeroDexGrasp §III-E, with
the training dataset's energy settings), both closed with its pregrasp / squeeze settings.
A model trained on a tabletop dataset is evaluated the same way: each object rests on a
table, the refinement keeps the hand above it, and a grasp through it is not a success.

Metrics (per grasp, averaged over all grasps of a split):
- Suc: survives the six-direction disturbance test with penetration and
  self-penetration (and, on a table, table penetration) under their limits
  (physically valid);
- held: survives the disturbance test (on a table, stays above it), whatever the
  penetration of its closed pose: execution success in simulation, as DexVLG's Suc
  (§6, DexGraspNet 2.0's protocol) is defined; the penetration limits are DexVLG's
  dataset criteria (§4.4), which Suc adds;
- PTA / PGA: >= 1 / >= 3 fingers within 1 cm of the instructed part and closer to it
  than to any other part (sim.checks);
- valid: passes every dataset criterion (Suc + contact + part alignment);
- contact-mode accuracy: the fingers in contact differ from the instructed fingers by at
  most one finger (the palm is not counted);
- diversity: entropy of each joint's histogram (20 bins over its range; nats, max 3.0)
  over the samples of a target, averaged over joints and targets.
A target's split is "seen category" when its category is among the training objects'
and "unseen category" otherwise; objects the model was trained on are flagged.
`choose_temperature` picks the sampling temperature on objects kept apart for it (a
selection split) by the raw samples' Suc, `choose_open_by` the opening of the sampled
fingers.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from energies._checks import (
    BOOL,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    check_fields,
    is_number,
)
from jaxgrasp.generator import GraspGenerator, generate
from jaxgrasp.object_model import PROCEDURAL_PREFIX
from jaxgrasp.synthesis import MODES, resting_height, synthesize
from sim.validate import TABLE_CRITERION

SPLITS = ("seen category", "unseen category")
# raw: the model's samples; guided: the same drawn with physics guidance; ranked: the
# num of oversample x num samples (drawn with that guidance, if any) that sit best
# against the cloud; refined: the raw ones after the synthesis optimizer's steps.
VARIANTS = ("raw", "guided", "ranked", "refined")
METRICS = ("suc", "held", "pta", "pga", "valid", "contact_acc", "contact_acc_closed", "diversity")
_BINS = 20


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Fields: num (samples per target), sample_steps / method / temperature (ODE
    integration and the scale of its starting noise, see `generate`),
    anchor_temperature (an anchored model's for drawing where each palm goes; None:
    temperature), refine_steps
    (optimizer steps of the refinement; 0 skips it), refine_oversample (k >= 1: the
    refinement starts from ceil(k * num) samples and keeps the num of lowest energy
    after `select_at` of its steps, see `synthesize`'s `initial`; the raw figures are
    those of the first num samples), guidance (> 0: the same samples drawn again with
    physics guidance, `generate`'s, reported as the variant "guided"; 0: none),
    oversample (k > 1: `generate`'s choice of the num samples of k x num, drawn with
    `guidance`, that sit best against the cloud, reported as the variant "ranked"; 1:
    none), modes, cloud ("full" or "partial": one camera view, `partial_views`' first,
    whose camera guidance and the choice are given, `generate`'s `camera`), seed,
    open_by (rad: `generate`'s opening of the sampled fingers, for the raw, guided and
    ranked samples and so the refinement's starts; 0: none), open_to_clear (then each
    sample's palm backed off and fingers opened out of the cloud, `generate`'s)."""

    num: int = 32
    sample_steps: int = 16
    method: str = "midpoint"
    temperature: float = 1.0
    anchor_temperature: float | None = None
    refine_steps: int = 200
    refine_oversample: float = 1.0
    guidance: float = 0.0
    oversample: float = 1.0
    modes: tuple[str, ...] = ("wrap",)
    cloud: str = "full"
    seed: int = 0
    open_by: float = 0.0
    open_to_clear: bool = False

    def __post_init__(self):
        check_fields(
            self,
            {
                "num": POSITIVE_INT,
                "refine_steps": NON_NEGATIVE_INT,
                "temperature": NON_NEGATIVE,
                "guidance": NON_NEGATIVE,
                "open_by": NON_NEGATIVE,
                "open_to_clear": BOOL,
                "anchor_temperature": (
                    lambda x: x is None or NON_NEGATIVE[0](x),
                    "None or a finite number >= 0",
                ),
                "refine_oversample": (
                    lambda x: is_number(x) and 1 <= x <= 64,
                    "a number in [1, 64]",
                ),
                "oversample": (
                    lambda x: is_number(x) and 1 <= x <= 64,
                    "a number in [1, 64]",
                ),
            },
        )


def instruction_for(object_name: str, part: str | None, mode: str) -> str:
    """The caption a dataset grasp of this mode gets when every contact of the mode
    touches (the palm included, as `validate` captions it)."""
    from sim.checks import caption

    return caption(object_name, part, list(MODES[mode]))


def evaluate(
    model: GraspGenerator,
    object_refs: list[str],
    config: EvalConfig = EvalConfig(),
    *,
    train_objects: list[str] | None = None,
    progress: bool = True,
    overlap: bool = True,
) -> dict:
    """Sample, (refine,) validate. `train_objects` (default: the model's own training
    objects) decide the seen / unseen split. With `overlap` a target's validation runs on
    a worker thread while the next target is sampled and refined (`pipeline.pipelined`:
    the same results, sooner). Returns {"rows": one record per split x variant with
    `METRICS` and counts, "targets": per-target records, "config": ..., "tabletop":
    whether the objects rested on a table (`model.tabletop`), "seconds"}."""
    from jaxgrasp.dataset import object_part_names
    from jaxgrasp.objects import object_from_reference
    from jaxgrasp.pipeline import pipelined
    from jaxgrasp.point_views import single_view
    from sim import validate
    from sim.scene import build_scene

    hand = model.hand
    # The refinement optimizes with the energies of the model's training grasps and
    # closes its grasps the way they were closed.
    refine = model.synthesis
    trained = model.train_objects if train_objects is None else tuple(train_objects)
    seen = {category_of(r) for r in trained}
    targets = []
    start = time.perf_counter()
    jobs = [(r, p, m) for r in object_refs for p in object_part_names(r) for m in config.modes]
    built: dict = {}

    def sampled(job):  # this thread: the model and the refinement (XLA)
        nonlocal built
        k, (ref, part, mode) = job
        if built.get("ref") != ref:  # jobs come grouped by object: build it once
            obj = object_from_reference(ref)
            pts, nrm = np.asarray(obj.points), np.asarray(obj.normals)
            camera = None
            if config.cloud == "partial":
                view, camera = single_view(pts, nrm, view=0, n_views=1)
                pts, nrm = pts[view], nrm[view]
            table = resting_height(obj) if model.tabletop else None
            scene = build_scene(hand, obj, table_height=table)
            built = {"ref": ref, "obj": obj, "scene": scene, "cloud": (pts, nrm, camera)}
        obj, scene, (pts, nrm, camera) = built["obj"], built["scene"], built["cloud"]
        instruction = instruction_for(obj.name, part, mode)

        def sample(num: int, guidance: float = 0.0, oversample: float = 1.0):
            return generate(
                model,
                pts,
                instruction,
                num,
                normals=nrm,
                steps=config.sample_steps,
                method=config.method,
                seed=config.seed + k,
                temperature=config.temperature,
                anchor_temperature=config.anchor_temperature,
                object_ref=ref,
                table_height=scene.table_height,
                guidance=guidance,
                oversample=oversample,
                camera=camera,
                open_by=config.open_by,
                open_to_clear=config.open_to_clear,
            )

        drawn = sample(math.ceil(config.num * config.refine_oversample - 1e-9))
        raw = drawn.take(np.arange(config.num))
        record: dict[str, Any] = {
            "object_ref": ref,
            "part": part,
            "mode": mode,
            "instruction": instruction,
            "split": SPLITS[0] if category_of(ref) in seen else SPLITS[1],
            "train_object": ref in trained,
        }
        variants = {"raw": raw}
        if config.guidance > 0:  # the same noise and anchors as the raw samples
            variants["guided"] = sample(config.num, config.guidance)
        if config.oversample > 1:  # the first num of them are the guided (or raw) ones
            variants["ranked"] = sample(config.num, config.guidance, config.oversample)
        if config.refine_steps > 0:
            variants["refined"] = synthesize(
                hand,
                obj,
                part,
                mode,
                num=config.num,
                steps=config.refine_steps,
                initial=drawn,
                config=refine,
                tabletop=model.tabletop,
            )
        return record, variants, obj, scene

    def validated(job, made):  # the worker thread with `overlap`: MuJoCo + checks
        record, variants, obj, scene = made
        for name, grasps in variants.items():
            report = validate(hand, obj, grasps, part=record["part"], scene=scene)
            record[name] = sample_metrics(hand, report, grasps, record["mode"])
        return record

    for (k, (ref, part, mode)), record in pipelined(
        enumerate(jobs), sampled, validated, overlap=overlap
    ):
        targets.append(record)
        if progress:
            variants = [v for v in VARIANTS if v in record]
            print(
                f"  {k + 1}/{len(jobs)} {ref} {part} {mode}: "
                + ", ".join(f"{v} suc {record[v]['suc']:.2f}" for v in variants),
                flush=True,
            )
    rows = []
    for split in SPLITS:
        group = [t for t in targets if t["split"] == split]
        for variant in VARIANTS:
            if not group or variant not in group[0]:
                continue
            rows.append(
                {
                    "split": split,
                    "variant": variant,
                    "targets": len(group),
                    "grasps": int(sum(t[variant]["n"] for t in group)),
                    **{m: mean_over_targets(group, variant, m) for m in METRICS},
                }
            )
    return {
        "rows": rows,
        "targets": targets,
        "config": dataclasses.asdict(config),
        "tabletop": model.tabletop,
        "seconds": time.perf_counter() - start,
    }


def choose_temperature(
    model: GraspGenerator,
    object_refs: list[str],
    temperatures: Sequence[float],
    config: EvalConfig = EvalConfig(),
    *,
    train_objects: list[str] | None = None,
    progress: bool = True,
) -> dict:
    """The sampling temperature whose raw samples pass Suc most often on `object_refs`,
    a selection split kept apart from the objects the model is then judged on (choosing
    on those would grade the choice by itself). Each candidate is evaluated as `config`
    says but raw only (no guidance, ranking or refinement); Suc is averaged over the
    targets, as `evaluate`'s rows are per split. A tie goes to the higher temperature,
    whose samples spread more. Returns {"temperature": the choice, "candidates": one
    record per temperature (the raw samples' `METRICS`, averaged over the targets, and
    seconds), "objects": object_refs}."""
    return _choose(
        "temperature",
        sorted(set(temperatures), reverse=True),
        model,
        object_refs,
        config,
        train_objects,
        progress,
    )


def choose_open_by(
    model: GraspGenerator,
    object_refs: list[str],
    openings: Sequence[float],
    config: EvalConfig = EvalConfig(),
    *,
    train_objects: list[str] | None = None,
    progress: bool = True,
) -> dict:
    """`choose_temperature` for `EvalConfig.open_by` (`generate`'s opening of the
    sampled fingers, rad), at `config`'s temperature: the opening whose raw samples pass
    Suc most often on the selection split `object_refs`; a tie goes to the smaller
    opening, the nearer the model's own joints. Returns {"open_by": the choice,
    "candidates", "objects"}."""
    return _choose(
        "open_by", sorted(set(openings)), model, object_refs, config, train_objects, progress
    )


def _choose(
    field: str,
    candidates: Sequence[float],
    model: GraspGenerator,
    object_refs: list[str],
    config: EvalConfig,
    train_objects: list[str] | None,
    progress: bool,
) -> dict:
    """The value of the `EvalConfig` `field` among `candidates` (in order of preference:
    the first of equals wins) whose raw samples pass Suc most often on `object_refs`."""
    if not candidates:
        raise ValueError(f"choosing {field} needs at least one candidate value")
    raw_only = dataclasses.replace(
        config, refine_steps=0, refine_oversample=1.0, guidance=0.0, oversample=1.0
    )
    records = []
    for value in candidates:
        change: dict[str, Any] = {field: value}
        run = evaluate(
            model,
            object_refs,
            dataclasses.replace(raw_only, **change),
            train_objects=train_objects,
            progress=False,
        )
        record = {
            field: value,
            **{m: mean_over_targets(run["targets"], "raw", m) for m in METRICS},
            "seconds": run["seconds"],
        }
        records.append(record)
        if progress:
            print(
                f"  {field} {value:g} on {len(run['targets'])} selection targets: "
                f"raw suc {record['suc']:.3f}, pga {record['pga']:.3f}, "
                f"diversity {record['diversity']:.2f}",
                flush=True,
            )
    # max keeps the first of equals: the preferred one.
    best = max(records, key=lambda c: c["suc"])
    return {field: best[field], "candidates": records, "objects": object_refs}


def mean_over_targets(targets: list[dict], variant: str, metric: str) -> float | None:
    """`metric` of `variant` averaged over the `evaluate` targets that have the variant,
    each target weighing the same (as in `evaluate`'s rows); None when none has it."""
    values = [t[variant][metric] for t in targets if variant in t]
    return float(np.mean(values)) if values else None


def category_of(ref: str) -> str:
    """The category of a procedural object reference ("procedural:mug:7" -> "mug"); any
    other reference (a mesh path) is its own category."""
    ref = str(ref)
    fields = ref.removeprefix(PROCEDURAL_PREFIX).split(":")
    return fields[0] if ref.startswith(PROCEDURAL_PREFIX) and len(fields) == 2 else ref


def held_and_suc(flags: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per grasp, from a `ValidationReport`'s flags: held (the disturbance test, and on
    a table staying above it) and Suc (held within the penetration limits). Shape:
    (B,) each."""
    held = flags["disturbance"] & flags.get(TABLE_CRITERION, True)
    return held, held & flags["penetration"] & flags["self_penetration"]


def sample_metrics(hand, report, grasps, mode: str) -> dict:
    """One target's `METRICS` (and counts) from the `ValidationReport` of its samples
    `grasps` (a `GraspSet`) instructed in contact `mode`."""
    flags = report.flags
    held, suc = held_and_suc(flags)
    fingers = list(report.fingers)
    digits = [i for i, f in enumerate(fingers) if f != "palm"]
    wanted = np.array([fingers[i] in MODES[mode] for i in digits])

    def contact_accuracy(touching: np.ndarray) -> float:
        # The mode's fingers against those touching, one finger of slack (DESIGN.md §8).
        return float((np.sum(touching[:, digits] != wanted[None], axis=1) <= 1).mean())

    return {
        "n": int(len(suc)),
        "suc": float(suc.mean()),
        "held": float(held.mean()),
        "pta": float(np.mean(report.checks.pta)),
        "pga": float(np.mean(report.checks.pga)),
        "valid": float(report.valid.mean()),
        # At the stored grasp pose (the fingers within `contact_distance`), and in the
        # simulation once the hand has closed: an opened sample (`generate(open_by=)`)
        # touches only in the second.
        "contact_acc": contact_accuracy(report.checks.in_contact.astype(bool)),
        "contact_acc_closed": contact_accuracy(report.closed_contact),
        "diversity": joint_entropy(hand, grasps.q_grasp),
        # On a table: how many grasps stay out of it (Suc counts it too).
        **({"table_ok": float(flags[TABLE_CRITERION].mean())} if TABLE_CRITERION in flags else {}),
    }


def joint_entropy(hand, q: np.ndarray) -> float:
    """Mean over joints of the entropy (nats) of the joint's histogram over its range."""
    lo, hi = np.asarray(hand.q_range, dtype=np.float64).T
    out = []
    for j in range(q.shape[1]):
        if hi[j] - lo[j] < 1e-6:
            continue
        counts, _ = np.histogram(q[:, j], bins=_BINS, range=(lo[j], hi[j]))
        p = counts[counts > 0] / counts.sum()
        out.append(float(-(p * np.log(p)).sum()))
    return float(np.mean(out)) if out else 0.0


def format_table(rows: list[dict]) -> str:
    """A Markdown table laid out like DexVLG Table 2 (percentages)."""
    head = (
        "| split | samples | Suc | held | PTA | PGA | valid | contact acc. "
        "| contact acc. closed | diversity |"
    )
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in rows:
        lines.append(
            f"| {r['split']} ({r['targets']} targets) | {r['variant']} | "
            + " | ".join(f"{100 * r[m]:.1f}" for m in METRICS[:-1])
            + f" | {r['diversity']:.2f} |"
        )
    return "\n".join(lines)
