"""Captioned grasp datasets over many objects x parts x modes (DESIGN.md §9).

`generate_dataset` runs synthesis -> validation -> captions for every job (one object, one
target part or the whole object, one contact mode) and writes one shard per job:

    DATASET/manifest.json               settings + per-job statistics
    DATASET/shards/<job id>.npz         every optimized grasp (a `GraspSet`) with its
                                        validation flags, measurements and caption

Shards and the manifest are written atomically (temporary file + rename) and each job's
seed depends only on the dataset seed and the job itself, so a run killed at any moment
and started again skips the finished shards and ends with the same dataset as an
uninterrupted run. `GraspDataset` serves the valid grasps as training batches;
`export_dexgraspbench` writes them in DexGraspBench's per-grasp format.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from energies._checks import BOOL, POSITIVE_INT, check_fields, is_integer, read_flag
from jaxgrasp._io import write_json_atomic
from jaxgrasp.grasp_set import GraspSet, GraspSetError
from jaxgrasp.object_model import PROCEDURAL_PREFIX
from jaxgrasp.synthesis import (
    MODES,
    SynthesisConfig,
    energy_chunk_for,
    resting_height,
    synthesize,
)

MANIFEST = "manifest.json"
SHARDS = "shards"
# 2: grasps squeeze with the wrist too (GraspSet format 2). A dataset started with
# format 1 is not resumed with format-2 shards (the settings check refuses it).
FORMAT_VERSION = 2


class DatasetError(ValueError):
    """A bad object spec, an unusable dataset directory, or a settings mismatch."""


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    """What `generate_dataset` runs for every object.

    Fields:
        num: grasps optimized per job (object x part x mode).
        steps: optimizer iterations (None: `synthesis.steps`).
        modes: contact modes, each a job of its own.
        parts: run one job per named part.
        whole_object: also run a whole-object job (no target part) per object and mode.
        seed: the dataset seed; a job's seed is derived from it and the job's name.
        hand: registered hand name.
        tabletop: every object rests on a table at its lowest point (z up); grasps
            stay above it and are validated with the table in the scene.
        synthesis: optimizer and energy settings.
    """

    num: int = 256
    steps: int | None = None
    modes: tuple[str, ...] = ("wrap",)
    parts: bool = True
    whole_object: bool = False
    seed: int = 0
    hand: str = "shadow"
    tabletop: bool = False
    synthesis: SynthesisConfig = SynthesisConfig()

    def __post_init__(self):
        # Checked here, before a run writes anything to its dataset directory.
        check_fields(
            self,
            {
                "num": POSITIVE_INT,
                "steps": (
                    lambda s: s is None or (is_integer(s) and s >= 0),
                    "None or an integer >= 0",
                ),
                "modes": (
                    lambda m: len(m) > 0 and all(x in MODES for x in m),
                    f"a non-empty list of {', '.join(MODES)}",
                ),
                "parts": BOOL,
                "whole_object": (
                    lambda w: isinstance(w, bool) and (w or self.parts),
                    "True or False, and True when parts is False (else nothing to do)",
                ),
                "seed": (is_integer, "an integer"),
                "hand": (lambda h: isinstance(h, str) and h != "", "a hand name"),
                "tabletop": BOOL,
                "synthesis": (lambda c: isinstance(c, SynthesisConfig), "a SynthesisConfig"),
            },
            DatasetError,
        )

    def describe(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


@dataclasses.dataclass(frozen=True)
class Job:
    """One unit of work: `num` grasps of one object, one part (None: whole) and mode."""

    object_ref: str
    part: str | None
    mode: str

    @property
    def key(self) -> str:
        """A file-name-safe, unique id."""
        ref = self.object_ref
        if ref.startswith(PROCEDURAL_PREFIX):
            name = ref[len(PROCEDURAL_PREFIX) :]
        else:  # a file: its stem plus a hash of the full path
            name = f"{Path(ref).stem}-{hashlib.sha1(ref.encode()).hexdigest()[:8]}"
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
        return f"{safe}__{self.part or 'whole'}__{self.mode}"

    def seed(self, dataset_seed: int) -> int:
        return zlib.crc32(f"{dataset_seed}|{self.object_ref}|{self.part}|{self.mode}".encode())


def parse_objects(spec: str | Sequence[str]) -> list[str]:
    """Object references from a spec: comma-separated items, each `CATEGORY:SEEDS`
    (SEEDS = `3`, `0-4` or `0-4+7`), `all:SEEDS` (every procedural category), or a mesh
    path. E.g. `mug:0-2,bottle:0,all:10`."""
    from jaxgrasp import objects

    items = spec.split(",") if isinstance(spec, str) else list(spec)
    refs: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if Path(item).is_file():
            refs.append(str(Path(item).resolve()))
            continue
        item = item.removeprefix(PROCEDURAL_PREFIX)
        category, sep, seeds = item.partition(":")
        if not sep or (category != "all" and category not in objects.categories()):
            raise DatasetError(
                f"bad object spec item '{item}': expected CATEGORY:SEEDS (categories: "
                f"{', '.join(objects.categories())}, or all) or an existing mesh file"
            )
        cats = objects.categories() if category == "all" else (category,)
        refs.extend(f"{PROCEDURAL_PREFIX}{c}:{s}" for c in cats for s in _seeds(seeds, item))
    if not refs:
        raise DatasetError(f"object spec '{spec}' names no objects")
    return list(dict.fromkeys(refs))


def _seeds(text: str, item: str) -> list[int]:
    out: list[int] = []
    for piece in text.split("+"):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", piece.strip())
        if match is None or int(match[2] or match[1]) < int(match[1]):
            raise DatasetError(f"bad seeds '{text}' in '{item}': use 3, 0-4 or 0-4+7")
        out.extend(range(int(match[1]), int(match[2] or match[1]) + 1))
    return out


def plan_jobs(refs: Sequence[str], config: DatasetConfig, part_names=None) -> list[Job]:
    """Every (object, part, mode) job, in a fixed order. `part_names(ref)` lists an
    object's parts (default: load the object)."""
    part_names = part_names or object_part_names
    jobs: list[Job] = []
    for ref in refs:
        targets: list[str | None] = list(part_names(ref)) if config.parts else []
        if config.whole_object:
            targets.append(None)
        jobs.extend(Job(ref, part, mode) for part in targets for mode in config.modes)
    return jobs


