"""The LP-DFC inner problem, written out element by element for a small, static n.

    P^2 = min_j  min { f^T Q f : f_j = 1, 0 <= f_i <= 1 }

All n "fixings" j are solved at once: every variable f_i is an array over j (shape (n,)),
and every matrix entry Q_ik a scalar, so the whole solve is elementwise arithmetic that
XLA fuses across a vmapped batch (written with (n, n) matmuls and a LAPACK solve per
step, the same algorithm ran several times slower on CPU: per-op overhead on 6-element
arrays, not arithmetic). Per fixing: a short FISTA warm start, then primal active-set
steps (Nocedal & Wright, Alg. 16.3), which end at the exact optimum once the active set
is right. The active-set steps run in a rolled loop: unrolled, XLA fused consecutive
steps into each other and recomputed them (30x slower).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

_BOUND_TOL = 1e-7  # a variable this close to a bound counts as on it
_STEP_TOL = 1e-12  # an active-set direction shorter than this means "subspace optimal"
_RIDGE = 1e-12
_PIVOT_FLOOR = 1e-9  # LDL pivots >= this x the largest diagonal entry


def solve_fixings(
    gram: Float[Array, "n n"], fista_steps: int, active_set_steps: int
) -> tuple[Float[Array, "n n"], Float[Array, " n"]]:
    """Box-constrained QPs for every fixing j. Returns (F, obj) with F[j] the minimiser
    with f_j = 1 and obj[j] its objective. Shape: (n, n), (n,)."""
    n = gram.shape[0]
    q = [[gram[i, k] for k in range(n)] for i in range(n)]
    fixed = [jnp.arange(n) == i for i in range(n)]  # over fixings j: is f_i the fixed one
    lo = [jnp.where(fx, 1.0, 0.0) for fx in fixed]

    def clip(f):
        return [jnp.clip(fi, lo_i, 1.0) for fi, lo_i in zip(f, lo, strict=True)]

    def matvec(f):
        return [sum(q[i][k] * f[k] for k in range(n)) for i in range(n)]

    # FISTA with step 1 / Lipschitz bound (2 |Q|_F).
    step = 1.0 / (2.0 * jnp.sqrt(sum(q[i][k] ** 2 for i in range(n) for k in range(n))) + _RIDGE)
    f = clip([jnp.full(n, 0.5)] * n)
    y, t = f, 1.0
    for _ in range(fista_steps):
        g = matvec(y)
        f_next = clip([y[i] - 2.0 * step * g[i] for i in range(n)])
        t_next = 0.5 * (1.0 + (1.0 + 4.0 * t * t) ** 0.5)
        y = [f_next[i] + ((t - 1.0) / t_next) * (f_next[i] - f[i]) for i in range(n)]
        f, t = f_next, t_next

    held = [((f[i] <= _BOUND_TOL) | (f[i] >= 1.0 - _BOUND_TOL)) & ~fixed[i] for i in range(n)]
    f = [jnp.where(held[i], jnp.round(f[i]), f[i]) for i in range(n)]
    (f, held), _ = jax.lax.scan(
        lambda c, _: (_active_set_step(q, c[0], c[1], fixed, lo), None),
        (f, held),
        None,
        length=active_set_steps,
    )

    g = matvec(f)
    obj = sum(f[i] * g[i] for i in range(n))
    return jnp.stack(f, axis=1), obj


def _active_set_step(q, f, held, fixed, lo):
    # Minimise over the free variables with the held ones fixed; if that moves, step
    # towards it up to the first bound hit (which becomes held); if it does not, release
    # the held variable with the most negative multiplier.
    n = len(f)
    free = [~held[i] & ~fixed[i] for i in range(n)]
    m = [
        [
            jnp.where(free[i] & free[k], q[i][k], 0.0)
            + (jnp.where(free[i], _RIDGE, 1.0) if i == k else 0.0)
            for k in range(n)
        ]
        for i in range(n)
    ]
    rhs = [
        jnp.where(free[i], -sum(q[i][k] * jnp.where(free[k], 0.0, f[k]) for k in range(n)), 0.0)
        for i in range(n)
    ]
    x = _ldl_solve(m, rhs)
    d = [jnp.where(free[i], x[i] - f[i], 0.0) for i in range(n)]
    moving = _max([jnp.abs(di) for di in d]) > _STEP_TOL
    room = [jnp.where(d[i] < 0, f[i] - lo[i], 1.0 - f[i]) for i in range(n)]
    ratio = [
        jnp.clip(
            jnp.where(
                jnp.abs(d[i]) > _STEP_TOL, room[i] / jnp.maximum(jnp.abs(d[i]), _STEP_TOL), 1.0
            ),
            0.0,
            1.0,
        )
        for i in range(n)
    ]
    alpha = _min(ratio)
    blocking = _first(ratio, alpha, alpha < 1.0)
    g = [sum(q[i][k] * f[k] for k in range(n)) for i in range(n)]
    mult = [
        jnp.where(held[i] & ~fixed[i], jnp.where(f[i] <= lo[i] + _BOUND_TOL, g[i], -g[i]), jnp.inf)
        for i in range(n)
    ]
    lowest = _min(mult)
    release = _first(mult, lowest, lowest < 0.0)
    f_new = [jnp.where(moving, jnp.clip(f[i] + alpha * d[i], lo[i], 1.0), f[i]) for i in range(n)]
    held_new = [jnp.where(moving, held[i] | blocking[i], held[i] & ~release[i]) for i in range(n)]
    return f_new, held_new


def _ldl_solve(m, b):
    """Solve m x = b (m symmetric PSD, lists of arrays) by an unrolled LDL^T factorisation.
    Pivots are floored, so a singular m (coincident contacts) still gives a finite x."""
    n = len(b)
    floor = _PIVOT_FLOOR * _max([jnp.abs(m[i][i]) for i in range(n)]) + 1e-30
    low = [[None] * n for _ in range(n)]
    diag = []
    for j in range(n):
        dj = jnp.maximum(m[j][j] - sum(low[j][k] ** 2 * diag[k] for k in range(j)), floor)
        diag.append(dj)
        for i in range(j + 1, n):
            low[i][j] = (m[i][j] - sum(low[i][k] * low[j][k] * diag[k] for k in range(j))) / dj
    y = []
    for i in range(n):
        y.append(b[i] - sum(low[i][k] * y[k] for k in range(i)))
    x = [None] * n
    for i in reversed(range(n)):
        x[i] = y[i] / diag[i] - sum(low[k][i] * x[k] for k in range(i + 1, n))
    return x


def _max(xs):
    out = xs[0]
    for x in xs[1:]:
        out = jnp.maximum(out, x)
    return out


def _min(xs):
    out = xs[0]
    for x in xs[1:]:
        out = jnp.minimum(out, x)
    return out


def _first(xs, value, enabled):
    """One-hot (list of bool arrays) of the first i with xs[i] == value, where enabled."""
    taken = jnp.zeros_like(enabled)
    out = []
    for x in xs:
        hit = enabled & ~taken & (x == value)
        out.append(hit)
        taken = taken | hit
    return out
