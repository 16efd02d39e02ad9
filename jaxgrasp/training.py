"""Training the flow-matching grasp generator (DESIGN.md §10, DexVLG eq. 5).

Rectified flow: X_0 ~ N(0, I) noise, X_1 a normalised dataset grasp, t ~ U(0, 1),
X_t = (1 - t) X_0 + t X_1, and the network regresses the velocity X_1 - X_0 (an anchored
network, `TrainConfig.anchored`, also learns where the palm goes: a cross-entropy on its
anchor head against a soft target around the sampled cloud's point nearest the palm,
whose position the grasp's translation is relative to). Each
example's cloud is the object's full surface cloud or, with probability
`partial_fraction`, one camera view of it (`jaxgrasp.point_views`), resampled to
`n_points` points.

A run directory holds `run.json` (settings, normaliser, tokenizer, hand, objects, the
dataset's synthesis settings and whether its objects rested on a table),
`checkpoints/` (orbax; parameters, their moving average, optimizer state and the
loss history every `checkpoint_every` steps), `loss.png`. Every batch, noise draw and t
depends only on (seed, step), so a killed run resumed from its last checkpoint continues
exactly as an uninterrupted run would (see tests/test_model.py).
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from jaxtyping import Array, Float

from energies._checks import (
    BOOL,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    UNIT_INTERVAL,
    check_fields,
)
from jaxgrasp._io import write_json_atomic
from jaxgrasp.dataset import GraspDataset
from jaxgrasp.flow_model import FlowNet, ModelConfig
from jaxgrasp.grasp_vector import (
    Normalizer,
    anchored_vectors,
    palm_points,
    rotated_vectors,
    to_vector,
    yaw_rotations,
)
from jaxgrasp.instruction import InstructionError, Tokenizer
from jaxgrasp.point_views import partial_views
from jaxgrasp.sentence_encoder import (
    SENTENCE_ENCODERS,
    SentenceEncoderName,
    sentence_encoder,
    sentence_vectors,
)
from kinematics import load_hand

RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"
EMA = "ema"  # the checkpoint item of the parameters' moving average


class TrainingError(ValueError):
    """A training run cannot start or resume (no data, other settings, bad values)."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training settings.

    Attributes:
        steps: optimizer steps in total (a resumed run stops at the same step).
        batch_size: grasps per step.
        grasps_per_cloud: grasps of the same object sharing one sampled cloud in a batch
            (each cloud costs a pass of the point encoder, about a third of the default
            step for its 16 clouds; batch_size must divide by it).
        n_points: points per input cloud.
        lr: peak AdamW learning rate (linear warm-up, cosine decay to 5 %).
        warmup: warm-up steps.
        weight_decay: AdamW weight decay.
        partial_fraction: share of examples with a single-view partial cloud.
        n_views: camera azimuths per object for partial clouds.
        checkpoint_every: steps between checkpoints (a kill loses at most this many).
        keep: checkpoints kept.
        seed: data order, noise and initial weights.
        include_invalid: train on every optimized grasp, not only the valid ones.
        max_minutes: stop (with a checkpoint) after this much wall time; None: no limit.
            The learning rate decays over `steps`: when the pace of the first steps
            says the time runs out well before them, training warns (set `steps` to
            what fits, so the schedule ends decayed).
        point_width: per-point MLP width of the cloud encoder (`ModelConfig`).
        cond_width: width of the cloud, instruction and time features.
        hidden: width of the velocity network's residual blocks.
        blocks: residual blocks of the velocity network.
        token_width: word embedding size.
        sentence_encoder: a frozen pretrained sentence encoder whose vector of each
            instruction joins the learned word embeddings (`jaxgrasp.sentence_encoder`,
            e.g. "wordllama"; needs the `text` extra); None: word embeddings only.
        anchored: the network places the palm against a point of the cloud it chooses
            (`ModelConfig.anchored`; the translation is relative to that point).
        anchor_sigma: width of the anchor head's soft target around the point nearest
            the palm (m).
        anchor_weight: weight of the anchor head's cross-entropy beside the flow loss.
        ema_decay: decay of an exponential moving average of the parameters, kept beside
            them in every checkpoint and the weights `GraspGenerator.load` samples with
            (its decay warms up as min(ema_decay, (1 + step) / (10 + step))); 0: none,
            the last step's parameters are sampled.
        t_power: the flow times of training drawn as t = 1 - (1 - u)^t_power, u ~ U(0, 1)
            (`training_times`): 1 uniform; above 1 more of them near t = 1, the data
            end of the flow, where a grasp's last millimetres are set (2 since session
            48: a third of the times above 0.9 instead of a tenth).
        yaw_augment: the largest angle (degrees) of a random turn about the object's up
            axis (z) given to each training cloud and its grasps, drawn uniformly in
            [-yaw_augment, yaw_augment] per cloud: the same grasp on an object standing
            another way round, so the network has to find the part in the cloud rather
            than remember where it lies (180: any heading; 0: none). Grasp statistics are
            taken over the turned grasps.
    """

    steps: int = 20000
    batch_size: int = 64
    grasps_per_cloud: int = 4
    n_points: int = 256
    lr: float = 1e-3
    warmup: int = 500
    weight_decay: float = 1e-4
    partial_fraction: float = 0.5
    n_views: int = 8
    checkpoint_every: int = 500
    keep: int = 2
    seed: int = 0
    include_invalid: bool = False
    max_minutes: float | None = None
    point_width: int = 64
    cond_width: int = 256
    hidden: int = 512
    blocks: int = 4
    token_width: int = 64
    sentence_encoder: SentenceEncoderName | None = None
    # Anchored since session 41: on the benchmark (160000 steps, the same data and
    # targets as session 37) refined Suc 43.5 -> 50.4 %, PGA raw 41.3 -> 54.2 %, PTA raw
    # 62.5 -> 78.8 %; raw Suc unchanged (16.9 -> 16.3 %).
    anchored: bool = True
    anchor_sigma: float = 0.01
    anchor_weight: float = 0.2
    ema_decay: float = 0.999
    # 2 since session 48: on the benchmark (100000 steps, the same data, weights'
    # average) Suc raw 19.4 -> 29.4 %, guided 31.7 -> 38.5 %, ranked 52.6 -> 54.8 %,
    # refined 59.3 -> 59.1 % against uniform times (benchmarks/results/model.json,
    # model_s48_uniform.json).
    t_power: float = 2.0
    yaw_augment: float = 0.0

    def __post_init__(self):
        positive_ints = (
            "steps",
            "grasps_per_cloud",
            "n_points",
            "n_views",
            "checkpoint_every",
            "keep",
            "point_width",
            "cond_width",
            "hidden",
            "blocks",
            "token_width",
        )
        group = self.grasps_per_cloud
        check_fields(
            self,
            {
                **dict.fromkeys(positive_ints, POSITIVE_INT),
                "batch_size": (
                    lambda b: POSITIVE_INT[0](b) and (not POSITIVE_INT[0](group) or b % group == 0),
                    f"an integer > 0 and a multiple of grasps_per_cloud ({group})",
                ),
                "lr": POSITIVE,
                "warmup": NON_NEGATIVE_INT,
                "weight_decay": NON_NEGATIVE,
                "partial_fraction": UNIT_INTERVAL,
                "seed": NON_NEGATIVE_INT,
                "include_invalid": BOOL,
                "anchored": BOOL,
                "anchor_sigma": POSITIVE,
                "anchor_weight": NON_NEGATIVE,
                "t_power": POSITIVE,
                "yaw_augment": (
                    lambda a: NON_NEGATIVE[0](a) and a <= 180,
                    "a number of degrees in [0, 180]",
                ),
                "ema_decay": (lambda d: UNIT_INTERVAL[0](d) and d < 1, "a number in [0, 1)"),
                "max_minutes": (lambda m: m is None or POSITIVE[0](m), "None or a number > 0"),
                "sentence_encoder": (
                    lambda e: e is None or e in SENTENCE_ENCODERS,
                    f"None or one of {', '.join(SENTENCE_ENCODERS)}",
                ),
            },
            TrainingError,
        )

    def describe(self) -> dict:
        # What fixes the trajectory of a run (max_minutes and keep do not).
        d = dataclasses.asdict(self)
        for k in ("max_minutes", "keep"):
            d.pop(k)
        return d


@dataclasses.dataclass
class TrainResult:
    """Fields: run (directory), step (last step done), losses ([step, loss] pairs),
    train_seconds (this call's wall time, compile included), compile_s (lower + compile
    of the training step), steps_run (steps done by this call), stopped_early (hit
    max_minutes), params (the network parameters at `step`), ema (their moving average
    at `step`; None without `TrainConfig.ema_decay`). `GraspGenerator.load(run)`
    restores ema, or params for a run without one, from the last checkpoint."""

    run: Path
    step: int
    losses: list
    train_seconds: float
    compile_s: float
    steps_run: int
    stopped_early: bool
    params: object = None
    ema: object = None


class CloudSampler:
    """Full and single-view clouds of the dataset's objects, resampled per example."""

    def __init__(self, dataset: GraspDataset, n_views: int):
        self.points, self.normals, self.views = [], [], []
        for i in range(len(dataset.object_refs)):
            obj = dataset.object(i)
            pts = np.asarray(obj.points, np.float32)
            nrm = np.asarray(obj.normals, np.float32)
            self.points.append(pts)
            self.normals.append(nrm)
            self.views.append(partial_views(pts, nrm, n_views))

    def sample(self, rng: np.random.Generator, objects, n_points: int, partial_fraction: float):
        """Clouds for the given object indices. Shape: (B, n_points, 3) twice."""
        pts, nrm = [], []
        for o in objects:
            pool = np.arange(len(self.points[o]))
            if rng.random() < partial_fraction:
                pool = self.views[o][rng.integers(len(self.views[o]))]
            idx = rng.choice(pool, n_points, replace=len(pool) < n_points)
            pts.append(self.points[o][idx])
            nrm.append(self.normals[o][idx])
        return np.stack(pts), np.stack(nrm)


