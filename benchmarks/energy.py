"""Total energy + gradient per hand: Shadow, a procedural mug (target: handle), Wrap.

Run: python benchmarks/energy.py [--batches 256 1024 4096 16384] [--repeats 11] [--chunk 16]
Writes benchmarks/results/energy.json: one record per B with `B`, `compile_s`
(lower + compile), `us_per_hand` (median call / B, block_until_ready) and
`us_per_hand_min` (fastest call / B), plus a per-term breakdown at --breakdown-batch
(each term alone with the FK it needs, value + gradient, chunked like the total).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks._common import (  # noqa: E402
    compile_seconds,
    environment,
    wall_seconds,
    write_results,
)
from energies import (  # noqa: E402
    EnergyParams,
    EnergyWeights,
    batched_energy_and_grad,
    dfc_energy,
    distance_energy,
    hand_in_object_energy,
    inward_normals,
    length_scale,
    lp_dfc_energy,
    object_in_hand_energy,
    part_barrier_energy,
    self_penetration_energy,
    target_part_gap,
    target_samples,
)
from energies.hand_state import hand_state  # noqa: E402
from energies.total import (  # noqa: E402
    LP_CHUNK,
    barrier_points,
    clearance_first_order,
    contact_lp_forces,
    map_in_chunks,
    sdf_first_order,
)
from jaxgrasp import objects  # noqa: E402
from kinematics import load_hand  # noqa: E402


def _inputs(hand, obj, batch, seed=0):
    rng = np.random.default_rng(seed)
    lo, hi = np.asarray(hand.q_range).T
    quat = rng.normal(size=(batch, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    pos = np.asarray(obj.com) + rng.normal(size=(batch, 3)) * 0.05
    return (
        jnp.asarray(pos, jnp.float32),
        jnp.asarray(quat, jnp.float32),
        jnp.asarray(rng.uniform(lo, hi, (batch, hand.n_q)), jnp.float32),
    )


def _time(fn, inputs, batch, repeats):
    """(compile s, median us per hand, fastest us per hand)."""
    exe, comp = compile_seconds(fn, *inputs)
    sec = wall_seconds(lambda: jax.block_until_ready(exe(*inputs)), repeats, warmup=1)
    return comp, sec["median"] / batch * 1e6, sec["min"] / batch * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, nargs="+", default=[256, 1024, 4096, 16384])
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--chunk", type=int, default=16)
    ap.add_argument("--breakdown-batch", type=int, default=1024)
    args = ap.parse_args()

    hand = load_hand("shadow")
    obj = objects.make_object("mug", 0)
    part = obj.part_index("handle")
    length = length_scale(obj)
    weights, params = EnergyWeights(), EnergyParams()

    records = []
    for batch in args.batches:
        fn = jax.jit(
            lambda p, r, q: batched_energy_and_grad(
                weights, hand, obj, p, r, q, chunk=args.chunk, target_part=part, scale=length
            )
        )
        repeats = args.repeats if batch <= 4096 else max(3, args.repeats // 4)
        comp, us, best = _time(fn, _inputs(hand, obj, batch), batch, repeats)
        records.append(
            dict(
                B=batch,
                chunk=args.chunk,
                compile_s=comp,
                us_per_hand=us,
                us_per_hand_min=best,
                repeats=repeats,
            )
        )
        print(
            f"total B={batch:6d} compile={comp:6.2f}s {us:9.1f} us/hand (fastest {best:.1f})",
            flush=True,
        )

    samples = target_samples(obj, params)
    palm = np.array([f == "palm" for f in hand.contacts.finger], dtype=bool)

    def term(name):
        def fn(p, r, q, *lp):
            st = hand_state(hand, p, r, q)
            if name == "fk+points":
                return jnp.sum(st.surface_points) + jnp.sum(st.contact_points)
            d, g = obj.sdf(st.contact_points)
            c = inward_normals(g)
            return {
                "dis+part_gap": lambda: (
                    distance_energy(d, palm, params.w_palm, params.d0)
                    + jnp.sum(target_part_gap(obj, part, st.contact_points))
                ),
                "pen_hand_in_object": lambda: hand_in_object_energy(
                    sdf_first_order(obj, st.surface_points)
                ),
                "pen_object_in_hand": lambda: object_in_hand_energy(
                    hand, st.poses, samples.pen_points
                ),
                "spen": lambda: self_penetration_energy(hand, st.poses),
                "bar": lambda: part_barrier_energy(
                    clearance_first_order(obj, part, barrier_points(st, palm, params)),
                    params.barrier_d_hat,
                ),
                "fc_lp": lambda: lp_dfc_energy(
                    st.contact_points,
                    c,
                    obj.com,
                    length,
                    params.tau_fc,
                    params.tau_f,
                    forces=lp,
                )[0],
                "fc_dfc": lambda: dfc_energy(st.contact_points, c, obj.com, length),
            }[name]()

        return fn

    def lp_solve(p, r, q):
        return contact_lp_forces(hand, obj, p, r, q, scale=length)

    breakdown = []
    b = args.breakdown_batch
    # The LP-DFC inner solve alone (no gradient), as `batched_energy_and_grad` runs it.
    comp, us, best = _time(
        jax.jit(lambda p, r, q: map_in_chunks(lp_solve, (p, r, q), LP_CHUNK)),
        _inputs(hand, obj, b),
        b,
        5,
    )
    breakdown.append(
        dict(term="lp_inner_solve", B=b, compile_s=comp, us_per_hand=us, us_per_hand_min=best)
    )
    print(f"term {'lp_inner_solve':20s} B={b} {us:9.1f} us/hand (fastest {best:.1f})", flush=True)
    for name in (
        "fk+points",
        "dis+part_gap",
        "pen_hand_in_object",
        "pen_object_in_hand",
        "spen",
        "bar",
        "fc_lp",
        "fc_dfc",
    ):
        vg = jax.value_and_grad(term(name), argnums=(0, 1, 2))
        if name == "fc_lp":  # as in the total: the inner solve first (`lp_inner_solve`)
            fn = jax.jit(
                lambda p, r, q, vg=vg: map_in_chunks(
                    vg, (p, r, q, *map_in_chunks(lp_solve, (p, r, q), LP_CHUNK)), args.chunk
                )
            )
        else:
            fn = jax.jit(lambda p, r, q, vg=vg: map_in_chunks(vg, (p, r, q), args.chunk))
        comp, us, best = _time(fn, _inputs(hand, obj, b), b, 5)
        breakdown.append(dict(term=name, B=b, compile_s=comp, us_per_hand=us, us_per_hand_min=best))
        print(f"term {name:20s} B={b} {us:9.1f} us/hand (fastest {best:.1f})", flush=True)

    path = write_results(
        "energy",
        {
            "benchmark": "total energy + gradient per hand",
            "hand": "shadow",
            "object": "procedural mug seed 0 (target part: handle)",
            "contacts": "wrap (5 fingertips + palm)",
            "n_hand_surface_points": hand.surface.count,
            "n_object_points": obj.n_points,
            "params": dataclasses.asdict(params),
            "weights": dataclasses.asdict(weights),
            "target_us_per_hand_B4096": 70.0,
            "notes": "total: batched_energy_and_grad (vmap over chunks of --chunk hands, "
            "lax.map over chunks), value + gradient w.r.t. root pose and joints, "
            "float32; the LP-DFC inner solve runs first, LP_CHUNK hands at a time "
            "(no gradient). breakdown: each term alone (with its FK), value + gradient, "
            "chunked the same way; fc_lp includes the inner solve, lp_inner_solve is "
            "that solve alone. us_per_hand is the median call, us_per_hand_min the "
            "fastest: on a shared 2-core VM whole stretches of calls can run up to 1.5x "
            "slower when the host takes a core away.",
            "environment": environment(),
            "records": records,
            "breakdown": breakdown,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
