"""The `jaxgrasp` command line: thin wrappers over the library API."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from jaxgrasp.synthesis import SynthesisConfig
from jaxgrasp.training import TrainConfig
from sim.config import SimConfig

_TRAIN_DEFAULTS = TrainConfig()
_SYNTHESIS_DEFAULTS = SynthesisConfig()
_SIM_DEFAULTS = SimConfig()

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


def validate(
    grasps: tyro.conf.Positional[Path],
    backend: Literal["mujoco", "mjx"] = "mujoco",
    json: Path | None = None,
    table_height: float | None = None,
    sim: SimConfig = _SIM_DEFAULTS,
) -> None:
    """Validate a saved grasp set in simulation (disturbance test + exact checks).

    Args:
        grasps: a grasp-set .npz (`GraspSet.save`, `jaxgrasp synthesize`).
        backend: mujoco (MuJoCo C, multi-threaded: the CPU path) or mjx (accelerators).
        json: write the summary and per-grasp results here.
        table_height: add a table plane at this height (object frame); default: the
            grasp set's own table (tabletop grasps), else none.
        sim: physics, protocol and acceptance thresholds (`sim.SimConfig`).
    """
    import json as _json

    from jaxgrasp.grasp_set import GraspSet
    from jaxgrasp.objects import object_from_reference
    from jaxgrasp.pipeline import stage_logger
    from kinematics import load_hand
    from sim import validate as run_validation

    gs = GraspSet.load(grasps)
    hand_model = load_hand(gs.hand)
    obj = object_from_reference(gs.object_ref, gs.object_scale)
    print(f"validating {gs.count} grasps of {obj.name} on {backend}")
    report = run_validation(
        hand_model,
        obj,
        gs,
        part=gs.part,
        backend=backend,
        config=sim,
        table_height=table_height,
        progress=stage_logger(),
    )
    print(format_summary(report.summary))
    if json is not None:
        json.parent.mkdir(parents=True, exist_ok=True)
        json.write_text(_json.dumps(report.to_json(), indent=2))
        print(f"wrote {json}")


def synthesize(
    mesh: tyro.conf.Positional[str],
    out: Path = Path("out/synthesis"),
    part: str | None = None,
    mode: Literal["wrap", "pinch"] = "wrap",
    num: int = 256,
    steps: int | None = None,
    seed: int = 0,
    scale: float = 1.0,
    hand: str = "shadow",
    validate: bool = False,
    tabletop: bool = False,
    synthesis: SynthesisConfig = _SYNTHESIS_DEFAULTS,
    sim: SimConfig = _SIM_DEFAULTS,
) -> None:
    """Optimize grasps of one object; write grasps.npz, pictures and summary.json.

    Args:
        mesh: a mesh file (GLB/GLTF parts become named parts) or procedural:CATEGORY:SEED.
        out: output directory.
        part: target part (default: the whole object).
        mode: wrap (5 fingertips + palm) or pinch (thumb, index, middle + palm).
        num: number of grasps.
        steps: optimizer iterations (default: the library's).
        seed: random seed.
        scale: mesh scale (0.001 for millimetres).
        hand: registered hand name.
        validate: also validate in MuJoCo (disturbance test + exact checks).
        tabletop: the object rests on a table at its lowest point (z up); grasps keep
            above it.
        synthesis: optimizer, energy and initialization settings
            (`jaxgrasp.SynthesisConfig`; --steps overrides its steps).
        sim: validation physics and thresholds (`sim.SimConfig`), with --validate.
    """
    from jaxgrasp.objects import object_from_reference
    from jaxgrasp.pipeline import run_synthesis

    obj = object_from_reference(mesh, scale)
    summary = run_synthesis(
        obj,
        out,
        hand_name=hand,
        part=part,
        mode=mode,
        num=num,
        steps=steps,
        seed=seed,
        validate=validate,
        tabletop=tabletop,
        config=synthesis,
        sim_config=sim,
    )
    _print_run(summary, out)


def demo(out: Path = Path("out/demo"), num: int = 64, seed: int = 0) -> None:
    """The main job on a built-in default: Wrap grasps of a procedural bottle's body with
    the Shadow Hand, validated in MuJoCo; grasps, pictures and summary.json in OUT.

    Args:
        out: output directory.
        num: number of grasps.
        seed: random seed.
    """
    from jaxgrasp import objects
    from jaxgrasp.pipeline import run_synthesis

    obj = objects.make_object("bottle", 0)
    summary = run_synthesis(obj, out, part="body", mode="wrap", num=num, seed=seed)
    _print_run(summary, out)


def generate(
    objects: str,
    out: Path,
    num: int = 256,
    steps: int | None = None,
    modes: tuple[Literal["wrap", "pinch"], ...] = ("wrap",),
    whole_object: bool = False,
    no_parts: bool = False,
    seed: int = 0,
    hand: str = "shadow",
    tabletop: bool = False,
    quiet: bool = False,
    overlap: bool = True,
    synthesis: SynthesisConfig = _SYNTHESIS_DEFAULTS,
) -> None:
    """Generate a captioned dataset: synthesis -> validation -> captions for every object
    x part x mode, one shard per job + manifest.json. Kill it any time; rerunning the same
    command resumes and gives the same dataset.

    Args:
        objects: object spec, e.g. `mug:0-2,bottle:0,all:10` (CATEGORY:SEEDS, all:SEEDS,
            or mesh files), comma-separated.
        out: dataset directory.
        num: grasps optimized per job.
        steps: optimizer iterations (default: the library's).
        modes: contact modes, one job each.
        whole_object: also a whole-object job (no target part) per object.
        no_parts: skip the per-part jobs (with --whole-object: whole-object grasps only).
        seed: dataset seed.
        hand: registered hand name.
        tabletop: objects rest on a table at their lowest point; grasps stay above it.
        quiet: no progress bar.
        overlap: validate each job on a worker thread while the next one is synthesized
            (the same dataset, sooner; --no-overlap runs one stage at a time).
        synthesis: optimizer, energy and initialization settings
            (`jaxgrasp.SynthesisConfig`; --steps overrides its steps). A dataset resumes
            only with the settings it was started with.
    """
    from jaxgrasp.dataset import DatasetConfig, generate_dataset

    config = DatasetConfig(
        num=num,
        steps=steps,
        modes=tuple(modes),
        parts=not no_parts,
        whole_object=whole_object,
        seed=seed,
        hand=hand,
        tabletop=tabletop,
        synthesis=synthesis,
    )
    manifest = generate_dataset(objects, out, config, progress=not quiet, overlap=overlap)
    valid = sum(j["valid"] for j in manifest["jobs"])
    print(f"wrote {out}/manifest.json and {manifest['jobs_done']} shards ({valid} valid grasps)")


def export(
    dataset: tyro.conf.Positional[Path],
    out: Path,
    format: Literal["dexgraspbench"] = "dexgraspbench",
) -> None:
    """Export a dataset's valid grasps to another tool's format.

    Args:
        dataset: a `jaxgrasp generate` output directory.
        out: output directory.
        format: dexgraspbench (per-object folders of per-grasp .npy dicts).
    """
    from jaxgrasp.dataset import export_dexgraspbench

    n = export_dexgraspbench(dataset, out)
    print(f"wrote {n} grasps ({format}) to {out}")


def show(grasps: tyro.conf.Positional[Path], out: Path = Path("out/show"), top_k: int = 4) -> None:
    """PNG pictures of the best grasps of a grasp set (headless).

    Args:
        grasps: a grasp-set .npz.
        out: output directory.
        top_k: how many grasps (lowest energy first).
    """
    from jaxgrasp.pipeline import show_grasps

    for p in show_grasps(grasps, out, top_k=top_k):
        print(f"wrote {p}")


def _print_run(summary: dict, out: Path) -> None:
    keys = (
        "num_grasps",
        "num_valid",
        "valid_fraction",
        "success_rate",
        "pen_mean_mm",
        "self_pen_mean_mm",
        "q1_mean",
        "pta",
        "pga",
        "grasps_per_s",
    )
    validated = summary.get("num_valid") is not None
    for k in keys:
        v = summary.get(k)
        if v is None and not validated:
            continue  # a validation figure: the line below says it was not run
        if v is None:  # what was not measured says why, rather than "None"
            v = "— (no target part)" if k in ("pta", "pga") else "—"
        print(f"{k:18s} {v:.4g}" if isinstance(v, float) else f"{k:18s} {v}")
    if not validated:
        print(f"{'validation':18s} not run (add --validate for the physics checks)")
    print(f"wrote {out}/grasps.npz, {out}/summary.json, {len(summary['pictures'])} pictures")


def format_summary(summary: dict) -> str:
    """A validation summary as aligned text, physics parameters included."""
    rows = [
        ("grasps", f"{summary['num_grasps']}"),
        ("valid", f"{summary['num_valid']} ({100 * summary['valid_fraction']:.1f} %)"),
        ("disturbance success", f"{100 * summary['success_rate']:.1f} %"),
        (
            "disturbance failures",
            f"moved {100 * summary['disturbance_moved']:.1f} %, "
            f"turned only {100 * summary['disturbance_turned_only']:.1f} %",
        ),
        (
            "penetration mean / max",
            f"{summary['pen_mean_mm']:.2f} / {summary['pen_max_mm']:.2f} mm",
        ),
        (
            "self-penetration mean / max",
            f"{summary['self_pen_mean_mm']:.2f} / {summary['self_pen_max_mm']:.2f} mm",
        ),
        ("Q1 mean", f"{summary['q1_mean']:.4f}"),
        (
            "PTA / PGA",
            "— (no target part)"
            if summary["pta"] is None
            else f"{100 * summary['pta']:.1f} % / {100 * summary['pga']:.1f} %",
        ),
        ("fingers in contact (mean)", f"{summary['contacts_mean']:.2f}"),
        ("fingers in contact once closed", f"{summary['closed_contacts_mean']:.2f}"),
        (
            "pass rate by criterion",
            ", ".join(f"{k} {100 * v:.0f} %" for k, v in summary["pass_rate"].items()),
        ),
        ("backend", f"{summary['backend']} ({summary['validated_grasps_per_s']:.1f} grasps/s)"),
        ("physics", ", ".join(f"{k}={v}" for k, v in summary["config"].items())),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def train(
    dataset: tyro.conf.Positional[Path],
    out: Path,
    config: Annotated[TrainConfig, tyro.conf.arg(name="")] = _TRAIN_DEFAULTS,
    quiet: bool = False,
) -> None:
    """Train the flow-matching grasp generator on a dataset. Checkpoints go to
    OUT/checkpoints every --checkpoint-every steps; rerunning the same command after a
    kill resumes from the last one. Writes OUT/loss.png.

    Args:
        dataset: a `jaxgrasp generate` output directory.
        out: run directory.
        config: training settings.
        quiet: no progress bar.
    """
    from jaxgrasp.training import train as train_model

    result = train_model(dataset, out, config, progress=not quiet)
    last = result.losses[-1][1] if result.losses else float("nan")
    stop = " (stopped at --max-minutes)" if result.stopped_early else ""
    print(f"trained to step {result.step}{stop}, loss {last:.4f}; wrote {out}/loss.png")


def evaluate(
    run: tyro.conf.Positional[Path],
    objects: str,
    num: int = 32,
    refine_steps: int = 200,
    refine_oversample: float = 1.0,
    modes: tuple[Literal["wrap", "pinch"], ...] = ("wrap",),
    cloud: Literal["full", "partial"] = "full",
    seed: int = 0,
    temperature: float = 1.0,
    anchor_temperature: float | None = None,
    choose_temperature: tuple[float, ...] = (),
    open_by: float = 0.0,
    open_to_clear: bool = False,
    choose_open_by: tuple[float, ...] = (),
    choose_objects: str | None = None,
    guidance: float = 0.0,
    oversample: float = 1.0,
    json: Path | None = None,
    overlap: bool = True,
    average: bool = True,
) -> None:
    """Sample grasps for (held-out) objects, validate them in MuJoCo raw and refined,
    and print Suc / held / PTA / PGA / contact-mode accuracy (at the stored grasp pose
    and once the hand has closed in the simulation) / diversity (DexVLG Table 2).
    A model trained on a tabletop dataset is evaluated with its objects on a table.

    Args:
        run: a `jaxgrasp train` run directory.
        objects: object spec (as for `jaxgrasp generate`).
        num: samples per object x part x mode.
        refine_steps: optimizer steps of the refinement (0: raw only).
        refine_oversample: refine k x num samples and keep the num of lowest energy
            after `select_at` of the steps (the training data's synthesis setting,
            default a quarter); the raw figures are the first num samples'.
        modes: contact modes to instruct.
        cloud: full surface cloud or one camera view (guidance and oversample are told
            where its camera was).
        seed: sampling seed.
        temperature: scale of the starting noise (< 1: samples nearer the model's
            modes, less diverse).
        anchor_temperature: an anchored model's temperature for drawing the cloud
            point each palm goes against (default: --temperature).
        choose_temperature: candidate temperatures; the one whose raw samples pass Suc
            most often on --choose-objects is used instead of --temperature
            (`jaxgrasp.choose_temperature`; the candidates' figures go in --json).
        open_by: open the sampled fingers by this much (rad; each closing joint backed
            off towards the open pose) so that the squeeze closes their last
            millimetres (`generate`'s; 0: the model's joints).
        open_to_clear: then back each sample's palm off and open each of its fingers
            by the least step that takes it out of the object's cloud (`generate`'s;
            with --choose-open-by, on top of each candidate opening).
        choose_open_by: candidate openings; the one whose raw samples pass Suc most
            often on --choose-objects (at the chosen temperature, with
            --choose-temperature) is used instead of --open-by
            (`jaxgrasp.choose_open_by`; the figures go in --json).
        choose_objects: the selection split for --choose-temperature and
            --choose-open-by (object spec; keep it apart from --objects, or the choice
            grades itself).
        guidance: > 0: also validate the same samples drawn with physics guidance of
            this step size (`generate`'s; reported as "guided"); 0: not.
        oversample: > 1: also validate the num of k x num samples (drawn with
            --guidance) that sit best against the cloud (`generate`'s; reported as
            "ranked"); 1: not.
        json: also write the results here.
        overlap: validate each target on a worker thread while the next one is sampled
            and refined (the same results, sooner; --no-overlap runs one at a time).
        average: sample with the moving average of the run's weights where it kept one
            (`TrainConfig.ema_decay`); --no-average: the checkpoint step's own weights.
    """

    import dataclasses

    from jaxgrasp._io import write_json_atomic
    from jaxgrasp.dataset import parse_objects
    from jaxgrasp.evaluation import EvalConfig, format_table
    from jaxgrasp.evaluation import choose_open_by as choose_opening
    from jaxgrasp.evaluation import choose_temperature as choose
    from jaxgrasp.evaluation import evaluate as evaluate_model
    from jaxgrasp.generator import GraspGenerator

    if bool(choose_temperature or choose_open_by) != (choose_objects is not None):
        raise ValueError(
            "--choose-temperature / --choose-open-by and --choose-objects go together: "
            "candidate values and the objects to choose on (not the --objects the model "
            "is judged on)"
        )
    targets = parse_objects(objects)
    selection = parse_objects(choose_objects) if choose_objects is not None else []
    model = GraspGenerator.load(run, average=average)
    config = EvalConfig(
        num=num,
        refine_steps=refine_steps,
        refine_oversample=refine_oversample,
        modes=tuple(modes),
        cloud=cloud,
        seed=seed,
        temperature=temperature,
        anchor_temperature=anchor_temperature,
        guidance=guidance,
        oversample=oversample,
        open_by=open_by,
        open_to_clear=open_to_clear,
    )
    choices = {}
    if choose_temperature:
        choice = choose(model, selection, choose_temperature, config)
        print(f"chose temperature {choice['temperature']:g} on {choose_objects}")
        config = dataclasses.replace(config, temperature=choice["temperature"])
        choices["temperature_choice"] = choice
    if choose_open_by:
        choice = choose_opening(model, selection, choose_open_by, config)
        print(f"chose open_by {choice['open_by']:g} on {choose_objects}")
        config = dataclasses.replace(config, open_by=choice["open_by"])
        choices["open_by_choice"] = choice
    result = evaluate_model(model, targets, config, overlap=overlap)
    result.update(choices)
    print(format_table(result["rows"]))
    if result["tabletop"]:
        print("objects rested on a table, as in the training dataset (Suc counts table hits)")
    if json is not None:
        write_json_atomic(json, result)
        print(f"wrote {json}")


def sample(
    run: tyro.conf.Positional[Path],
    object: str,
    instruction: str,
    out: Path,
    num: int = 64,
    steps: int = 16,
    method: Literal["euler", "midpoint"] = "midpoint",
    seed: int = 0,
    temperature: float = 1.0,
    anchor_temperature: float | None = None,
    guidance: float = 0.0,
    oversample: float = 1.0,
    view: int | None = None,
    open_by: float = 0.0,
    open_to_clear: bool = False,
    average: bool = True,
) -> None:
    """Sample grasps from a trained model for an object's cloud and an instruction,
    and save them as a grasp set (view with `jaxgrasp show`, check with `jaxgrasp validate`).
    A model trained on a tabletop dataset gets the object on a table at its lowest point:
    the grasp set records the table, and `jaxgrasp validate` checks the grasps against it.

    Args:
        run: a `jaxgrasp train` run directory.
        object: object reference (procedural:CATEGORY:SEED or a mesh file).
        instruction: e.g. "Grasp the handle of the mug object, with contacts on thumb,
            index, middle".
        out: grasp-set file (.npz).
        num: grasps.
        steps: integration steps.
        method: euler or midpoint.
        seed: sampling seed.
        temperature: scale of the starting noise (< 1: samples nearer the model's
            modes, less diverse; 0: one grasp, repeated).
        anchor_temperature: an anchored model's temperature for drawing the cloud
            point each palm goes against (0: the likeliest; default: --temperature).
        guidance: physics guidance: each integration step also moves the samples'
            hands out of the object's cloud, by this step size (0: off; at 1 the
            benchmark's Suc went from 17.5 % raw to 26.8 %, README "Grasp generator").
        oversample: draw k x num samples and keep the num whose hands sit best against
            the object's cloud, best first (1: the model's samples as drawn).
        view: sample from what one camera sees of the object instead of its whole
            surface: view 0-7 of the training's default single views (80 cm away,
            45 degrees down, azimuth view x 45 degrees); guidance and oversample then
            know the camera (`generate(..., camera=)`). None: the full cloud.
        open_by: open the sampled fingers by this much (rad; each closing joint backed
            off towards the open pose), so that the squeeze closes their last
            millimetres instead of the grasp starting inside the object (0: the
            model's joints as sampled).
        open_to_clear: then back each grasp's palm off along its normal and open each
            of its fingers by the least step that takes it out of the object's cloud
            (the one --view sees, with --view), so that the squeeze closes the rest.
        average: sample with the moving average of the run's weights where it kept one
            (`TrainConfig.ema_decay`); --no-average: the checkpoint step's own weights.
    """
    import numpy as np

    from jaxgrasp.generator import GenerationError, GraspGenerator, generate
    from jaxgrasp.objects import object_from_reference
    from jaxgrasp.point_views import single_view
    from jaxgrasp.synthesis import resting_height

    n_views = _TRAIN_DEFAULTS.n_views
    if view is not None and not 0 <= view < n_views:
        raise GenerationError(f"--view takes 0-{n_views - 1} (got {view})")
    obj = object_from_reference(object)
    points, normals, camera = np.asarray(obj.points), np.asarray(obj.normals), None
    if view is not None:
        seen, camera = single_view(points, normals, view, n_views)
        points, normals = points[seen], normals[seen]
    model = GraspGenerator.load(run, average=average)
    grasps = generate(
        model,
        points,
        instruction,
        num,
        camera=camera,
        normals=normals,
        steps=steps,
        method=method,
        seed=seed,
        temperature=temperature,
        anchor_temperature=anchor_temperature,
        guidance=guidance,
        oversample=oversample,
        open_by=open_by,
        open_to_clear=open_to_clear,
        object_ref=object,
        table_height=resting_height(obj) if model.tabletop else None,
    )
    grasps.save(out)
    table = grasps.table_height
    on_table = "" if table is None else f" (object on a table at z = {table:.4f} m)"
    print(f"wrote {grasps.count} grasps to {out}{on_table}")


COMMANDS: dict[str, Callable[..., Any]] = {
    "demo": demo,
    "synthesize": synthesize,
    "show": show,
    "generate": generate,
    "export": export,
    "train": train,
    "sample": sample,
    "evaluate": evaluate,
    "hand": hand,
    "validate": validate,
    "hands": hands,
    "object": object_info,
}
OBJECT_COMMANDS: dict[str, Callable[..., Any]] = {
    "list": objects_list,
    "export": objects_export,
}


def main(argv: Annotated[list[str] | None, tyro.conf.Suppress] = None) -> None:
    from jaxgrasp.cache import enable_compilation_cache
    from jaxgrasp.dataset import DatasetError
    from jaxgrasp.generator import GenerationError
    from jaxgrasp.grasp_set import GraspSetError
    from jaxgrasp.object_model import ObjectError
    from jaxgrasp.synthesis import SynthesisError
    from jaxgrasp.training import TrainingError
    from kinematics import HandModelError

    enable_compilation_cache()
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
    except (
        HandModelError,
        ObjectError,
        GraspSetError,
        DatasetError,
        SynthesisError,
        TrainingError,
        GenerationError,
        FileNotFoundError,
        ValueError,
    ) as err:
        print(f"jaxgrasp: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
