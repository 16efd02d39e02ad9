"""Grasp quality metrics sharing the energies' math (pure JAX, one grasp per call).

Q1 (epsilon metric, Ferrari-Canny) with a linearised friction cone: every contact in
contact contributes `n_edges` unit-force cone edges f_k = normalise(c + mu (cos a_k t1 +
sin a_k t2)) and wrenches w_k = [f_k; ((x - centre)/L) x f_k]. Q1 is the radius of the
largest origin-centred ball inside the convex hull of the w_k, i.e. min over unit u of
the support max_k u . w_k (0 when the origin is outside). In JAX we evaluate the support
over a fixed set of unit directions and refine the best ones by projected gradient
descent on an annealed smoothed support; each evaluated direction gives an upper bound,
so the estimate is >= the exact value. On random contact sets it is within ~0.01 of
scipy's ConvexHull value (typical values 0.02-0.25): good for ranking and thresholds, not
yet exact (an exact facet search is future work).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from energies._safe import safe_normalize
from energies.force_closure import contact_wrenches, lp_contact_forces

Q1_DIRECTIONS = 2048
Q1_REFINE_STARTS = 32
Q1_REFINE_STEPS = 200


def cone_wrenches(
    points: Float[Array, "n 3"],
    normals_in: Float[Array, "n 3"],
    center: Float[Array, 3],
    length: float,
    mu: float,
    n_edges: int = 8,
) -> Float[Array, "n n_edges 6"]:
    """Wrenches of the linearised friction cone edges of each contact."""
    c = safe_normalize(normals_in)
    helper = jnp.where(jnp.abs(c[:, :1]) < 0.9, jnp.array([1.0, 0, 0]), jnp.array([0, 1.0, 0]))
    t1 = safe_normalize(jnp.cross(c, helper))
    t2 = jnp.cross(c, t1)
    ang = jnp.arange(n_edges) * (2 * jnp.pi / n_edges)
    f = c[:, None, :] + mu * (
        jnp.cos(ang)[None, :, None] * t1[:, None, :] + jnp.sin(ang)[None, :, None] * t2[:, None, :]
    )
    f = safe_normalize(f)
    arm = (points - center)[:, None, :] / length
    return jnp.concatenate([f, jnp.cross(arm, f)], axis=-1)


def _directions(n: int) -> np.ndarray:
    u = np.random.default_rng(0).normal(size=(n, 6))
    basis = np.concatenate([np.eye(6), -np.eye(6)])
    return np.concatenate([basis, u / np.linalg.norm(u, axis=1, keepdims=True)])


def q1_metric(
    points: Float[Array, "n 3"],
    normals_in: Float[Array, "n 3"],
    active: Bool[Array, " n"],
    center: Float[Array, 3],
    length: float,
    mu: float = 0.6,
    n_edges: int = 8,
) -> Float[Array, ""]:
    """Q1 of the active contacts (see module doc); 0 if no force closure."""
    w = cone_wrenches(points, normals_in, center, length, mu, n_edges).reshape(-1, 6)
    mask = jnp.repeat(active, n_edges)

    def support(u):  # exact max over active wrenches; -inf-safe when none is active
        return jnp.max(jnp.where(mask, w @ u, -1e9))

    def smooth_support(u, temperature):
        s = jnp.where(mask, w @ u, -1e9)
        return jax.nn.logsumexp(temperature * s) / temperature

    dirs = jnp.asarray(_directions(Q1_DIRECTIONS), dtype=w.dtype)
    h = jax.vmap(support)(dirs)
    starts = dirs[jnp.argsort(h)[:Q1_REFINE_STARTS]]

    def refine(u):
        def step(u, sched):
            lr, temp = sched
            g = jax.grad(smooth_support)(u, temp)
            g = g - (g @ u) * u  # tangent to the sphere
            return safe_normalize(u - lr * g), support(u)

        k = jnp.arange(Q1_REFINE_STEPS)
        lrs = 0.05 * 0.97**k
        temps = 50.0 * (4000.0 / 50.0) ** (k / (Q1_REFINE_STEPS - 1))  # anneal the max
        u, hs = jax.lax.scan(step, u, (lrs, temps))
        return jnp.minimum(jnp.min(hs), support(u))

    best = jnp.minimum(jnp.min(h), jnp.min(jax.vmap(refine)(starts)))
    return jnp.where(jnp.any(active), jnp.maximum(best, 0.0), 0.0)


def net_wrench_residual(
    points: Float[Array, "n 3"],
    normals_in: Float[Array, "n 3"],
    active: Bool[Array, " n"],
    center: Float[Array, 3],
    length: float,
) -> Float[Array, ""]:
    """The LP-DFC residual P = min |W f| s.t. max f = 1, f >= 0 over the active contacts
    (inactive contacts contribute nothing)."""
    return lp_contact_forces(contact_wrenches(points, normals_in, center, length), active)[1]
