"""The total grasp energy of one hand (DexVLG eq. 4 + App. A.4) and its breakdown."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from energies._checks import (
    BOOL,
    FINITE,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    UNIT_INTERVAL,
    check_fields,
    is_number,
)
from energies.force_closure import (
    contact_wrenches,
    dfc_energy,
    lp_contact_forces,
    lp_dfc_energy,
)
from energies.hand_state import HandState, hand_state
from energies.object_samples import ObjectSamples, object_samples, target_part_gap
from energies.target import GraspTarget
from energies.terms import (
    direction_energy,
    distance_energy,
    hand_in_object_energy,
    inward_normals,
    joint_limit_energy,
    object_in_hand_energy,
    part_barrier_energy,
    self_penetration_energy,
    table_energy,
)
from kinematics import HandModel

TERMS = ("fc", "bar", "dis", "pen", "spen", "limit", "dir", "table")

# Hands per piece of `batched_energy_and_grad`'s LP pre-pass. The inner solve is a rolled
# loop of small elementwise steps: run per energy chunk (16 hands) its per-step overhead
# cost ~8-10 us/hand at B = 4096 on a 2-core CPU; over 256 hands at a time the pre-pass,
# FK included, costs ~5 (4096 at once: ~6, the arrays leave the cache).
LP_CHUNK = 256


@dataclasses.dataclass(frozen=True)
class EnergyWeights:
    """Weights of the energy terms (E = sum_k w_k E_k), all >= 0.

    DexVLG's weights; synthesis raises `fc` to 3 and `pen` to 300 (see
    `jaxgrasp.SynthesisConfig`).

    Attributes:
        fc: force closure (LP-relaxed DFC).
        bar: part barrier (fingertips and hand samples near the other parts).
        dis: contact distance (fingertips and palm to the object / target part).
        pen: hand-object penetration.
        spen: self-penetration between hand links.
        limit: joint-limit violation.
        dir: contact direction (finger pads facing the surface).
        table: table penetration (tabletop mode; synthesis uses
            `SynthesisConfig.table_weight`).
    """

    fc: float = 1.0
    bar: float = 10000.0
    dis: float = 100.0
    pen: float = 100.0
    spen: float = 100.0
    limit: float = 10.0
    dir: float = 1.0
    table: float = 0.0

    def __post_init__(self):
        # A negative weight would reward what the term penalises.
        check_fields(self, {f.name: NON_NEGATIVE for f in dataclasses.fields(self)})


@dataclasses.dataclass(frozen=True)
class EnergyParams:
    """Constants of the energy terms.

    Attributes:
        d0: palm stand-off distance of E_dis (m); DexVLG: 1 cm, synthesis: 0.
        w_palm: palm weight inside E_dis (synthesis uses 3).
        barrier_d_hat: IPC barrier activation distance (m).
        tau_fc: LP-DFC switch (eq. 11): the LP forces are used when the best net
            wrench P < tau_fc and every contact force >= tau_f.
        tau_f: LP-DFC switch: the smallest contact force (the largest is 1).
        use_lp: LP-relaxed DFC (True) or plain DFC.
        table_normal: unit normal n of the table plane {x . n = h} (object frame).
        table_height: h of the table plane (m).
        pen_object_points: object surface samples the object-in-hand penetration
            reads: an evenly spread subset of the whole object (its cost grows with
            the count; see `energies.object_samples`).
        barrier_hand_stride: the part barrier keeps the fingertips and every k-th hand
            surface sample away from the other parts (0: fingertips only, as DexVLG).
            Validation's part alignment judges every link, not only the fingertips.
        part_contact_radius: E_dis also pulls each contact candidate to within this
            distance (m) of the target part's nearest surface sample (the palm: d0
            more); < 0 turns this off. Without it E_dis, which reads the whole
            object's SDF, is as happy with a fingertip on a neighbouring part.
        pen_margin: clearance (m) the penetration term asks of hand and object samples:
            hand samples closer to the surface than this, and object samples within
            this distance of a hand primitive, count as penetrating by the shortfall.
            0 (DexVLG) penalises only what is inside; synthesis uses 1 mm, since the
            exact meshes can still overlap between the samples the term reads.
    """

    d0: float = 0.01
    w_palm: float = 1.0
    barrier_d_hat: float = 0.01
    tau_fc: float = 0.2
    tau_f: float = 0.1
    use_lp: bool = True
    table_normal: tuple[float, float, float] = (0.0, 0.0, 1.0)
    table_height: float = 0.0
    pen_object_points: int = 1024
    barrier_hand_stride: int = 1
    part_contact_radius: float = 0.003
    pen_margin: float = 0.0

    def __post_init__(self):
        check_fields(
            self,
            {
                "d0": NON_NEGATIVE,
                "w_palm": NON_NEGATIVE,
                "barrier_d_hat": POSITIVE,
                "tau_fc": NON_NEGATIVE,
                "tau_f": UNIT_INTERVAL,  # forces are scaled to a maximum of 1
                "use_lp": BOOL,
                "table_normal": (_is_unit_vector, "a unit vector of 3 numbers"),
                "table_height": FINITE,
                "pen_object_points": POSITIVE_INT,
                "barrier_hand_stride": NON_NEGATIVE_INT,
                "part_contact_radius": FINITE,
                "pen_margin": NON_NEGATIVE,
            },
        )


def _is_unit_vector(v) -> bool:
    return len(v) == 3 and all(map(is_number, v)) and abs(float(np.linalg.norm(v)) - 1) < 1e-3


def length_scale(target: GraspTarget) -> float:
    """Torque length scale: half the diagonal of the object's bounding box (numpy)."""
    v = np.asarray(target.vertices)
    return float(0.5 * np.linalg.norm(v.max(0) - v.min(0)))