def object_part_names(ref: str) -> tuple[str, ...]:
    """The part names of an object reference (procedural ones without building it)."""
    from jaxgrasp import objects

    if ref.startswith(PROCEDURAL_PREFIX):
        category, seed = ref[len(PROCEDURAL_PREFIX) :].rsplit(":", 1)
        return tuple(objects.make_parts(category, int(seed)))
    return tuple(objects.object_from_reference(ref).part_names)


def generate_dataset(
    objects_spec: str | Sequence[str],
    out: str | Path,
    config: DatasetConfig = DatasetConfig(),
    *,
    log: Callable[[str], None] = print,
    progress: bool = True,
    overlap: bool = True,
) -> dict:
    """Synthesize, validate and caption grasps for every job; write shards + manifest.

    Resumable: finished shards in `out` are kept and skipped (the settings must match
    the ones `out` was started with). With `overlap` (default) each job's validation
    runs on a worker thread while the next job is synthesized (`pipeline.pipelined`):
    the same shards, sooner. Returns the manifest (settings, per-job stats and the
    per-object summary table).
    """
    from jaxgrasp.pipeline import pipelined
    from kinematics import load_hand

    out = Path(out)
    refs = parse_objects(objects_spec)
    jobs = plan_jobs(refs, config)
    settings = {"format_version": FORMAT_VERSION, "config": config.describe()}
    _check_settings(out, settings)
    hand = load_hand(config.hand)
    for stale in (out / SHARDS).glob(".*.tmp.npz"):  # a write a killed run left behind
        stale.unlink()
    done = {job.key: stats for job in jobs if (stats := _finished(out, job)) is not None}
    if done:
        log(f"resuming: {len(done)} of {len(jobs)} jobs already done in {out}")
    todo = [job for job in jobs if job.key not in done]
    _write_manifest(out, settings, jobs, done)
    bar = _progress_bar(len(jobs), len(done), progress)
    started, grasps_made = time.perf_counter(), 0
    cache: dict = {}
    try:
        for job, stats in pipelined(
            todo,
            lambda job: _synthesize_job(job, config, hand, cache),
            lambda job, made: _validate_job(out, job, hand, *made),
            overlap=overlap,
        ):
            done[job.key] = stats
            _write_manifest(out, settings, jobs, done)
            grasps_made += done[job.key]["generated"]
            rate = grasps_made / max(time.perf_counter() - started, 1e-9)
            if bar is not None:
                bar.set_postfix_str(f"{rate:.1f} grasps/s, {job.key}")
                bar.update(1)
            else:
                log(f"  {len(done)}/{len(jobs)} {job.key}: {done[job.key]['valid']} valid")
    finally:
        if bar is not None:
            bar.close()
    manifest = _write_manifest(out, settings, jobs, done)
    log(format_table(manifest["objects"]))
    return manifest


