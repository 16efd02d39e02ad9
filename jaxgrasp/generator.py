"""Sampling grasps from a trained flow-matching model (DESIGN.md §10).

`GraspGenerator.load(run)` rebuilds the network from a training run and its latest
checkpoint; `generate(model, points, instruction, num=...)` integrates the learned
velocity field from noise (t = 0) to grasps (t = 1) in `steps` Euler or midpoint steps
and returns a `GraspSet` (pregrasp / squeeze joints from `sim.grasp_stages`, with the
training dataset's settings). The noise
is scaled by `temperature` (1: the learned distribution; below 1 the samples gather
towards its modes, as in temperature sampling of normalizing flows). An anchored model
(`TrainConfig.anchored`) first draws, for each sample, the cloud point its palm goes
against from its anchor head (at `anchor_temperature`, by default the same; 0 takes the
likeliest point), and its translations are relative to that point. Instructions read
best in the training captions' form ("Grasp the body of the bottle object, with
contacts on thumb, index, middle, ring, little, palm": the palm is named where it
touches).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import warnings
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from energies._checks import is_number, read_flag
from jaxgrasp._hand_depth import cloud_fit, cloud_sdf, fit_score, grasp_surface, view_sdf
from jaxgrasp._open_to_clear import open_to_clear as clear_of_cloud
from jaxgrasp.flow_model import FlowNet
from jaxgrasp.grasp_set import GraspSet
from jaxgrasp.grasp_vector import Normalizer, from_vector
from jaxgrasp.instruction import EXAMPLE, InstructionError, Tokenizer, parse_instruction
from jaxgrasp.sdf import SDFGrid, sdf_query
from jaxgrasp.sentence_encoder import SentenceEncoderName, sentence_vectors
from jaxgrasp.synthesis import MODES, SynthesisConfig
from jaxgrasp.training import (
    RUN_FILE,
    TrainConfig,
    TrainingError,
    model_config,
    recorded_settings,
    restore_params,
)
from kinematics import HandModel, load_hand
from sim.grasps import back_off, grasp_stages

METHODS = ("euler", "midpoint")


class GenerationError(ValueError):
    """Bad sampling input: empty or non-finite cloud, empty instruction, bad counts."""


@dataclasses.dataclass(frozen=True)
class GraspGenerator:
    """A trained model with what it needs at sampling time.

    Fields:
        graphdef / params: the Flax NNX network, split.
        normalizer: grasp-vector statistics of the training data.
        tokenizer: the instruction vocabulary.
        hand: the hand the model generates for.
        train_config: the run's training settings (run.json, older runs included:
            `training.recorded_settings`); `n_points` (points per cloud) and
            `sentence_encoder` (the frozen pretrained sentence encoder it was trained
            with; None: word embeddings only) come from it.
        step: the checkpoint's training step.
        train_objects: references of the objects the model was trained on.
        synthesis: the settings its training grasps were optimized and closed with
            (`GraspDataset.synthesis_config`): samples get their pregrasp and squeeze
            poses as the training grasps did (`stage_settings`), and `evaluate`
            refines them with these energies. An earlier run that recorded only the
            closing settings ("stages") gets those and the defaults for the rest; one
            that recorded neither, the defaults.
        tabletop: the training objects rested on a table (`DatasetConfig.tabletop`):
            `evaluate` puts its objects on one too, refines above it and validates
            with it. False for runs that did not record it.
    """

    graphdef: nnx.GraphDef
    params: nnx.State
    normalizer: Normalizer
    tokenizer: Tokenizer
    hand: HandModel
    train_config: TrainConfig
    step: int
    train_objects: tuple[str, ...] = ()
    synthesis: SynthesisConfig = SynthesisConfig()
    tabletop: bool = False

    @property
    def n_points(self) -> int:
        return self.train_config.n_points

    @property
    def sentence_encoder(self) -> SentenceEncoderName | None:
        return self.train_config.sentence_encoder

    @property
    def stage_settings(self) -> dict[str, float]:
        """`sim.grasp_stages`' settings of the training grasps (pregrasp, squeeze)."""
        return self.synthesis.stage_settings

    @classmethod
    def load(
        cls, run: str | Path, step: int | None = None, *, average: bool = True
    ) -> GraspGenerator:
        """The generator of a training run at `step` (its last checkpoint by default),
        with the parameters' moving average (`TrainConfig.ema_decay`) where the run kept
        one, or with `average=False` the step's own parameters."""
        run = Path(run)
        if not (run / RUN_FILE).is_file():
            raise TrainingError(f"no training run at {run} (missing {RUN_FILE}); jaxgrasp train")
        info = json.loads((run / RUN_FILE).read_text())
        try:
            config = TrainConfig(**recorded_settings(info))
        except (TypeError, TrainingError) as e:  # an unknown or invalid setting
            raise TrainingError(f"{run / RUN_FILE}: {e}") from None
        tokenizer = Tokenizer.from_json(info["tokenizer"])
        try:
            net = FlowNet(
                model_config(config, info["grasp_dim"], len(tokenizer.vocab)), nnx.Rngs(0)
            )
        except InstructionError as e:  # its sentence encoder is not installed
            raise TrainingError(str(e)) from None
        graphdef, template = nnx.split(net)
        params, step = restore_params(run, template, step, average)
        # "stages": the earlier run format, which recorded only the closing settings.
        synthesis = info.get("synthesis", info.get("stages", {}))
        try:
            synthesis = SynthesisConfig.from_dict(synthesis, "synthesis settings")
        except ValueError as e:
            raise TrainingError(f"{run / RUN_FILE}: {e}") from None
        tabletop = read_flag(info, "tabletop", TrainingError, str(run / RUN_FILE))
        return cls(
            graphdef,
            params,
            Normalizer.from_json(info["normalizer"]),
            tokenizer,
            load_hand(info["hand"]),
            config,
            int(step),
            tuple(info.get("objects", ())),
            synthesis,
            tabletop,
        )