def sdf_first_order(target: GraspTarget, points: Float[Array, "n 3"]) -> Float[Array, " n"]:
    """The object's signed distance at `points`, differentiated through the SDF gradient
    the query already returns: the query runs once, forward only (for terms that read
    only the distance; its second derivatives are not needed). Shape: (n,)."""
    return _first_order(target.sdf, points)


def clearance_first_order(
    target: GraspTarget, target_part: Int[Array, ""] | int, points: Float[Array, "n 3"]
) -> Float[Array, " n"]:
    """`target.part_clearance` at `points`, differentiated like `sdf_first_order`."""
    return _first_order(lambda p: target.part_clearance(target_part, p), points)


def _first_order(field, points):
    fixed = jax.lax.stop_gradient(points)
    d, g = field(fixed)
    return d + jnp.sum(g * (points - fixed), axis=-1)


def barrier_points(
    state: HandState, palm_mask: np.ndarray, params: EnergyParams
) -> Float[Array, "n 3"]:
    """The hand points the part barrier keeps away from the other parts: the non-palm
    contact candidates (fingertips) and every `params.barrier_hand_stride`-th surface
    sample. `palm_mask` (static) marks the palm candidates. Shape: (n, 3)."""
    tips = state.contact_points[np.flatnonzero(~palm_mask)]
    if not params.barrier_hand_stride:
        return tips
    return jnp.concatenate([tips, state.surface_points[:: params.barrier_hand_stride]])


def target_samples(target: GraspTarget, params: EnergyParams) -> ObjectSamples:
    """The object samples `params` asks for (`object_samples`)."""
    return object_samples(target, params.pen_object_points)


def contact_lp_forces(
    hand: HandModel,
    target: GraspTarget,
    root_pos: Float[Array, 3],
    root_quat: Float[Array, 4],
    q: Float[Array, " n_q"],
    *,
    fingers: tuple[str, ...] | None = None,
    scale: float | None = None,
) -> tuple[Float[Array, " n_contacts"], Float[Array, ""]]:
    """The LP-DFC inner solve of one hand pose: (f, P) of `lp_contact_forces` for the
    contact wrenches `total_energy` builds (same arguments). The energy holds f fixed
    (`stop_gradient`), so a batch can solve every hand first and pass the result as
    `total_energy(..., lp_forces=...)`. Shape: (n_contacts,), ()."""
    _, state, length, _, c_in = _posed_contacts(
        hand, target, root_pos, root_quat, q, fingers, scale
    )
    w = contact_wrenches(state.contact_points, c_in, target.com, length)
    return lp_contact_forces(jax.lax.stop_gradient(w))


