"""`synthesize`: batched gradient-based grasp optimization (DESIGN.md §7).

Initial poses come from `jaxgrasp.initialization`; then Adam (optax) on (root position,
root quaternion, joints) runs for `steps` iterations inside one `lax.fori_loop` (the
step count is traced: runs of any length share one compilation), the energy
being `energies.total_energy` vmapped over hands (in chunks, see
`energies.batched_energy_and_grad`). After every step the quaternion is renormalised and
the joints are projected onto their limits. The batch is split into equal pieces of at
most `device_batch` hands per device per compiled call (a memory budget; the last piece
is padded, so every piece runs the same program) and sharded over all `jax.devices()`
with `shard_map` (each device optimizes its own hands; the result does not depend on the
device count). The energy weights and the energy constants that set no shape or branch
(`TRACED_PARAMS`: the palm stand-off, the penetration margin, ...) are arguments of the
compiled program, not constants in it: sweeps over them share one compilation.
`SynthesisConfig.oversample` optimizes more hands than asked for and, after the first
`SynthesisConfig.select_at` of the steps, goes on with the ones of lowest energy only
(Adam's moments carried over: the kept hands end as they would in one run). Multi-host:
call `jax.distributed.initialize()` first (see `distributed_synthesize`).

Tabletop mode (`tabletop=True`): the object rests on a table, the plane z = its lowest
point (object frame, z up); initial hands that would reach below it are not used, the
table energy keeps the hand above it, and the grasp set carries the table so that
validation puts it in the scene and checks the hand stays above it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from energies import (
    EnergyParams,
    EnergyWeights,
    balanced_pieces,
    batched_energy_and_grad,
    length_scale,
    target_samples,
)
from energies._checks import (
    FINITE,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    check_fields,
    from_dict,
    is_number,
)
from jaxgrasp.grasp_set import GraspSet
from jaxgrasp.initialization import InitConfig, initial_poses
from jaxgrasp.object_model import PROCEDURAL_PREFIX
from jaxgrasp.sdf import SDFGrid, part_clearance_query, sdf_query
from kinematics import HandModel
from sim.grasps import PREGRASP_RAD, WRIST_SQUEEZE, grasp_stages

# Energy weights passed to the compiled optimizer as arguments (the table weight is
# `SynthesisConfig.table_weight`, a constant of the tabletop program).
TRACED_WEIGHTS = tuple(f.name for f in dataclasses.fields(EnergyWeights) if f.name != "table")
# The energy constants passed to it the same way: the others set array shapes
# (`pen_object_points`, `barrier_hand_stride`) or branches (`use_lp`, the sign of
# `part_contact_radius`) of the program, or have their own argument (`table_height`).
TRACED_PARAMS = ("d0", "w_palm", "barrier_d_hat", "tau_fc", "tau_f", "pen_margin")

MODES = {
    "wrap": ("thumb", "index", "middle", "ring", "little", "palm"),
    "pinch": ("thumb", "index", "middle", "palm"),
}


class SynthesisError(ValueError):
    """Bad synthesis input (unknown part or mode, bad counts, object/hand size mismatch)."""


# The `SynthesisConfig` fields that `sim.grasp_stages` takes: how a grasp is closed for
# validation (made after the optimizer, so not part of its compiled program).
STAGE_SETTINGS = ("pregrasp_rad", "wrist_squeeze")


@dataclasses.dataclass(frozen=True)
class SynthesisConfig:
    """Optimizer and energy settings.

    Attributes:
        steps: optimizer iterations.
        lr_pos: Adam learning rate of the root position (m), decayed by cosine to 10 %
            over the run (as are the other two).
        lr_rot: Adam learning rate of the root quaternion.
        lr_q: Adam learning rate of the joints (rad).
        weights: energy weights (synthesis: force closure 3, penetration 300).
        params: energy constants (synthesis: palm on the surface, 1 mm penetration
            margin).
        init: initial pose sampling.
        energy_chunk: hands per vmapped energy evaluation; None (default): 16 on CPU,
            where a small chunk stays in cache, and `device_batch` (one vmap over each
            device's piece) on an accelerator (`energy_chunk_for`).
        device_batch: hands per compiled call on each device (memory budget).
        table_weight: weight of the table term in tabletop mode (`weights.table` is
            not used: without a table the term is off).
        wrist_squeeze: how far the squeeze pose moves the hand root along the palm
            normal, towards the object (m; 0 holds the wrist still; `sim.grasp_stages`).
        pregrasp_rad: how far the pregrasp backs each closing joint off the grasp
            (rad; `sim.grasp_stages`).
        oversample: hands optimized per grasp returned (>= 1; from sampled starts).
        select_at: with `oversample` > 1 (or more `initial` grasps than `num`), the
            fraction of `steps` after which the `num` hands of lowest energy are kept;
            only they run the remaining steps (1: all hands run every step, the
            lowest-energy ones are returned).
    """

    steps: int = 800
    lr_pos: float = 2e-3
    lr_rot: float = 1e-2
    lr_q: float = 2e-2
    # Force closure weighted up from DexVLG's 1: on the procedural library (64 Wrap
    # grasps per part, 800 steps) fc = 3 held the disturbance test at least as often.
    # Penetration weighted up from 100: a 3 mm penetration otherwise costs less than the
    # force-closure and distance terms gain from it. On the whole procedural library
    # (48 grasps per part) Wrap went 29.0 -> 30.0 % valid with the penetration check
    # passed 76 -> 89 % (500: 29.5 %, 91 %); Pinch fell 8.9 -> 7.5 % (500: 6.2 %).
    weights: EnergyWeights = EnergyWeights(fc=3.0, pen=300.0)
    # The palm pulled onto the surface (d0 = 0, weight 3) instead of DexVLG's 1 cm
    # stand-off (d0 = 0.01, weight 1): a Wrap whose palm touches the object holds the
    # disturbance test far more often (70 % of grasps with all six candidates within 3 mm
    # held vs 31 % with five); on eight Wrap targets (48 grasps each, 800 steps) the
    # valid fraction went .35 -> .46 (weight 1: .40, 5: .39, 10: .36; d0 = 3 mm: .45).
    # A 1 mm penetration margin: the penetration terms read hand and object samples
    # only, and with the samples held at the surface the exact meshes still overlapped
    # (~1 mm on average in valid grasps) between them. On ten Wrap targets (48 grasps
    # each) the mean penetration of valid grasps went 1.04 -> 0.49 mm and the valid
    # fraction .500 -> .512 (0.5 mm: 0.72 mm, .515; 1.5 mm: 0.31 mm, .494, with fewer
    # fingers within the 3 mm contact check); whole library: 1.10 -> 0.41 mm.
    params: EnergyParams = EnergyParams(d0=0.0, w_palm=3.0, pen_margin=1e-3)
    init: InitConfig = InitConfig()
    energy_chunk: int | None = None
    device_batch: int = 1024
    table_weight: float = 100.0
    wrist_squeeze: float = WRIST_SQUEEZE
    pregrasp_rad: float = PREGRASP_RAD
    # Optimize ceil(num * oversample) hands from sampled starts for the first `select_at`
    # of the steps, keep the `num` of lowest total energy (in the order they were
    # optimized), and run only those to the end. Within a target the energy ranks the
    # grasps, and already a quarter of the way through: on the whole Wrap library (96
    # hands per part, seed 0) the better half by the energy at step 200 of 800 passed
    # every validation criterion 40.5 % of the time (at the end: 42.7 %; all 96: 34.1 %),
    # at 1000 instead of 1600 optimizer steps per grasp returned (README,
    # "Oversampling"). Not used when refining given grasps (`initial=`); there
    # `select_at` chooses among them when fewer are asked for.
    oversample: float = 2.0
    select_at: float = 0.25

    def __post_init__(self):
        check_fields(
            self,
            {
                "steps": NON_NEGATIVE_INT,
                "lr_pos": POSITIVE,
                "lr_rot": POSITIVE,
                "lr_q": POSITIVE,
                "weights": (lambda w: isinstance(w, EnergyWeights), "an EnergyWeights"),
                "params": (lambda p: isinstance(p, EnergyParams), "an EnergyParams"),
                "init": (lambda i: isinstance(i, InitConfig), "an InitConfig"),
                "energy_chunk": (
                    lambda x: x is None or POSITIVE_INT[0](x),
                    "None (automatic) or an integer > 0",
                ),
                "device_batch": POSITIVE_INT,
                "table_weight": NON_NEGATIVE,
                "wrist_squeeze": FINITE,
                "pregrasp_rad": NON_NEGATIVE,
                "oversample": (lambda x: is_number(x) and 1 <= x <= 64, "a number in [1, 64]"),
                "select_at": (lambda x: is_number(x) and 0 <= x <= 1, "a number in [0, 1]"),
            },
            SynthesisError,
        )

    @property
    def stage_settings(self) -> dict[str, float]:
        """`sim.grasp_stages`' keyword arguments: how the validation closes a grasp."""
        return {name: getattr(self, name) for name in STAGE_SETTINGS}

    @classmethod
    def from_dict(cls, data: dict, where: str = "") -> SynthesisConfig:
        """The config from its `dataclasses.asdict` form after a JSON round trip (a
        dataset manifest's "synthesis"); missing fields keep their defaults, unknown
        ones raise `SynthesisError` (prefixed by `where`)."""
        return from_dict(cls, data, SynthesisError, where or cls.__name__)


# Grasps `synthesize` returns from sampled starts when `num` is not given.
DEFAULT_NUM = 4096
# 8-16 hands per chunk keep a chunk's intermediates in a 2-core CPU's cache: one
# optimizer step cost 65-79 us/hand at 16 vs 85 at 32 (B = 1024, interleaved).
CPU_ENERGY_CHUNK = 16


def energy_chunk_for(config: SynthesisConfig, backend: str | None = None) -> int:
    """Hands per vmapped energy evaluation: `config.energy_chunk`, or when it is None
    `CPU_ENERGY_CHUNK` on CPU and `config.device_batch` elsewhere (`backend`: default
    JAX's). An accelerator wants one vmap over its piece (the README's H100 figures
    were measured so): chunks run one after another (`lax.map`), each too small to fill
    it."""
    if config.energy_chunk is not None:
        return config.energy_chunk
    backend = backend or jax.default_backend()
    return CPU_ENERGY_CHUNK if backend == "cpu" else config.device_batch


def synthesize(
    hand: HandModel,
    obj,
    part: str | None = None,
    mode: str = "wrap",
    num: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    config: SynthesisConfig | None = None,
    *,
    tabletop: bool = False,
    initial=None,
    progress: Callable[[int, int], None] | None = None,
) -> GraspSet:
    """Optimize `num` grasps of `hand` on `obj` (`jaxgrasp.PreparedObject`).

    Args:
        part: target part name; None grasps the whole object (no part barrier).
        mode: "wrap" (5 fingertips + palm) or "pinch" (thumb, index, middle + palm).
        num: number of grasps (> 0; default `DEFAULT_NUM`, or with `initial` all of
            them; with `initial`, at most its count, see there).
        steps: optimizer iterations (default `config.steps`).
        seed: the random seed (same seed, same grasps).
        tabletop: the object rests on a table at its lowest point (z up); grasps stay
            above it (see module doc).
        initial: start from these grasps instead of sampled initial poses (refinement,
            e.g. of a model's samples): a `GraspSet` / `sim.GraspPoses`. All of them are
            returned unless `num` asks for fewer: then every one runs for
            `config.select_at` of the steps and the `num` of lowest energy run the rest
            (the early choice of `config.oversample`, which is not used here).
        progress: called with (work done, work total) after each compiled piece, in
            hand-iterations (the extra hands of `config.oversample` included).

    Returns:
        A `GraspSet` of `num` grasps with pregrasp / grasp / squeeze joints, total and
        per-term energies (with `config.oversample` > 1: the `num` hands of lowest energy
        after `config.select_at` of the steps, optimized to the end).
    """
    config = config or SynthesisConfig()
    if steps is not None:
        config = dataclasses.replace(config, steps=steps)
    if initial is not None:
        initial = initial.poses() if hasattr(initial, "poses") else initial
        if initial.count == 0:
            raise SynthesisError("initial grasps are empty; give at least one grasp")
        if num is None:
            num = initial.count
        elif isinstance(num, int | np.integer) and num > 0:  # a bad num is reported below
            num = min(num, initial.count)
    elif num is None:
        num = DEFAULT_NUM
    _check_inputs(hand, obj, part, mode, num)
    part_index = None if part is None else obj.part_index(part)
    fingers = MODES[mode]
    table = resting_height(obj) if tabletop else None
    optimized, first = selection_plan(num, config, None if initial is None else initial.count)
    if initial is None:
        pos0, quat0, q0 = initial_poses(
            hand, obj, part_index, mode, optimized, seed, config.init, table_height=table
        )
    else:
        pos0, quat0, q0 = _initial_from(hand, initial)

    devices = jax.devices()
    run = _optimizer(hand, fingers, config, tabletop)
    shared = optimizer_arguments(obj, part_index, config, table)
    # Every call runs pieces of the size that the grasps returned split into, so the
    # selected hands' second stage reuses the first stage's compilation (refining fewer
    # given grasps than `num` returns them all: pieces of their count, not `num`'s).
    piece = balanced_pieces(min(num, optimized), config.device_batch * len(devices))[0][2]
    steps = config.steps
    work = optimized * first + num * (steps - first)
    done = 0

    def optimize(hands, start, stop):
        nonlocal done
        outs = []
        stage = with_span(shared, start, stop)
        for row in range(0, len(hands[0]), piece):
            rows = jax.tree.map(lambda x, row=row: x[row : row + piece], hands)
            outs.append(_run_sharded(run, devices, stage, rows, piece))
            done += len(rows[0]) * (stop - start)
            if progress is not None and stop > start:  # a 0-step stage only ranks
                progress(done, work)
        return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)

    out = optimize(start_state(pos0, quat0, q0), 0, first)
    if optimized > num:  # the lowest energies, kept in their original order
        keep = np.sort(np.argsort(out[3], kind="stable")[:num])
        out = jax.tree.map(lambda x: x[keep], out)
        if first < steps:  # the kept hands go on from where they stopped
            pos, quat, q, _, _, moments = out
            out = optimize((pos, quat, q, moments), first, steps)
    pos, quat, q, energy, terms, _ = out
    stages = grasp_stages(hand, pos, quat, q, **config.stage_settings)
    return GraspSet(
        **stages._asdict(),
        energy=energy,
        terms=terms,
        hand=hand.name,
        object_ref=_reference(obj),
        object_name=obj.name,
        object_scale=float(obj.scale) if not obj.source.startswith(PROCEDURAL_PREFIX) else 1.0,
        part=part,
        mode=mode,
        fingers=fingers,
        table_height=table,
    )