def _synthesize_job(job: Job, config: DatasetConfig, hand, cache: dict) -> tuple:
    """The job's object, scene, optimized grasps and synthesis seconds."""
    from jaxgrasp.objects import object_from_reference
    from sim.scene import build_scene

    if cache.get("ref") != job.object_ref:  # jobs come grouped by object
        obj = object_from_reference(job.object_ref)
        table = resting_height(obj) if config.tabletop else None
        cache.update(ref=job.object_ref, obj=obj, scene=build_scene(hand, obj, table_height=table))
    obj, scene = cache["obj"], cache["scene"]
    t0 = time.perf_counter()
    grasps = synthesize(
        hand,
        obj,
        job.part,
        job.mode,
        num=config.num,
        steps=config.steps,
        seed=job.seed(config.seed),
        config=config.synthesis,
        tabletop=config.tabletop,
    )
    return obj, scene, grasps, time.perf_counter() - t0


def _validate_job(out: Path, job: Job, hand, obj, scene, grasps, synthesis_s: float) -> dict:
    """Validate and caption the job's grasps, write its shard; returns its stats."""
    from sim import validate

    t0 = time.perf_counter()
    report = validate(hand, obj, grasps, part=job.part, scene=scene)
    seconds = synthesis_s + time.perf_counter() - t0  # the job's own work, either thread
    valid = report.valid
    stats = {
        "job": job.key,
        "object_ref": job.object_ref,
        "object": obj.name,
        "part": job.part,
        "mode": job.mode,
        "generated": grasps.count,
        "valid": int(valid.sum()),
        "success_rate": float(report.flags["disturbance"].mean()),
        "pen_mean_mm_valid": float(1e3 * report.checks.penetration[valid].mean())
        if valid.any()
        else None,
        "seconds": seconds,
    }
    extra = {
        "valid": valid,
        **{f"pass:{k}": v for k, v in report.flags.items()},
        "penetration": report.checks.penetration,
        "self_penetration": report.checks.self_penetration,
        "in_contact": report.checks.in_contact,
        "q1": report.checks.q1,
        "pta": report.checks.pta,
        "pga": report.checks.pga,
        "translation": report.disturbance.translation,
        "rotation_deg": report.disturbance.rotation_deg,
        "caption": np.array(report.captions),
        "fingers": np.array(report.fingers),
        "stats": np.array(json.dumps(stats)),
    }
    grasps.save(out / SHARDS / f"{job.key}.npz", extra=extra)
    return stats


def _finished(out: Path, job: Job) -> dict | None:
    path = out / SHARDS / f"{job.key}.npz"
    if not path.is_file():
        return None
    try:
        return json.loads(str(GraspSet.load_extra(path)["stats"]))
    except (GraspSetError, KeyError, ValueError):
        return None  # unreadable: redo the job (writes are atomic, so this is rare)


def _check_settings(out: Path, settings: dict) -> None:
    path = out / MANIFEST
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text())
    except ValueError:
        return  # rewritten below; shards carry their own stats
    mine, now = _comparable({k: old.get(k) for k in settings}), _comparable(settings)
    if mine != now:
        differ = _differences(mine, now)
        shown = "; ".join(differ[:4]) + ("; ..." if len(differ) > 4 else "")
        raise DatasetError(
            f"{out} was generated with other settings ({path}: {shown}); rerun with the "
            "same settings to resume, or choose a new --out"
        )