def generate(
    model: GraspGenerator,
    points,
    instruction: str,
    num: int = 64,
    *,
    normals=None,
    steps: int = 16,
    method: str = "midpoint",
    seed: int = 0,
    temperature: float = 1.0,
    anchor_temperature: float | None = None,
    object_name: str | None = None,
    object_ref: str = "point-cloud",
    table_height: float | None = None,
    guidance: float = 0.0,
    oversample: float = 1.0,
    camera=None,
    open_by: float = 0.0,
    open_to_clear: bool = False,
) -> GraspSet:
    """Sample `num` grasps for an object-frame point cloud and an instruction.

    Args:
        points: the object's points (object frame, metres). Shape: (n, 3).
        instruction: e.g. "Grasp the handle of the mug object, with contacts on thumb,
            index, middle".
        normals: outward normals. Shape: (n, 3). Estimated from the points if None
            (`estimate_normals`, oriented towards `camera` where it is given).
        steps: integration steps from noise to grasps.
        method: "euler" or "midpoint".
        seed: noise and cloud resampling (same seed, same grasps).
        temperature: scale of the starting noise (its standard deviation). 1 samples
            the learned distribution; below 1 the samples gather towards its modes
            (fewer failures, less diversity; 0 gives `num` copies of one grasp).
        anchor_temperature: an anchored model's temperature for drawing the cloud point
            each palm goes against (0: the likeliest point for all); None: `temperature`.
        table_height: the table plane z = table_height (object frame) the object rests
            on, recorded on the grasp set so that `validate` adds the table. Default: for
            a tabletop model (`model.tabletop`) the cloud's lowest point (pass the
            mesh's, `resting_height(obj)`, where a partial view may miss the bottom);
            none for a model of floating objects.
        guidance: physics guidance (DexGrasp Anything's physics-guided sampling): after
            each integration step every sample moves down the gradient of the depth
            (mm) of its predicted grasp's hand surface samples below the given cloud
            (the tangent plane of their nearest cloud point, `_hand_depth.cloud_sdf`),
            times `guidance` x the step's length; 0: off (the model's own samples).
            Without `camera` it reads the cloud as a closed surface: for one camera
            view of an object it would take the unseen side for the inside and push
            hands off it (a warning says so where the normals look like one view).
        oversample: k >= 1 draws ceil(k * num) samples and returns the `num` that sit
            best against the given cloud (`_hand_depth.cloud_fit`: the depth of the
            deepest hand point below it, or below the table where there is one, plus a
            third of the instructed contacts' mean gap above it, in mm), best first,
            with those two figures in the set's `terms` ("cloud_depth_mm",
            "cloud_gap_mm"). The first `num` drawn are the samples k = 1 returns, to
            float rounding (the noise does not depend on the count). 1: no choice.
        camera: where the camera that saw `points` was (object frame, m; shape (3,)),
            for a single-view cloud: guidance and `oversample` then read the cloud as
            what one view shows (`_hand_depth.view_sdf`: outside where the camera saw
            through, a 1 cm band behind the seen surface inside, unknown beyond) rather
            than as a closed surface. None: a full cloud.
        open_by: back each closing joint of every sample off towards the hand's open
            pose by this much (rad, `sim.back_off`; 0: the model's joints as sampled),
            before `oversample`'s choice. The network sets fingers a few millimetres
            either side of the surface; opened, the grasp starts outside it and the
            squeeze (`sim.grasp_stages`, the validation's closing) closes the rest. On
            the benchmark's targets at temperature 1, 0.06 rad took raw Suc from 12 %
            to 20 % (README, "Opening the sampled fingers").
        open_to_clear: then back each sample's palm off along its normal, and open each
            of its fingers, by the least step (1 mm up to 14 mm; 0.01 rad up to 0.14 rad)
            that takes it out of the given cloud (the fingers 1 mm above it), before
            `oversample`'s choice (`_open_to_clear`); the set's `terms` record how far
            ("palm_back_mm", "finger_open_rad": the fingers' mean). It reads only the
            cloud, as guidance does (and the camera's view of it, given `camera`).
            Session 55, a 20000-step model's raw samples on the benchmark's held-out
            targets: Suc 39.9 % against 31.9 % opened by a fixed 0.04 rad (README,
            "Opening the samples out of the cloud").
    Returns:
        A `GraspSet` (energy unknown: NaN) whose part and mode come from the instruction.
    """
    if camera is not None:
        camera = np.asarray(camera, dtype=np.float64)
        if camera.shape != (3,) or not np.all(np.isfinite(camera)):
            raise GenerationError(f"camera must be a finite position (x, y, z), got {camera}")
    pts, nrm = _check_cloud(points, normals, camera)
    if not isinstance(instruction, str) or not instruction.strip():
        raise GenerationError("instruction is empty; e.g. 'Grasp the handle of the mug object'")
    if num <= 0 or steps <= 0:
        raise GenerationError(f"num and steps must be positive (got num={num}, steps={steps})")
    if method not in METHODS:
        raise GenerationError(f"unknown method '{method}'; choose one of {', '.join(METHODS)}")
    for name, value in (
        ("temperature", temperature),
        ("anchor_temperature", anchor_temperature),
        ("guidance", guidance),
        ("open_by", open_by),
    ):
        if value is not None and not (is_number(value) and value >= 0):
            raise GenerationError(f"{name} must be a finite number >= 0 (got {value})")
    if not isinstance(open_to_clear, (bool, np.bool_)):
        raise GenerationError(f"open_to_clear must be True or False (got {open_to_clear!r})")
    if not (is_number(oversample) and 1 <= oversample <= 64):
        raise GenerationError(f"oversample must be a number in [1, 64] (got {oversample})")
    if table_height is not None and not is_number(table_height):
        raise GenerationError(f"table_height must be a finite number (got {table_height})")
    if table_height is None and model.tabletop:
        table_height = float(pts[:, 2].min())
    try:
        tokens = model.tokenizer.encode([instruction])
        sentence = sentence_vectors(model.sentence_encoder, [instruction])
    except InstructionError as e:
        raise GenerationError(str(e)) from None
    unseen = model.tokenizer.unknown(instruction)
    if unseen:
        reads = (
            "its sentence encoder still reads them"
            if model.sentence_encoder
            else "the model reads each as one unknown word"
        )
        warnings.warn(
            f"words the training captions never used: {', '.join(unseen)} ({reads}); "
            f"captions read like {EXAMPLE!r}",
            stacklevel=2,
        )
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(pts), model.n_points, replace=len(pts) < model.n_points)
    drawn = math.ceil(num * oversample - 1e-9)
    grid: SDFGrid | None = None
    if guidance > 0 or drawn > num or open_to_clear:
        _warn_if_one_view(nrm, camera)
        field = cloud_sdf(pts, nrm) if camera is None else view_sdf(pts, nrm, camera)
        # Padded to one shape (the grids cap their node count): one compilation for all.
        grid = jax.tree.map(jnp.asarray, field.bucketed())
    guide = None
    if grid is not None and guidance > 0:
        guide = _Guide(
            model.hand,
            jnp.asarray(model.normalizer.mean),
            jnp.asarray(model.normalizer.std),
            grid,
            jnp.float32(guidance),
        )
    z, origin = _integrate(
        model.graphdef,
        model.params,
        jnp.asarray(pts[idx])[None],
        jnp.asarray(nrm[idx])[None],
        jnp.asarray(tokens),
        jnp.asarray(sentence),
        jax.random.key(seed),
        jnp.float32(temperature),
        jnp.float32(temperature if anchor_temperature is None else anchor_temperature),
        drawn,
        steps,
        method,
        guide,
    )
    x = model.normalizer.denormalize(np.asarray(z, dtype=np.float64))
    x[:, :3] += np.asarray(origin, dtype=np.float64)  # an anchored model's anchor points
    pos, quat, q = from_vector(x)
    lo, hi = np.asarray(model.hand.q_range, dtype=np.float64).T
    q = np.clip(q, lo, hi)
    if open_by > 0:
        q = back_off(model.hand, q, open_by)
    terms: dict[str, np.ndarray] = {}
    if open_to_clear:
        assert grid is not None
        pos, q, back, opening = clear_of_cloud(model.hand, grid, pos, quat, q)
        mean_opening = opening.mean(axis=1) if opening.shape[1] else np.zeros(len(q))
        terms = {"palm_back_mm": 1000.0 * back, "finger_open_rad": mean_opening}
    try:
        parsed = parse_instruction(instruction)
        part, name, fingers = parsed.part, parsed.object, parsed.fingers
    except InstructionError:
        part, name, fingers = None, object_name or "object", ()
    mode = _mode_of(fingers)
    if drawn > num:
        assert grid is not None
        # The instructed contacts (the mode's where none are named) this hand has.
        have = model.hand.contacts.finger
        contacts = model.hand.contacts.select(
            [f for f in fingers or MODES[mode] if f in have] or list(have)
        )
        f32 = functools.partial(jnp.asarray, dtype=jnp.float32)
        table = f32(-np.inf if table_height is None else table_height)
        depth, gap = (
            np.asarray(a, np.float64)
            for a in cloud_fit(model.hand, contacts, grid, f32(pos), f32(quat), f32(q), table)
        )
        best = np.argsort(fit_score(depth, gap), kind="stable")[:num]
        pos, quat, q = pos[best], quat[best], q[best]
        terms = {k: v[best] for k, v in terms.items()}
        terms.update(cloud_depth_mm=depth[best], cloud_gap_mm=gap[best])
    return GraspSet(
        **grasp_stages(model.hand, pos, quat, q, **model.stage_settings)._asdict(),
        energy=np.full(num, np.nan),
        terms=terms,
        hand=model.hand.name,
        object_ref=object_ref,
        object_name=object_name or name,
        part=part,
        mode=mode,
        fingers=fingers,
        table_height=None if table_height is None else float(table_height),
    )