def selection_plan(num: int, config: SynthesisConfig, given: int | None = None) -> tuple[int, int]:
    """(hands started, steps they all run) for `num` grasps: from sampled starts,
    `config.oversample` times `num`; when refining, the `given` initial grasps. With
    more started than `num`, the `num` of lowest energy then run the remaining steps."""
    if given is None:
        optimized = max(num, math.ceil(num * config.oversample - 1e-9))
    else:
        optimized = given
    first = round(config.steps * config.select_at) if optimized > num else config.steps
    return optimized, first


def resting_height(obj) -> float:
    """Height of the table an upright object (z up) rests on: its lowest point."""
    return float(np.asarray(obj.vertices)[:, 2].min())


def _initial_from(hand: HandModel, grasps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pos = np.asarray(grasps.root_pos, np.float32)
    quat = np.asarray(grasps.root_quat, np.float32)
    q = np.asarray(grasps.q_grasp, np.float32)
    if pos.shape != (len(pos), 3) or quat.shape != (len(pos), 4) or q.shape != (len(pos), hand.n_q):
        raise SynthesisError(
            f"initial grasps must have root_pos (B, 3), root_quat (B, 4), q (B, {hand.n_q}); "
            f"got {pos.shape}, {quat.shape}, {q.shape}"
        )
    if not (np.isfinite(pos).all() and np.isfinite(quat).all() and np.isfinite(q).all()):
        raise SynthesisError("initial grasps contain NaN or inf")
    quat = quat / np.maximum(np.linalg.norm(quat, axis=1, keepdims=True), 1e-9)
    lo, hi = np.asarray(hand.q_range, np.float32).T
    return pos, quat, np.clip(q, lo, hi)


def _reference(obj) -> str:
    """What `object_from_reference` reloads: procedural:... as is, a file made absolute."""
    path = Path(obj.source)
    return str(path.resolve()) if path.is_file() else obj.source


def optimizer_arguments(obj, part_index: int | None, config: SynthesisConfig, table=None):
    """The leading (replicated) arguments of the compiled optimizer for one target:
    (object arrays, part index, torque length scale, table height, step span, energy
    weights, energy constants). `table` is the table height in tabletop mode; the span
    (first step, end step, steps of the schedule) covers the whole run (`with_span`)."""
    weights = {k: jnp.float32(getattr(config.weights, k)) for k in TRACED_WEIGHTS}
    constants = {k: jnp.float32(getattr(config.params, k)) for k in TRACED_PARAMS}
    return (
        _Target.of(obj),
        jnp.int32(-1 if part_index is None else part_index),
        jnp.float32(length_scale(obj)),
        jnp.float32(0.0 if table is None else table),
        _span(0, config.steps, config.steps),
        weights,
        constants,
    )


def _span(first: int, stop: int, steps: int) -> jax.Array:
    """The optimizer's step span: run steps first..stop-1 of a `steps`-step schedule.
    Shape: (3,) int32."""
    return jnp.asarray([first, stop, steps], jnp.int32)


def with_span(shared: tuple, first: int, stop: int) -> tuple:
    """`optimizer_arguments` that run only steps first..stop-1 of the same schedule."""
    steps = int(shared[4][2])
    return (*shared[:4], _span(first, stop, steps), *shared[5:])


def start_state(pos, quat, q) -> tuple:
    """The optimizer's batch arguments (pos, quat, q, Adam moments) for hands that start
    at these poses: the moments zero. Shapes: (B, 3), (B, 4), (B, n_q)."""
    params = {"pos": pos, "quat": quat, "q": q}
    zeros = {k: np.zeros(np.shape(v), np.float32) for k, v in params.items()}
    return pos, quat, q, {"mu": zeros, "nu": dict(zeros)}


def _run_sharded(run, devices, shared, args, size: int | None = None):
    """Pad the piece to `size` rows (default: its own) and to a multiple of the device
    count, shard the batch axis (the `shared` object arguments are replicated), run.
    `args`: the batch arguments (`start_state`); returns (pos, quat, q, energy, terms,
    moments) of the piece's rows as float64 NumPy arrays."""
    n = len(args[0])
    k = len(devices)
    size = max(n, size or n)
    pad = size - n + (-size) % k
    if pad:
        args = jax.tree.map(lambda x: np.concatenate([x, np.repeat(x[-1:], pad, axis=0)]), args)
    args = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), args)
    if k > 1:
        mesh = Mesh(np.array(devices), ("hands",))
        sharding = NamedSharding(mesh, P("hands"))
        args = jax.device_put(args, sharding)
        fn = _sharded(run, mesh)
    else:
        fn = run
    out = jax.device_get(fn(*shared, *args))
    return jax.tree.map(lambda x: np.asarray(x[:n], np.float64), out)