def _comparable(settings: dict) -> dict:
    """The settings as they decide the dataset. `select_at` matters only with
    `oversample` > 1, and a manifest from before it existed (session 37) chose the
    lowest-energy grasps after the last step: `select_at` 1. An automatic
    `energy_chunk` (None) is the chunk it stands for on this platform, so a manifest
    that names that chunk (written before it was automatic) matches it."""
    synthesis = (settings.get("config") or {}).get("synthesis")
    if not isinstance(synthesis, dict):
        return settings
    synthesis = {"select_at": 1.0, **synthesis}
    if synthesis.get("oversample") == 1.0:
        del synthesis["select_at"]
    if "energy_chunk" in synthesis and synthesis["energy_chunk"] is None:
        batch = synthesis.get("device_batch", SynthesisConfig.device_batch)
        synthesis["energy_chunk"] = energy_chunk_for(SynthesisConfig(device_batch=batch))
    return {**settings, "config": {**settings["config"], "synthesis": synthesis}}


def _differences(there, here, prefix: str = "") -> list[str]:
    """'key: A there, B now' for each (dotted) setting that differs between a manifest's
    settings and this run's; 'missing' where one side lacks it (an older version's)."""
    if isinstance(there, dict) and isinstance(here, dict):
        return [
            line
            for key in sorted(set(there) | set(here))
            for line in _differences(
                there.get(key, _MISSING), here.get(key, _MISSING), f"{prefix}{key}."
            )
        ]
    if there == here:
        return []

    def show(value):
        return "missing" if value is _MISSING else json.dumps(value)

    return [f"{prefix[:-1]}: {show(there)} there, {show(here)} now"]


_MISSING = object()


def _write_manifest(out: Path, settings: dict, jobs: list[Job], done: dict) -> dict:
    finished = [done[j.key] for j in jobs if j.key in done]
    manifest = {
        **settings,
        "jobs_total": len(jobs),
        "jobs_done": len(finished),
        "complete": len(finished) == len(jobs),
        "jobs": finished,
        "objects": summarize_objects(finished),
    }
    write_json_atomic(out / MANIFEST, manifest)
    return manifest


def summarize_objects(stats: list[dict]) -> list[dict]:
    """Per object: grasps generated, valid, disturbance success rate, mean penetration
    of the valid grasps (mm)."""
    rows: dict[str, dict] = {}
    for s in stats:
        r = rows.setdefault(
            s["object_ref"],
            {"object": s["object_ref"], "generated": 0, "valid": 0, "_succ": 0.0, "_pen": 0.0},
        )
        r["generated"] += s["generated"]
        r["valid"] += s["valid"]
        r["_succ"] += s["success_rate"] * s["generated"]
        if s["valid"]:
            r["_pen"] += s["pen_mean_mm_valid"] * s["valid"]
    out = []
    for r in rows.values():
        out.append(
            {
                "object": r["object"],
                "generated": r["generated"],
                "valid": r["valid"],
                "success_rate": r["_succ"] / max(r["generated"], 1),
                "pen_mean_mm_valid": r["_pen"] / r["valid"] if r["valid"] else None,
            }
        )
    return out


def format_table(rows: list[dict]) -> str:
    """The per-object summary as an aligned text table, with a total row."""
    head = f"{'object':28s} {'generated':>9s} {'valid':>6s} {'success':>8s} {'pen mm':>7s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        pen = "-" if r["pen_mean_mm_valid"] is None else f"{r['pen_mean_mm_valid']:.2f}"
        lines.append(
            f"{r['object']:28s} {r['generated']:9d} {r['valid']:6d} "
            f"{100 * r['success_rate']:7.1f}% {pen:>7s}"
        )
    gen = sum(r["generated"] for r in rows)
    val = sum(r["valid"] for r in rows)
    succ = sum(r["success_rate"] * r["generated"] for r in rows) / max(gen, 1)
    lines.append(f"{'total':28s} {gen:9d} {val:6d} {100 * succ:7.1f}%")
    return "\n".join(lines)


