"""Differentiable force closure (DFC) and its LP-relaxed variant (DexVLG App. A.2-A.3).

Contact i at position x_i with inward unit normal c_i exerts the unit wrench
    w_i = [c_i ; ((x_i - centre) / L) x c_i]
where L is a fixed length (the object's bounding-box half diagonal, as BODex uses the OBB
half diagonal) so force and torque rows are commensurate. DFC is |sum_i w_i| (every
contact pushes with unit force). The LP relaxation lets the magnitudes vary:
    P = min_f |W f|  s.t.  max_i f_i = 1,  f_i >= 0,
solved exactly as n box-constrained least squares (f_j = 1, 0 <= f_others <= 1), each
by a fixed number of accelerated projected-gradient (FISTA) steps then primal active-set
steps (`energies._box_qp`) - batched, no Python loop over hands, no host callback.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from energies._box_qp import solve_fixings

# FISTA warm-start iterations and primal active-set steps of the inner solve.
LP_ITERATIONS = 10
LP_ACTIVE_SET_STEPS = 8


def contact_wrenches(
    points: Float[Array, "n 3"],
    normals_in: Float[Array, "n 3"],
    center: Float[Array, 3],
    length: Float[Array, ""] | float,
) -> Float[Array, "6 n"]:
    """Unit contact wrenches as columns: [c_i; ((x_i - centre)/L) x c_i]. Shape: (6, n)."""
    arm = (points - center) / length
    torque = jnp.cross(arm, normals_in)
    return jnp.concatenate([normals_in, torque], axis=-1).T


def dfc_energy(
    points: Float[Array, "n 3"],
    normals_in: Float[Array, "n 3"],
    center: Float[Array, 3],
    length: Float[Array, ""] | float,
) -> Float[Array, ""]:
    """DFC: |G c| = |sum_i w_i| (equal unit contact forces)."""
    w = contact_wrenches(points, normals_in, center, length)
    return _norm(jnp.sum(w, axis=1))


def lp_contact_forces(
    wrenches: Float[Array, "6 n"], active: Bool[Array, " n"] | None = None
) -> tuple[Float[Array, " n"], Float[Array, ""]]:
    """Solve P = min_f |W f| s.t. max f = 1, f >= 0 (see module doc).

    `active` restricts the solve to some contacts (the others get f = 0). Returns (f, P);
    f has max 1. Shape: (n,), ().
    """
    w = jnp.asarray(wrenches)
    if active is not None:
        w = jnp.where(active[None, :], w, 0.0)
    fs, objs = solve_fixings(w.T @ w, LP_ITERATIONS, LP_ACTIVE_SET_STEPS)
    if active is not None:  # only an active contact may carry the unit force
        objs = jnp.where(active, objs, jnp.inf)
        fs = jnp.where(active[None, :], fs, 0.0)
    best = jnp.argmin(objs)
    p = jnp.sqrt(jnp.maximum(objs[best], 0.0))
    return fs[best], jnp.where(jnp.isfinite(p), p, 0.0)


def lp_dfc_energy(
    points: Float[Array, "n 3"],
    normals_in: Float[Array, "n 3"],
    center: Float[Array, 3],
    length: Float[Array, ""] | float,
    tau_fc: float,
    tau_f: float,
    active: Bool[Array, " n"] | None = None,
    forces: tuple[Float[Array, " n"], Float[Array, ""]] | None = None,
) -> tuple[Float[Array, ""], dict[str, Array]]:
    """LP-relaxed DFC with DexVLG's switch rule (eq. 11).

    E = |W f| if P < tau_fc and min_i f_i >= tau_f, else |W 1| (plain DFC); f comes from
    the inner solve under `stop_gradient`. `active` masks contacts out (their wrench is
    zeroed). `forces`: the inner solve's (f, P) for these contacts, computed beforehand
    (`lp_contact_forces` of the same wrenches; a batch solves them all at once, see
    `energies.batched_energy_and_grad`); solved here when None.
    Returns (E, {"P", "f", "use_lp"}).
    """
    w = contact_wrenches(points, normals_in, center, length)
    if active is not None:
        w = jnp.where(active[None, :], w, 0.0)
    if forces is None:
        forces = lp_contact_forces(jax.lax.stop_gradient(w), active)
    f, p = (jax.lax.stop_gradient(x) for x in forces)
    f_min = jnp.min(f if active is None else jnp.where(active, f, 1.0))
    use_lp = (p < tau_fc) & (f_min >= tau_f)
    energy = jnp.where(use_lp, _norm(w @ f), _norm(jnp.sum(w, axis=1)))
    return energy, {"P": p, "f": f, "use_lp": use_lp}


def _norm(v):
    # Finite gradient at 0: a perfect closure has zero residual.
    return jnp.sqrt(jnp.sum(v * v) + 1e-12)