_SHARDED_CACHE: dict = {}


def _sharded(run, mesh):
    key = (id(run), mesh.devices.shape)
    if key not in _SHARDED_CACHE:
        _SHARDED_CACHE[key] = jax.jit(
            jax.shard_map(
                run,
                mesh=mesh,
                in_specs=(P(),) * 7 + (P("hands"),) * 4,
                out_specs=P("hands"),
            )
        )
    return _SHARDED_CACHE[key]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class _Target:
    """The arrays of a `PreparedObject` the energies read, without its names: passed to
    the compiled optimizer as an argument, so every part of an object, and every object
    whose SDF grid pads to the same shape (`SDFGrid.bucketed`: all default-built ones),
    reuses one compilation per hand, mode and config."""

    grid: SDFGrid
    clearance: SDFGrid
    points: jax.Array
    normals: jax.Array
    point_part: jax.Array
    com: jax.Array

    @classmethod
    def of(cls, obj) -> _Target:
        return cls(
            obj.grid.bucketed(),
            obj.clearance.bucketed(),
            obj.points,
            obj.normals,
            obj.point_part,
            obj.com,
        )

    def sdf(self, points):
        return sdf_query(self.grid, points)

    def part_clearance(self, part, points):
        return part_clearance_query(self.clearance, part, points)