def _progress_bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="job", desc="generate", dynamic_ncols=True)


class GraspDataset:
    """The valid grasps of a dataset directory, for training and export.

    Fields (N valid grasps):
        root_pos: Shape: (N, 3). root_quat (wxyz): Shape: (N, 4).
        q_pregrasp / q_grasp / q_squeeze: Shape: (N, n_q) each.
        root_pos_squeeze: root position from the squeeze on. Shape: (N, 3).
        object_index: index into `object_refs`. Shape: (N,).
        captions, parts, modes: one string per grasp.
        hand: the hand's registry name.
    """

    root_pos: np.ndarray
    root_quat: np.ndarray
    q_pregrasp: np.ndarray
    q_grasp: np.ndarray
    q_squeeze: np.ndarray
    root_pos_squeeze: np.ndarray

    def __init__(self, path: str | Path, include_invalid: bool = False):
        path = Path(path)
        if not (path / MANIFEST).is_file():
            raise DatasetError(f"no dataset at {path} (missing {MANIFEST}); run jaxgrasp generate")
        self.path = path
        self.manifest = json.loads((path / MANIFEST).read_text())
        self.hand = self.manifest["config"]["hand"]
        parts: dict[str, list] = {k: [] for k in _GRASP_FIELDS}
        captions, part_names, modes, object_index = [], [], [], []
        self.object_refs: list[str] = []
        for stats in self.manifest["jobs"]:
            shard = path / SHARDS / f"{stats['job']}.npz"
            gs, extra = GraspSet.load_with_extra(shard)
            keep = np.ones(gs.count, bool) if include_invalid else extra["valid"].astype(bool)
            if gs.object_ref not in self.object_refs:
                self.object_refs.append(gs.object_ref)
            for k in _GRASP_FIELDS:
                parts[k].append(np.asarray(getattr(gs, k))[keep])
            captions += [str(c) for c in extra["caption"][keep]]
            part_names += [gs.part] * int(keep.sum())
            modes += [gs.mode] * int(keep.sum())
            object_index += [self.object_refs.index(gs.object_ref)] * int(keep.sum())
        for k in _GRASP_FIELDS:
            setattr(self, k, np.concatenate(parts[k]) if parts[k] else np.zeros((0, 0)))
        self.captions, self.parts, self.modes = captions, part_names, modes
        self.object_index = np.asarray(object_index, dtype=np.int64)
        self._clouds: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.captions)

    @property
    def synthesis_config(self) -> SynthesisConfig:
        """The settings this dataset's grasps were optimized and closed with, from the
        manifest (the current defaults where a manifest lacks one), so that a model
        trained on them refines and closes its samples the same way."""
        synthesis = self.manifest["config"].get("synthesis") or {}
        try:
            return SynthesisConfig.from_dict(synthesis, "synthesis settings")
        except ValueError as e:
            raise DatasetError(f"{self.path / MANIFEST}: {e}") from None

    @property
    def tabletop(self) -> bool:
        """Whether the objects rested on a table (grasps above it, validated with it)."""
        return read_flag(
            self.manifest["config"], "tabletop", DatasetError, str(self.path / MANIFEST)
        )

    @property
    def stage_settings(self) -> dict[str, float]:
        """How the validation closed this dataset's grasps: `sim.grasp_stages`'
        `pregrasp_rad` and `wrist_squeeze` (`synthesis_config.stage_settings`)."""
        return self.synthesis_config.stage_settings

    def object(self, index: int):
        """The `PreparedObject` of `object_refs[index]` (built on each call)."""
        from jaxgrasp.objects import object_from_reference

        return object_from_reference(self.object_refs[index])

    def cloud(self, index: int, n_points: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Full surface point cloud and outward normals of object `index` (the first
        `n_points` of its farthest-point-ordered samples), cached. Shape: (n, 3) each."""
        key = (index, n_points)
        if key not in self._clouds:
            obj = self.object(index)
            pts, nrm = np.asarray(obj.points), np.asarray(obj.normals)
            if n_points > len(pts):
                raise DatasetError(f"object has {len(pts)} surface samples < {n_points}")
            self._clouds[key] = (pts[:n_points].copy(), nrm[:n_points].copy())
        return self._clouds[key]

    def grasp_vectors(self) -> np.ndarray:
        """[root position (3), root quaternion wxyz (4), joints (n_q)] per grasp.
        Shape: (N, 7 + n_q)."""
        return np.concatenate([self.root_pos, self.root_quat, self.q_grasp], axis=1)

    def batches(
        self, batch_size: int, *, seed: int = 0, epochs: int | None = 1, n_points: int = 1024
    ) -> Iterator[dict]:
        """Shuffled training batches: {"points", "normals" (B, n_points, 3), "grasp"
        (B, 7 + n_q), "caption" (list of B str), "object_index" (B,)}. The last, short
        batch of an epoch is dropped. `epochs=None` repeats forever."""
        if len(self) == 0:
            raise DatasetError(f"dataset {self.path} has no valid grasps")
        if batch_size <= 0:
            raise DatasetError(f"batch_size must be positive, got {batch_size}")
        rng = np.random.default_rng(seed)
        vectors = self.grasp_vectors()
        epoch = 0
        while epochs is None or epoch < epochs:
            order = rng.permutation(len(self))
            for start in range(0, len(order) - batch_size + 1, batch_size):
                idx = order[start : start + batch_size]
                clouds = [self.cloud(int(self.object_index[i]), n_points) for i in idx]
                yield {
                    "points": np.stack([c[0] for c in clouds]),
                    "normals": np.stack([c[1] for c in clouds]),
                    "grasp": vectors[idx],
                    "caption": [self.captions[i] for i in idx],
                    "object_index": self.object_index[idx],
                }
            epoch += 1


_GRASP_FIELDS = (
    "root_pos",
    "root_quat",
    "q_pregrasp",
    "q_grasp",
    "q_squeeze",
    "root_pos_squeeze",
)


def export_dexgraspbench(dataset: str | Path | GraspDataset, out: str | Path) -> int:
    """Write the valid grasps in DexGraspBench's format: per object a folder of .npy
    files, one dict per grasp with obj_path (an exported .obj), obj_scale, obj_pose
    (xyz + wxyz quaternion), pregrasp_qpos / grasp_qpos / squeeze_qpos (root xyz, root
    wxyz quaternion, then every hand joint in MJCF order), joint_names and caption.
    Returns the number of grasps written."""
    import jax

    from kinematics import full_joint_angles, load_hand

    ds = dataset if isinstance(dataset, GraspDataset) else GraspDataset(dataset)
    out = Path(out)
    hand = load_hand(ds.hand)
    joints = jax.jit(jax.vmap(full_joint_angles, in_axes=(None, 0)))
    names = list(hand.joint_names)
    written = 0
    for index, ref in enumerate(ds.object_refs):
        rows = np.flatnonzero(ds.object_index == index)
        if not len(rows):
            continue
        key = Job(ref, None, "x").key.split("__")[0]
        folder = out / key
        folder.mkdir(parents=True, exist_ok=True)
        mesh_path = (folder / "mesh.obj").resolve()
        ds.object(index).trimesh().export(mesh_path)
        stages = {}
        for name in ("pregrasp", "grasp", "squeeze"):
            pos = ds.root_pos_squeeze if name == "squeeze" else ds.root_pos
            q = np.asarray(joints(hand, getattr(ds, f"q_{name}")[rows]))
            stages[name] = np.concatenate([pos[rows], ds.root_quat[rows], q], axis=1)
        for k, i in enumerate(rows):
            record = {
                "obj_path": str(mesh_path),
                "obj_scale": 1.0,
                "obj_pose": np.array([0, 0, 0, 1, 0, 0, 0], dtype=np.float64),
                **{f"{s}_qpos": stages[s][k].astype(np.float64) for s in stages},
                "joint_names": names,
                "hand": ds.hand,
                "part": ds.parts[i],
                "caption": ds.captions[i],
            }
            # DexGraspBench reads each file with np.load(...).item(): a 0-d object array.
            path = folder / f"{ds.parts[i] or 'whole'}_{ds.modes[i]}_{k:05d}.npy"
            np.save(path, np.array(record, dtype=object))
            written += 1
    return written