def model_config(config: TrainConfig, grasp_dim: int, vocab_size: int) -> ModelConfig:
    encoder = config.sentence_encoder
    return ModelConfig(
        grasp_dim=grasp_dim,
        vocab_size=vocab_size,
        point_width=config.point_width,
        cond_width=config.cond_width,
        hidden=config.hidden,
        blocks=config.blocks,
        token_width=config.token_width,
        sentence_dim=0 if encoder is None else sentence_encoder(encoder).dim,
        anchored=config.anchored,
    )


def train(
    dataset: str | Path | GraspDataset,
    out: str | Path,
    config: TrainConfig = TrainConfig(),
    *,
    progress: bool = True,
) -> TrainResult:
    """Train (or resume) a grasp generator on `dataset`, writing the run to `out`."""
    data = dataset if isinstance(dataset, GraspDataset) else GraspDataset(dataset)
    if config.include_invalid:
        data = GraspDataset(data.path, include_invalid=True)
    if len(data) == 0:
        raise TrainingError(f"dataset {data.path} has no grasps to train on")
    out = Path(out)
    try:  # before run.json is written: a missing encoder package leaves no run behind
        # The captions repeat (one per object, part and finger set): encode each once.
        texts, which = np.unique(np.asarray(data.captions, dtype=object), return_inverse=True)
        sentences = sentence_vectors(config.sentence_encoder, list(texts))[which.reshape(-1)]
    except InstructionError as e:
        raise TrainingError(str(e)) from None
    vectors = to_vector(data.root_pos, data.root_quat, data.q_grasp)
    clouds = CloudSampler(data, config.n_views)
    palms, stats = None, vectors
    if config.anchored:
        palms = palm_points(load_hand(data.hand), data.root_pos, data.root_quat)
        # Statistics of the translations relative to the whole cloud's nearest point.
        stats = vectors.copy()
        for o, cloud in enumerate(clouds.points):
            mine = np.flatnonzero(data.object_index == o)
            stats[mine] = anchored_vectors(
                vectors[mine], cloud[None], palms[mine], config.anchor_sigma
            )[0]
    if config.yaw_augment > 0:
        # The statistics of grasps turned as training turns them: the midpoints of
        # _STATS_TURNS equal slices of the range (at 180, evenly round the circle).
        slices = (np.arange(_STATS_TURNS) + 0.5) / _STATS_TURNS
        turns = np.radians(config.yaw_augment) * (2.0 * slices - 1.0)
        stats = np.concatenate(
            [rotated_vectors(stats, yaw_rotations(np.full(len(stats), a))) for a in turns]
        )
    run_info = _run_info(out, data, config, stats)
    normalizer = Normalizer.from_json(run_info["normalizer"])
    tokenizer = Tokenizer.from_json(run_info["tokenizer"])
    # Anchored and turned targets depend on each batch's draws (batch_at).
    fixed = palms is None and config.yaw_augment == 0
    targets = normalizer.normalize(vectors).astype(np.float32) if fixed else None
    tokens = tokenizer.encode(data.captions)

    net = FlowNet(
        model_config(config, vectors.shape[1], len(tokenizer.vocab)), nnx.Rngs(config.seed)
    )
    graphdef, params = nnx.split(net)
    tx = _optimizer(config)
    opt_state = tx.init(params)
    # The moving average starts at the initial weights (arrays are immutable: no copy).
    ema = params if config.ema_decay > 0 else None
    manager = checkpoint_manager(out, config.keep)
    step, losses = 0, []
    if manager.latest_step() is not None:
        params, opt_state, ema, step, losses = _restore(manager, params, opt_state, ema)
    key = jax.random.key(config.seed)

    by_object = [np.flatnonzero(data.object_index == o) for o in range(len(data.object_refs))]
    group = config.grasps_per_cloud

    def batch_at(step: int) -> tuple:
        rng = np.random.default_rng([config.seed, step])
        leads = rng.integers(len(data), size=config.batch_size // group)
        objects = data.object_index[leads]
        # Each lead grasp's cloud is shared with (group - 1) more grasps of its object.
        idx = np.concatenate(
            [[g, *rng.choice(by_object[o], group - 1)] for g, o in zip(leads, objects, strict=True)]
        ).astype(np.int64)
        pts, nrm = clouds.sample(rng, objects, config.n_points, config.partial_fraction)
        grasps, palm = vectors[idx], None if palms is None else palms[idx]
        if config.yaw_augment > 0:  # drawn last: the batches without it stay as they were
            turn = yaw_rotations(np.radians(config.yaw_augment) * rng.uniform(-1, 1, len(leads)))
            pts, nrm = (np.einsum("bij,bnj->bni", turn, a).astype(np.float32) for a in (pts, nrm))
            turn = np.repeat(turn, group, axis=0)
            grasps = rotated_vectors(grasps, turn)
            palm = None if palm is None else np.einsum("bij,bj->bi", turn, palm)
        if palm is None:
            x1 = normalizer.normalize(grasps) if targets is None else targets[idx]
            x1 = x1.astype(np.float32)
            anchor, logp = np.zeros(len(idx)), np.zeros((len(idx), 1))
        else:
            cloud = np.repeat(pts, group, axis=0)
            rel, anchor, logp = anchored_vectors(grasps, cloud, palm, config.anchor_sigma)
            x1 = normalizer.normalize(rel).astype(np.float32)
        batch = (pts, nrm, tokens[idx], sentences[idx], x1, anchor.astype(np.int32))
        return (*batch, logp.astype(np.float32), jax.random.fold_in(key, step))

    start = time.perf_counter()
    first_step = step
    train_step = (
        _train_step(graphdef, tx, config)
        .lower(params, opt_state, ema, jnp.int32(step), *batch_at(step))
        .compile()
    )
    compiled = time.perf_counter()
    compile_s = compiled - start
    stopped_early = False
    bar = _progress(config.steps, step, progress)
    try:
        while step < config.steps:
            params, opt_state, ema, loss = train_step(
                params, opt_state, ema, jnp.int32(step), *batch_at(step)
            )
            step += 1
            if step - first_step == _PACE_STEPS and config.max_minutes is not None:
                now = time.perf_counter()
                short = schedule_shortfall(
                    config, step, now - start, (now - compiled) / _PACE_STEPS
                )
                if short is not None:
                    warnings.warn(short, stacklevel=2)
            if step % 10 == 0 or step == config.steps:
                losses.append([step, float(loss)])
                if bar is not None:
                    bar.set_postfix(loss=f"{float(loss):.4f}")
            if bar is not None:
                bar.update(1)
            out_of_time = (
                config.max_minutes is not None
                and time.perf_counter() - start > 60.0 * config.max_minutes
            )
            if step % config.checkpoint_every == 0 or step == config.steps or out_of_time:
                _save(manager, step, params, opt_state, ema, losses)
            if out_of_time:
                stopped_early = step < config.steps
                break
    except KeyboardInterrupt:
        _save(manager, step, params, opt_state, ema, losses)  # keep the work done so far
        raise
    finally:
        if bar is not None:
            bar.close()
        manager.wait_until_finished()
        manager.close()
    plot_losses(losses, out / "loss.png")
    seconds = time.perf_counter() - start
    return TrainResult(
        out, step, losses, seconds, compile_s, step - first_step, stopped_early, params, ema
    )


# Evenly spread turns over which a yaw-augmented run's grasp statistics are taken.
_STATS_TURNS = 8

# Steps timed before judging whether `max_minutes` lets the schedule end.
_PACE_STEPS = 200


def schedule_shortfall(
    config: TrainConfig, step: int, elapsed_s: float, s_per_step: float
) -> str | None:
    """A warning when, at `s_per_step`, the `max_minutes` left after `elapsed_s` stop
    the run more than 2 % of its steps before `config.steps` (its learning rate then
    still far from decayed); None when the schedule ends in time."""
    if config.max_minutes is None or s_per_step <= 0:
        return None
    left = max(60.0 * config.max_minutes - elapsed_s, 0.0)
    reach = step + int(left / s_per_step)
    if reach >= 0.98 * config.steps:
        return None
    rate = float(_schedule(config)(reach)) / config.lr
    fits = reach - reach % 1000 if reach >= 2000 else reach
    return (
        f"at {1e3 * s_per_step:.0f} ms per step, max_minutes = {config.max_minutes:g} "
        f"stops this run near step {reach} of {config.steps}, its learning rate still at "
        f"{rate:.0%} of its peak; set steps to about {fits} to end the schedule in time"
    )


# Settings added since runs were first written, with the value that rebuilds a run that
# did not record them (the rest take their defaults).
_UNRECORDED = {"anchored": False, "ema_decay": 0.0, "t_power": 1.0, "yaw_augment": 0.0}


# Settings since removed: (the value that is the same as not having it, what it was,
# the commit that last had it). Session 43's penetration term beside the flow loss,
# session 49's hand features of the velocity network and session 50's prediction of the
# clean grasp; a run with any of them on is refused.
_RETIRED = {
    "penetration_weight": (0.0, "a training term removed after session 43", "3ec2215"),
    "penetration_points": (None, "", ""),  # the term's sample count: moot without it
    "hand_features": (False, "network inputs removed after session 49", "22edefe"),
    "prediction": ("velocity", "a network output removed after session 50", "f0e2c41"),
}


def recorded_settings(info: dict) -> dict:
    """The `TrainConfig` fields of a run.json (`info`), older runs included."""
    config = {k: v for k, v in info["config"].items() if k not in _RETIRED}
    for key, (off, what, commit) in _RETIRED.items():
        value = info["config"].get(key, off)
        if off is not None and value != off:
            raise TrainingError(
                f"the run was trained with {key} = {value}, {what} (it did not help); "
                f"retrain it, or load it with jaxgrasp at commit {commit}"
            )
    return {**_UNRECORDED, **config}


def _run_info(out: Path, data: GraspDataset, config: TrainConfig, vectors) -> dict:
    """Write run.json for a new run, or check a resumed run has the same settings."""
    path = out / RUN_FILE
    if path.is_file():
        info = json.loads(path.read_text())
        recorded = {**TrainConfig().describe(), **recorded_settings(info)}
        if recorded != config.describe() or info["dataset"] != str(data.path.resolve()):
            raise TrainingError(
                f"{out} holds a run with other settings or data; use another --out or the "
                "same settings to resume"
            )
        return info
    info = {
        "config": config.describe(),
        "dataset": str(data.path.resolve()),
        "hand": data.hand,
        "grasps": len(data),
        "objects": list(data.object_refs),
        "synthesis": dataclasses.asdict(data.synthesis_config),
        "tabletop": data.tabletop,
        "normalizer": Normalizer.fit(vectors).to_json(),
        "tokenizer": Tokenizer.fit(data.captions).to_json(),
        "grasp_dim": int(vectors.shape[1]),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, info)
    return info


def _schedule(config: TrainConfig) -> optax.Schedule:
    return optax.warmup_cosine_decay_schedule(
        0.0, config.lr, min(config.warmup, config.steps // 2), config.steps, config.lr * 0.05
    )


def _optimizer(config: TrainConfig) -> optax.GradientTransformation:
    return optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.adamw(_schedule(config), weight_decay=config.weight_decay),
    )


def training_times(key, n: int, power: float = 1.0, dtype=jnp.float32) -> Float[Array, " n"]:
    """Flow times for n training examples: 1 - (1 - u)^power, u ~ U(0, 1), so in [0, 1]
    with mean power / (power + 1) (`TrainConfig.t_power`)."""
    u = jax.random.uniform(key, (n,), dtype)
    # power 1 returns u itself: the same draws (to the bit) as before t_power existed.
    return u if power == 1.0 else 1.0 - (1.0 - u) ** power


def flow_loss(
    net: FlowNet,
    pts,
    nrm,
    tokens,
    sentence,
    x1,
    anchor,
    anchor_logp,
    key,
    repeat: int = 1,
    anchor_weight: float = 0.0,
    t_power: float = 1.0,
) -> jax.Array:
    """Rectified-flow loss of one batch: mean ||v(X_t, t) - (X_1 - X_0)||^2 per
    dimension (t from `training_times` with `t_power`), plus for an anchored network
    `anchor_weight` times the anchor head's cross-entropy against `anchor_logp`.
    Shapes: pts / nrm (B / repeat, n, 3), tokens (B, l), sentence (B, s), x1 (B, d),
    anchor (B,) (the point each translation is relative to; unused by a network that is
    not anchored), anchor_logp (B, n)."""
    k0, kt = jax.random.split(key)
    x0 = jax.random.normal(k0, x1.shape, x1.dtype)
    t = training_times(kt, x1.shape[0], t_power, x1.dtype)
    xt = (1.0 - t[:, None]) * x0 + t[:, None] * x1
    base, per_point = net.features(pts, nrm, tokens, sentence, repeat)
    cond = net.condition(base, pts, nrm, per_point, anchor, repeat)
    v = net.velocity(cond, xt, t)
    loss = jnp.mean(jnp.sum((v - (x1 - x0)) ** 2, axis=-1)) / x1.shape[-1]
    if net.config.anchored:
        logq = jax.nn.log_softmax(net.anchor_logits(base, per_point, repeat), axis=-1)
        loss += anchor_weight * jnp.mean(-jnp.sum(jnp.exp(anchor_logp) * logq, axis=-1))
    return loss


def _train_step(graphdef, tx, config: TrainConfig):
    def loss_of(params, *batch):
        net = nnx.merge(graphdef, params)
        return flow_loss(
            net,
            *batch,
            repeat=config.grasps_per_cloud,
            anchor_weight=config.anchor_weight,
            t_power=config.t_power,
        )

    @jax.jit
    def step(params, opt_state, ema, step, *batch):
        loss, grads = jax.value_and_grad(loss_of)(params, *batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        if ema is not None:
            # Warm-up: early averages would otherwise remember the random initial weights.
            decay = jnp.minimum(config.ema_decay, (1.0 + step) / (10.0 + step))
            ema = optax.incremental_update(params, ema, 1.0 - decay)
        return params, opt_state, ema, loss

    return step


def checkpoint_manager(out: Path, keep: int = 2) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(
        (out / CHECKPOINTS).resolve(),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
    )


def _save(manager, step, params, opt_state, ema, losses) -> None:
    if manager.latest_step() == step:
        return
    items = {
        "params": ocp.args.StandardSave(params),
        "opt_state": ocp.args.StandardSave(opt_state),
        "log": ocp.args.JsonSave({"step": step, "losses": losses}),
    }
    if ema is not None:
        items[EMA] = ocp.args.StandardSave(ema)
    manager.save(step, args=ocp.args.Composite(**items))


def _restore(manager, params, opt_state, ema):
    step = manager.latest_step()
    items = {
        "params": ocp.args.StandardRestore(_abstract(params)),
        "opt_state": ocp.args.StandardRestore(_abstract(opt_state)),
        "log": ocp.args.JsonRestore(),
    }
    if ema is not None:
        items[EMA] = ocp.args.StandardRestore(_abstract(ema))
    restored = manager.restore(step, args=ocp.args.Composite(**items))
    ema = restored[EMA] if ema is not None else None
    return restored.params, restored.opt_state, ema, step, restored.log["losses"]


def restore_params(out: Path, params_template, step: int | None = None, average: bool = True):
    """The network parameters of a run's checkpoint (the latest by default): their
    moving average where the run kept one and `average`, else the step's own."""
    manager = checkpoint_manager(Path(out))
    step = manager.latest_step() if step is None else step
    if step is None:
        raise TrainingError(f"{out} has no checkpoint; train it first (jaxgrasp train)")
    # The step's folder holds one sub-folder per saved item (orbax's layout).
    name = EMA if average and (manager.directory / str(step) / EMA).is_dir() else "params"
    restored = manager.restore(
        step,
        args=ocp.args.Composite(**{name: ocp.args.StandardRestore(_abstract(params_template))}),
    )
    manager.close()
    return restored[name], step


def _abstract(tree):
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", desc="train", dynamic_ncols=True)


def plot_losses(losses: list, path: Path) -> None:
    """Loss curve (raw and smoothed) as a PNG."""
    if not losses:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, values = np.asarray(losses, dtype=np.float64).T
    smooth = np.copy(values)
    for i in range(1, len(values)):
        smooth[i] = 0.9 * smooth[i - 1] + 0.1 * values[i]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, values, alpha=0.3, label="loss")
    ax.plot(steps, smooth, label="smoothed")
    ax.set_xlabel("step")
    ax.set_ylabel("flow-matching loss")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