# The mean of a cloud's unit normals: ~0 over a closed surface (the library's full
# clouds: at most 0.015), 0.35-0.96 over one camera view of it (`point_views`).
ONE_VIEW_MEAN_NORMAL = 0.25


def _warn_if_one_view(normals: np.ndarray, camera: np.ndarray | None) -> None:
    """Warn where the cloud and `camera` disagree: one view without a camera, or a
    camera with a closed surface (whose far side would hide the seen one)."""
    mean = float(np.linalg.norm(np.mean(normals, axis=0)))
    if camera is not None and mean < ONE_VIEW_MEAN_NORMAL:
        warnings.warn(
            f"the cloud's normals average to length {mean:.2f}: it looks like a closed "
            "surface, not one camera view, and camera= reads it as what a camera saw "
            "(the far side would stand for the surface on some rays); leave camera= off "
            "for a full cloud",
            stacklevel=3,
        )
    if camera is None and mean > ONE_VIEW_MEAN_NORMAL:
        warnings.warn(
            f"the cloud's normals average to length {mean:.2f} (a closed surface's to ~0): "
            "it looks like one view of the object, and without camera= guidance / "
            "oversample read it as a closed surface (on single views guidance lowered the "
            "benchmark's Suc from 17 % to 3 %); pass camera= (where the camera was, "
            "object frame) or a full cloud",
            stacklevel=3,
        )