def _posed_contacts(hand, target, root_pos, root_quat, q, fingers, scale):
    """What `total_energy` and `contact_lp_forces` both start from: the contact
    candidates, the hand state, the torque length scale, and the object's signed
    distance and inward normal at each candidate."""
    contacts = hand.contacts if fingers is None else hand.contacts.select(fingers)
    state = hand_state(hand, root_pos, root_quat, q, contacts)
    length = length_scale(target) if scale is None else scale
    contact_d, contact_g = target.sdf(state.contact_points)
    return contacts, state, length, contact_d, inward_normals(contact_g)


def total_energy(
    weights: EnergyWeights,
    hand: HandModel,
    target: GraspTarget,
    root_pos: Float[Array, 3],
    root_quat: Float[Array, 4],
    q: Float[Array, " n_q"],
    *,
    fingers: tuple[str, ...] | None = None,
    target_part: Int[Array, ""] | int = -1,
    params: EnergyParams = EnergyParams(),
    scale: float | None = None,
    samples: ObjectSamples | None = None,
    lp_forces: tuple[Float[Array, " n_contacts"], Float[Array, ""]] | None = None,
) -> tuple[Float[Array, ""], dict[str, Array]]:
    """Total energy of one hand pose and the unweighted value of every term.

    Args:
        weights: term weights.
        hand: the hand model.
        target: the object (e.g. `jaxgrasp.PreparedObject`), object frame = world.
        root_pos, root_quat, q: the hand pose. Shapes: (3,), (4,), (n_q,).
        fingers: contact candidates to use, by finger (Wrap: all six; Pinch: thumb,
            index, middle, palm). Static.
        target_part: index of the part to grasp (< 0: whole object, no barrier).
        params: term constants.
        scale: torque length scale (default: `length_scale(target)`, computed on host).
        samples: the object samples of the penetration term (default:
            `target_samples(target, params)`).
        lp_forces: the LP-DFC inner solve for this pose, `contact_lp_forces` with the
            same arguments (default: solved here). Used when `params.use_lp`.

    Returns:
        (E, {term: value}) with the terms of `TERMS`.
    """
    contacts, state, length, contact_d, c_in = _posed_contacts(
        hand, target, root_pos, root_quat, q, fingers, scale
    )
    palm_mask = np.array([f == "palm" for f in contacts.finger], dtype=bool)  # static
    is_palm = jnp.asarray(palm_mask)
    if samples is None:
        samples = target_samples(target, params)

    kept_away = barrier_points(state, palm_mask, params)

    if params.use_lp:
        e_fc, _ = lp_dfc_energy(
            state.contact_points,
            c_in,
            target.com,
            length,
            params.tau_fc,
            params.tau_f,
            forces=lp_forces,
        )
    else:
        e_fc = dfc_energy(state.contact_points, c_in, target.com, length)
    surface_d = sdf_first_order(target, state.surface_points)
    e_dis = distance_energy(contact_d, is_palm, params.w_palm, params.d0)
    if params.part_contact_radius >= 0:
        gap = target_part_gap(target, target_part, state.contact_points)
        slack = jnp.where(is_palm, params.d0, 0.0) + params.part_contact_radius
        e_dis = e_dis + jnp.sum(jnp.maximum(gap - slack, 0.0))
    terms = {
        "fc": e_fc,
        "bar": part_barrier_energy(
            clearance_first_order(target, target_part, kept_away), params.barrier_d_hat
        ),
        "dis": e_dis,
        "pen": hand_in_object_energy(surface_d, params.pen_margin)
        + object_in_hand_energy(hand, state.poses, samples.pen_points, params.pen_margin),
        "spen": self_penetration_energy(hand, state.poses),
        "limit": joint_limit_energy(hand, state.q),
        "dir": direction_energy(c_in, state.contact_normals),
        "table": table_energy(
            state.surface_points, jnp.asarray(params.table_normal), params.table_height
        )
        if weights.table
        else jnp.zeros(()),
    }
    total = sum(getattr(weights, k) * v for k, v in terms.items())
    return total, terms