_OPTIMIZER_CACHE: dict = {}


def _optimizer(hand, fingers, config: SynthesisConfig, tabletop: bool = False):
    """A jitted function (target, part_index, length, table_height, span, weights,
    constants, pos0, quat0, q0, moments) -> (pos, quat, q, energy, terms, moments) for a
    batch; the leading arguments come from `optimizer_arguments` (`table_height` is used
    in tabletop mode; `span` = (first step, end step, steps of the schedule), see
    `with_span`), the batch ones from `start_state` or an earlier call's outputs (Adam's
    moments: {"mu", "nu"}, each {"pos", "quat", "q"} shaped as the poses). The step
    span, the weights (a dict over `TRACED_WEIGHTS`) and the energy constants (a dict
    over `TRACED_PARAMS`) are traced, so runs of any length, weighting or such constants
    share one compilation."""
    # Keyed by identity; the entry keeps the hand alive, so its id is never reused for
    # another hand while the entry exists. Neither the step count, the batch split, the
    # weights nor the traced constants change the program (`_compiled_part`).
    key = (id(hand), fingers, _compiled_part(config), tabletop)
    if key in _OPTIMIZER_CACHE:
        return _OPTIMIZER_CACHE[key][1]
    lo, hi = (jnp.asarray(x, jnp.float32) for x in np.asarray(hand.q_range).T)
    chunk = energy_chunk_for(config)
    # The table weight stays a constant: outside tabletop mode it is 0 and the table
    # term is not computed at all.
    table_weight = config.table_weight if tabletop else 0.0

    def energy_and_grad(
        target, part_index, length, table_height, weights, constants, samples, pos, quat, q
    ):
        # The table height is traced, so every object shares one compilation.
        params = dataclasses.replace(config.params, **constants, table_height=table_height)
        weights = EnergyWeights(**weights, table=table_weight)
        return batched_energy_and_grad(
            weights,
            hand,
            target,
            pos,
            quat,
            q,
            chunk=chunk,
            fingers=fingers,
            target_part=part_index,
            params=params,
            scale=length,
            samples=samples,
        )

    # Traced once per compilation: `run` calls it in every step and once more after the
    # last, and a nested jit traces the same argument types once (tracing the energy
    # takes seconds).
    energy_and_grad = jax.jit(energy_and_grad)

    # Adam (elementwise, so one state serves the three groups) with a learning rate per
    # group, each decayed by cosine to 10 % over the run. The state is explicit so that a
    # run can stop after any step and go on in a later call (`SynthesisConfig.select_at`).
    adam = optax.scale_by_adam()
    rates = {"pos": config.lr_pos, "quat": config.lr_rot, "q": config.lr_q}

    def run(
        target, part_index, length, table_height, span, weights, constants, pos0, quat0, q0, moments
    ):
        samples = target_samples(target, config.params)  # once, not per step
        first, stop = span[0], span[1]
        horizon = jnp.maximum(span[2], 1).astype(jnp.float32)

        def energy_and_grad_of(pos, quat, q):
            return energy_and_grad(
                target, part_index, length, table_height, weights, constants, samples, pos, quat, q
            )

        params = {"pos": pos0, "quat": quat0, "q": q0}
        state = optax.ScaleByAdamState(count=first, mu=moments["mu"], nu=moments["nu"])

        def step(i, carry):
            params, state = carry
            (_, _), grads = energy_and_grad_of(params["pos"], params["quat"], params["q"])
            grads = {"pos": grads[0], "quat": grads[1], "q": grads[2]}
            direction, state = adam.update(grads, state)
            # Step i of the cosine schedule, whichever call runs it.
            decay = 0.9 * (0.5 * (1.0 + jnp.cos(jnp.pi * jnp.minimum(i, horizon) / horizon))) + 0.1
            new = {k: params[k] - (rates[k] * decay) * direction[k] for k in params}
            new = {
                "pos": new["pos"],
                "quat": new["quat"]
                / jnp.maximum(jnp.linalg.norm(new["quat"], axis=-1, keepdims=True), 1e-6),
                "q": jnp.clip(new["q"], lo, hi),
            }
            # A hand whose step is not finite keeps its last finite pose (never NaN out).
            finite = jnp.all(
                jnp.isfinite(jnp.concatenate([new["pos"], new["quat"], new["q"]], axis=-1)),
                axis=-1,
            )
            params = jax.tree_util.tree_map(
                lambda a, b: jnp.where(finite[:, None], a, b), new, params
            )
            return params, state

        params, state = jax.lax.fori_loop(first, stop, step, (params, state))
        (energy, terms), _ = energy_and_grad_of(params["pos"], params["quat"], params["q"])
        moments = {"mu": state.mu, "nu": state.nu}
        return params["pos"], params["quat"], params["q"], energy, terms, moments

    fn = jax.jit(run)
    _OPTIMIZER_CACHE[key] = (hand, fn)
    return fn