def _mode_of(fingers: tuple[str, ...]) -> str:
    digits = {f for f in fingers if f != "palm"}
    return "wrap" if len(digits) >= 4 else "pinch" if digits else "wrap"


class _Guide(NamedTuple):
    """What physics guidance reads: the hand; the normaliser's mean and std (shape (d,)
    each); the given cloud's signed-distance grid (`cloud_sdf`); the step size."""

    hand: HandModel
    mean: jax.Array
    std: jax.Array
    grid: SDFGrid
    weight: jax.Array


def _guidance_depth_mm(guide: _Guide, z, origin) -> jax.Array:
    """One grasp's mean depth (mm) of its hand surface samples below the cloud."""
    surface = grasp_surface(guide.hand, guide.mean, guide.std, z, origin)
    return 1000.0 * jnp.mean(jax.nn.relu(-sdf_query(guide.grid, surface)[0]))


@functools.partial(jax.jit, static_argnums=(0, 9, 10, 11))
def _integrate(
    graphdef,
    params,
    pts,
    nrm,
    tokens,
    sentence,
    key,
    temperature,
    anchor_temperature,
    num,
    steps,
    method,
    guide,
):
    """Normalised grasp vectors (num, d) and the points their translations are relative
    to (num, 3; zeros for a network that is not anchored)."""
    net = nnx.merge(graphdef, params)
    base, per_point = net.features(pts, nrm, tokens, sentence)  # one cloud, one text
    base = jnp.repeat(base, num, axis=0)
    anchor = jnp.zeros(num, jnp.int32)
    if net.config.anchored:
        logits = net.anchor_logits(base[:1], per_point)[0]
        # Below 1, the likelier points.
        drawn = jax.random.categorical(
            jax.random.fold_in(key, 1),
            logits / jnp.maximum(anchor_temperature, 1e-6),
            shape=(num,),
        )
        anchor = jnp.where(anchor_temperature > 0, drawn, jnp.argmax(logits)).astype(jnp.int32)
    cond = net.condition(base, pts, nrm, per_point, anchor, repeat=num)
    x = temperature * jax.random.normal(key, (num, net.config.grasp_dim))
    dt = 1.0 / steps
    origin = pts[0][anchor] if net.config.anchored else jnp.zeros((num, 3), pts.dtype)

    def body(i, x):
        t = jnp.full((num,), i * dt)
        v = net.velocity(cond, x, t)
        if method == "midpoint":
            v = net.velocity(cond, x + 0.5 * dt * v, t + 0.5 * dt)
        x_next = x + dt * v
        if guide is None:
            return x_next
        # The grasp this sample heads for, and the way out of the cloud from there.
        predicted = x + (1.0 - t[:, None]) * v
        grad = jax.vmap(jax.grad(_guidance_depth_mm, argnums=1), (None, 0, 0))(
            guide, predicted, origin
        )
        return x_next - guide.weight * dt * grad

    return jax.lax.fori_loop(0, steps, body, x), origin