def batched_energy_and_grad(
    weights: EnergyWeights,
    hand: HandModel,
    target: GraspTarget,
    root_pos: Float[Array, "B 3"],
    root_quat: Float[Array, "B 4"],
    q: Float[Array, "B n_q"],
    *,
    chunk: int = 16,
    target_part: Int[Array, ""] | int = -1,
    params: EnergyParams = EnergyParams(),
    samples: ObjectSamples | None = None,
    **kwargs,
):
    """Total energy, term breakdown and gradient (w.r.t. root_pos, root_quat, q) of a batch.

    `total_energy` is vmapped over `chunk` hands at a time and `lax.map`ped over the
    chunks: small chunks keep each chunk's intermediates in cache (on a 2-core CPU this is
    ~3x faster than one vmap over 4096 hands; see `map_in_chunks`). At B = 4096 on that
    CPU, 8-16 hands per chunk cost ~63-74 us/hand, 32 ~79-89 (interleaved calls,
    fastest of 9), 4 ~110. With `params.use_lp` the LP-DFC inner solve runs first, for
    `LP_CHUNK` hands at a time (`contact_lp_forces`; no gradient flows through it). The
    object samples are chosen once for the batch (unless given). Other keyword
    arguments go to `total_energy`. Returns ((E, terms), (g_pos, g_quat, g_q)) with
    leading axis B.
    """
    if samples is None:
        samples = target_samples(target, params)
    poses = (root_pos, root_quat, q)
    fingers, scale = kwargs.get("fingers"), kwargs.get("scale")
    if scale is None:  # once, on host, rather than in every hand's energy
        kwargs["scale"] = scale = length_scale(target)

    def one(p, r, qq, *lp):
        return total_energy(
            weights,
            hand,
            target,
            p,
            r,
            qq,
            target_part=target_part,
            params=params,
            samples=samples,
            lp_forces=lp or None,
            **kwargs,
        )

    lp = ()
    if params.use_lp:

        def solve(p, r, qq):
            return contact_lp_forces(hand, target, p, r, qq, fingers=fingers, scale=scale)

        lp = map_in_chunks(solve, poses, LP_CHUNK)
    vg = jax.value_and_grad(one, argnums=(0, 1, 2), has_aux=True)
    return map_in_chunks(vg, (*poses, *lp), chunk)


def balanced_pieces(num: int, most: int) -> list[tuple[int, int, int]]:
    """(start, stop, size) of the fewest equal pieces of at most `most` rows that cover
    `num` rows; each piece is run padded to `size` rows (fewer than one padded row per
    piece), so one compiled shape serves them all where a shorter last piece would
    compile again. [] for num 0."""
    if num <= 0:
        return []
    count = -(-num // most)
    size = -(-num // count)
    return [(start, min(num, start + size), size) for start in range(0, num, size)]


def map_in_chunks(fn, args: tuple, chunk: int):
    """`jax.vmap(fn)(*args)` over the leading axis, `chunk` rows at a time (`lax.map`
    over the chunks). The chunks are balanced (`balanced_pieces`); `lax.map`'s own
    `batch_size` would compile `fn` a second time for a remainder."""
    batch = args[0].shape[0]
    pieces = balanced_pieces(batch, chunk)
    if not pieces:  # no rows: vmap gives the empty outputs directly
        return jax.vmap(fn)(*args)
    n_chunks, chunk = len(pieces), pieces[0][2]
    pad = n_chunks * chunk - batch

    def padded(x):
        x = jnp.asarray(x)
        x = jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]) if pad else x
        return x.reshape(n_chunks, chunk, *x.shape[1:])

    vfn = jax.vmap(fn)
    out = jax.lax.map(lambda a: vfn(*a), tuple(padded(x) for x in args))
    return jax.tree_util.tree_map(lambda x: x.reshape(-1, *x.shape[2:])[:batch], out)
