"""Forward kinematics speed: jaxgrasp vs MJX vs MuJoCo C, forward and with gradient.

Run: python benchmarks/fk.py [--batches 1 256 1024 4096 16384] [--repeats 20]
Writes benchmarks/results/fk.json: one record per (impl, mode, B) with compile seconds
(lower + compile, separately) and steady-state microseconds per hand (median of --repeats
calls, block_until_ready).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "disable")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks._common import (  # noqa: E402
    compile_seconds,
    environment,
    median_seconds,
    write_results,
)
from kinematics import forward_kinematics, full_joint_angles, load_hand  # noqa: E402


def _inputs(hand, batch, seed=0):
    rng = np.random.default_rng(seed)
    lo, hi = np.asarray(hand.q_range).T
    quat = rng.normal(size=(batch, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    return (
        jnp.asarray(rng.uniform(-0.5, 0.5, (batch, 3)), jnp.float32),
        jnp.asarray(quat, jnp.float32),
        jnp.asarray(rng.uniform(lo, hi, (batch, hand.n_q)), jnp.float32),
    )


def bench_jaxgrasp(hand, batch, repeats):
    pos, quat, q = _inputs(hand, batch)

    def fk(p, r, qq):
        return forward_kinematics(hand, p, r, qq)

    def scalar(p, r, qq):  # a scalar of all body poses, for the gradient
        out = fk(p, r, qq)
        return jnp.sum(out.pos**2) + jnp.sum(out.rot)

    fns = {
        "forward": jax.jit(jax.vmap(fk)),
        "grad": jax.jit(jax.vmap(jax.grad(scalar, argnums=(0, 1, 2)))),
    }
    out = []
    for mode, fn in fns.items():
        exe, comp = compile_seconds(fn, pos, quat, q)
        sec = median_seconds(lambda exe=exe: jax.block_until_ready(exe(pos, quat, q)), repeats)
        out.append(
            dict(impl="jaxgrasp", mode=mode, B=batch, compile_s=comp, us_per_hand=sec / batch * 1e6)
        )
    return out


def bench_mjx(hand, model, batch, repeats):
    from mujoco import mjx

    # MJX rejects geom margins on some mesh pairs; kinematics does not use them.
    model = mujoco.MjModel.from_xml_path(hand.source)
    model.geom_margin[:] = 0.0
    model.geom_gap[:] = 0.0
    mx = mjx.put_model(model)
    d0 = mjx.make_data(model)
    _, _, q = _inputs(hand, batch)
    full = jax.vmap(lambda qq: full_joint_angles(hand, qq))(q)
    adr = np.array([model.joint(n).qposadr[0] for n in hand.joint_names])
    qpos = jnp.tile(jnp.asarray(model.qpos0, jnp.float32), (batch, 1)).at[:, adr].set(full)

    def kin(qp):
        return mjx.kinematics(mx, d0.replace(qpos=qp))

    def scalar(qp):
        d = kin(qp)
        return jnp.sum(d.xpos**2) + jnp.sum(d.xmat)

    fns = {
        "forward": jax.jit(jax.vmap(lambda qp: kin(qp).xpos)),
        "grad": jax.jit(jax.vmap(jax.grad(scalar))),
    }
    out = []
    for mode, fn in fns.items():
        exe, comp = compile_seconds(fn, qpos)
        sec = median_seconds(lambda exe=exe: jax.block_until_ready(exe(qpos)), repeats)
        out.append(
            dict(impl="mjx", mode=mode, B=batch, compile_s=comp, us_per_hand=sec / batch * 1e6)
        )
    return out


def bench_mujoco_c(hand, model, batch, repeats):
    data = mujoco.MjData(model)
    _, _, q = _inputs(hand, batch)
    full = np.asarray(jax.vmap(lambda qq: full_joint_angles(hand, qq))(q), dtype=np.float64)
    adr = np.array([model.joint(n).qposadr[0] for n in hand.joint_names])
    qpos = np.tile(model.qpos0, (batch, 1))
    qpos[:, adr] = full

    def run():
        for i in range(batch):
            data.qpos[:] = qpos[i]
            mujoco.mj_kinematics(model, data)

    sec = median_seconds(run, max(3, repeats if batch <= 4096 else repeats // 2))
    return [
        dict(impl="mujoco_c", mode="forward", B=batch, compile_s=0.0, us_per_hand=sec / batch * 1e6)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 256, 1024, 4096, 16384])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--hand", default="shadow")
    args = ap.parse_args()

    hand = load_hand(args.hand, n_surface_points=64)
    model = mujoco.MjModel.from_xml_path(hand.source)
    records = []
    for batch in args.batches:
        for bench in (
            lambda b: bench_jaxgrasp(hand, b, args.repeats),
            lambda b: bench_mjx(hand, model, b, args.repeats),
            lambda b: bench_mujoco_c(hand, model, b, args.repeats),
        ):
            for rec in bench(batch):
                records.append(rec)
                print(
                    f"{rec['impl']:9s} {rec['mode']:7s} B={rec['B']:6d} "
                    f"compile={rec['compile_s']:7.2f}s  {rec['us_per_hand']:9.2f} us/hand",
                    flush=True,
                )
    path = write_results(
        "fk",
        {
            "benchmark": "forward kinematics",
            "hand": args.hand,
            "n_bodies_jaxgrasp": hand.n_bodies,
            "n_bodies_mujoco_model": int(model.nbody),
            "notes": (
                "jaxgrasp: FK of the hand's bodies below the root from the independent joint "
                "vector (couplings applied). mjx / mujoco_c: kinematics of the whole scene file "
                "the hand is loaded from (all bodies), qpos with couplings applied. "
                "mujoco_c has no gradient. float32 for JAX, float64 for MuJoCo C. "
                "us_per_hand = median call time / B; compile_s = lower().compile() seconds."
            ),
            "targets_B4096": {"forward_us": 4.0, "grad_us": 25.0},
            "environment": environment(),
            "records": records,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