def _check_cloud(points, normals, camera=None) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray(points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
        raise GenerationError(f"points must be a non-empty (n, 3) array, got shape {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise GenerationError(f"{int((~np.isfinite(pts)).any(1).sum())} points are NaN or inf")
    if normals is None:
        return pts, estimate_normals(pts, camera=camera)
    nrm = np.asarray(normals, dtype=np.float32)
    if nrm.shape != pts.shape or not np.all(np.isfinite(nrm)):
        raise GenerationError("normals must be finite and have the points' shape (n, 3)")
    return pts, nrm


def estimate_normals(points: np.ndarray, k: int = 12, camera=None) -> np.ndarray:
    """Unit normals from the k nearest neighbours' plane (PCA), oriented towards
    `camera` (a position: every point of one view faces the camera that saw it), or
    without one away from the cloud's centroid (right on convex objects, often wrong
    inside concave ones: a bowl, a pan). Shape: (n, 3)."""
    from scipy.spatial import cKDTree

    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 3:
        d = pts - pts.mean(0)
        n = np.where(np.linalg.norm(d, axis=1, keepdims=True) > 0, d, [[0.0, 0.0, 1.0]])
        return (n / np.linalg.norm(n, axis=1, keepdims=True)).astype(np.float32)
    _, nb = cKDTree(pts).query(pts, k=min(k, len(pts)))
    local = pts[nb] - pts[nb].mean(axis=1, keepdims=True)
    _, _, vt = np.linalg.svd(local, full_matrices=False)
    n = vt[:, -1]
    toward = pts.mean(0) if camera is None else np.asarray(camera, dtype=np.float64)
    facing = np.sum(n * (toward - pts), axis=1, keepdims=True)
    # Away from the centroid; towards the camera.
    n *= np.where((facing > 0) == (camera is None), -1.0, 1.0)
    return n.astype(np.float32)