def _compiled_part(config: SynthesisConfig) -> SynthesisConfig:
    """The settings the compiled optimizer depends on (not `steps`, `device_batch`, the
    traced weights and constants, the oversampling or the pregrasp and squeeze poses,
    made after it)."""
    defaults = EnergyParams()
    return dataclasses.replace(
        config,
        steps=0,
        energy_chunk=energy_chunk_for(config),  # resolved before device_batch is dropped
        device_batch=1,
        weights=EnergyWeights(),
        oversample=1.0,
        select_at=1.0,
        params=dataclasses.replace(
            config.params, **{k: getattr(defaults, k) for k in TRACED_PARAMS}
        ),
        wrist_squeeze=0.0,
        pregrasp_rad=0.0,
    )


def _check_inputs(hand, obj, part, mode, num):
    if mode not in MODES:
        raise SynthesisError(f"unknown mode '{mode}'; choose one of {', '.join(MODES)}")
    if not isinstance(num, int | np.integer) or num <= 0:
        raise SynthesisError(f"num must be a positive integer, got {num}")
    if part is not None:
        obj.part_index(part)  # ObjectError naming the parts
    size = float(np.linalg.norm(np.ptp(np.asarray(obj.vertices), axis=0)))
    if size < 0.02:
        raise SynthesisError(
            f"object '{obj.name}' is {100 * size:.1f} cm across: too small for hand "
            f"'{hand.name}' (>= 2 cm); check the mesh units / scale"
        )
    if size > 1.5:
        raise SynthesisError(
            f"object '{obj.name}' is {size:.2f} m across: too large for hand '{hand.name}' "
            "(<= 1.5 m); check the mesh units / scale (0.001 for millimetres)"
        )


def distributed_synthesize(*args, coordinator: str | None = None, **kwargs) -> GraspSet:
    """Multi-host entry point: initialise `jax.distributed` (coordinator address, process
    count and id from the arguments or the environment, as `jax.distributed.initialize`
    reads them) and run `synthesize` with the process index folded into the seed, so
    every host writes its own, distinct grasps."""
    if coordinator is not None:
        jax.distributed.initialize(coordinator_address=coordinator)
    else:
        jax.distributed.initialize()
    kwargs["seed"] = int(kwargs.get("seed", 0)) * 1_000_003 + jax.process_index()
    return synthesize(*args, **kwargs)
