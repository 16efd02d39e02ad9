"""Object samples inside the hand's collision primitives, and the hand's self-collision
spheres overlapping each other, with the gradient formed in the same pass as the value.

The object term compares every object sample with every primitive: a (k, m) grid per
hand (the self term, every sphere with every sphere). Plain autodiff keeps several such
intermediates for the backward pass and reads them back; here the forward pass reduces
the analytic gradient straight to the primitives' frames (centre, axes), the spheres'
centres and the samples, so the backward pass only scales them. Capsules, boxes and the
self-collision spheres form their (k, m) products as matrix products; any other
primitive kind (sphere primitives) takes the generic `frame_penetration`.
"""

from __future__ import annotations

from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from kinematics.geometry import primitive_sdf


def capsule_penetration(
    centre: Float[Array, "k 3"],
    axis: Float[Array, "k 3"],
    size: Float[Array, "k 3"],
    points: Float[Array, "m 3"],
) -> Float[Array, ""]:
    """Sum over capsules and samples of max(-d, 0), d the distance to the capsule
    (radius size[:, 0], half length size[:, 1] along the unit `axis`)."""
    return _capsule_pass(centre, axis, size, points)


def _capsule_forward(centre, axis, size, points):
    # |x - c - t u|^2 expanded, so that the (k, m) products come from two matrix products
    # and the gradient sums from two more, instead of (k, m) arrays for each coordinate
    # (which XLA's CPU backend materialises one by one). Coordinates are taken relative
    # to the samples' mean to keep the expansion's cancellation small in float32.
    origin = jax.lax.stop_gradient(jnp.mean(points, axis=0))
    x, c = points - origin, centre - origin
    r, h = size[:, 0:1], size[:, 1:2]
    s = jnp.dot(axis, x.T) - jnp.sum(c * axis, -1)[:, None]  # u . (x - c)
    t = jnp.clip(s, -h, h)
    sq = jnp.sum(x * x, -1)[None, :] + jnp.sum(c * c, -1)[:, None] - 2.0 * jnp.dot(c, x.T)
    dist = jnp.sqrt(jnp.maximum(sq - 2.0 * t * s + t * t, 0.0) + 1e-12)
    inside = dist < r
    value = jnp.sum(jnp.where(inside, r - dist, 0.0))
    # d(depth)/d(x) = -w (x - c - t u) with w = 1 / |x - c - t u| inside; the clamped t
    # is a minimiser, so the centre and axis gradients are those at fixed t (envelope
    # theorem): sums of w (x - c - t u) and w t (x - c - t u) over the samples.
    w = jnp.where(inside, 1.0 / dist, 0.0)
    wt = w * t
    sw, swt, swtt = (jnp.sum(v, 1)[:, None] for v in (w, wt, wt * t))
    g_centre = jnp.dot(w, x) - c * sw - axis * swt
    g_axis = jnp.dot(wt, x) - c * swt - axis * swtt
    g_radius = jnp.sum(inside, 1).astype(size.dtype)
    g_size = jnp.stack([g_radius, jnp.zeros_like(g_radius), jnp.zeros_like(g_radius)], -1)
    g_points = jnp.dot(w.T, c) + jnp.dot(wt.T, axis) - jnp.sum(w, 0)[:, None] * x
    return value, (g_centre, g_axis, g_size, g_points)


def box_penetration(
    centre: Float[Array, "k 3"],
    axes: Float[Array, "k 3 3"],
    size: Float[Array, "k 3"],
    points: Float[Array, "m 3"],
) -> Float[Array, ""]:
    """Sum over boxes and samples of max(-d, 0), d the signed distance to the box (half
    extents `size`, axes as the columns of `axes`)."""
    return _box_pass(centre, axes, size, points)


def _box_forward(centre, axes, size, points):
    # Inside a box the depth is the distance to the nearest face, min_i (h_i - |l_i|)
    # with l = axes^T (x - c); outside it is 0. So only the nearest face's coordinate
    # carries a gradient, and every (k, m) product is a matrix product (as for capsules;
    # the generic SDF path formed three (k, m) arrays per coordinate and cost 5x more).
    origin = jax.lax.stop_gradient(jnp.mean(points, axis=0))
    x, c = points - origin, centre - origin
    a = [axes[:, :, i] for i in range(3)]  # (k, 3) each: the i-th axis of every box
    local = [jnp.dot(a[i], x.T) - jnp.sum(c * a[i], -1)[:, None] for i in range(3)]
    slack = [size[:, i : i + 1] - jnp.abs(local[i]) for i in range(3)]
    depth = jnp.minimum(slack[0], jnp.minimum(slack[1], slack[2]))
    inside = depth > 0.0
    value = jnp.sum(jnp.where(inside, depth, 0.0))
    # One face per (box, sample) takes the gradient (the first of tied ones).
    first = inside & (slack[0] <= depth)
    second = inside & ~first & (slack[1] <= depth)
    third = inside & ~first & ~second
    # d depth / d l_i = -sign(l_i) on the nearest face; d depth / d h_i = 1 there.
    w = [
        jnp.where(f, -jnp.sign(li), 0.0)
        for f, li in zip((first, second, third), local, strict=True)
    ]
    sw = [jnp.sum(wi, 1)[:, None] for wi in w]
    g_points = sum(jnp.dot(wi.T, ai) for wi, ai in zip(w, a, strict=True))
    g_centre = -sum(swi * ai for swi, ai in zip(sw, a, strict=True))
    g_axes = jnp.stack([jnp.dot(wi, x) - swi * c for wi, swi in zip(w, sw, strict=True)], -1)
    g_size = jnp.stack([jnp.sum(f, 1) for f in (first, second, third)], -1).astype(size.dtype)
    return value, (g_centre, g_axes, g_size, g_points)


@cache
def sphere_overlap(pair_i: tuple[int, ...], pair_j: tuple[int, ...], n: int):
    """`overlap(centres (n, 3), radii (n,))`: sum over the sphere pairs (pair_i[k],
    pair_j[k]) of max(r_i + r_j - |c_i - c_j|, 0), with the same one-pass gradient. The
    pairs are evaluated densely, as an (n, n) table masked to them."""
    mask = np.zeros((n, n), dtype=bool)
    mask[np.asarray(pair_i), np.asarray(pair_j)] = True

    def forward(centres, radii):
        # |c_i - c_j|^2 from one matrix product (relative to the mean against float32
        # cancellation), as for capsules.
        c = centres - jax.lax.stop_gradient(jnp.mean(centres, axis=0))
        sq = jnp.sum(c * c, -1)
        d2 = sq[:, None] + sq[None, :] - 2.0 * jnp.dot(c, c.T)
        inv = jax.lax.rsqrt(jnp.maximum(d2, 0.0) + 1e-12)
        depth = radii[:, None] + radii[None, :] - d2 * inv
        hit = jnp.asarray(mask) & (depth > 0.0)
        value = jnp.sum(jnp.where(hit, depth, 0.0))
        # d depth / d c_i = -(c_i - c_j) / |c_i - c_j| = -d depth / d c_j.
        w = jnp.where(hit, inv, 0.0)
        g_centres = (jnp.dot(w, c) - jnp.sum(w, 1)[:, None] * c) + (
            jnp.dot(w.T, c) - jnp.sum(w, 0)[:, None] * c
        )
        count = hit.astype(radii.dtype)
        g_radii = jnp.sum(count, 1) + jnp.sum(count, 0)
        return value, (g_centres, g_radii)

    return _one_pass(forward)


def _one_pass(forward):
    """The function `*args -> forward(*args)[0]` with a custom VJP: `forward` returns
    (value, gradient per argument); the forward rule keeps the gradients and the
    arguments (for their device-varying axes) as the residuals, `_scaled_bwd` scales
    them by the cotangent."""

    @jax.custom_vjp
    def f(*args):
        return forward(*args)[0]

    def fwd(*args):
        value, grads = forward(*args)
        return value, (grads, args)

    f.defvjp(fwd, _scaled_bwd)
    return f


def _scaled_bwd(residuals, cotangent):
    grads, args = residuals
    return tuple(_varying_like(cotangent * g, x) for g, x in zip(grads, args, strict=True))


def _varying_like(cotangent, primal):
    """`cotangent` with the device-varying mesh axes of `primal` (inside `shard_map`; a
    no-op elsewhere): an input replicated over devices (the object samples, the
    primitives' sizes) gets the sum of its per-device cotangents, as autodiff would
    give it. Without this `shard_map(check_vma=True)` rejects the backward pass."""
    have, want = _varying_axes(cotangent), _varying_axes(primal)
    if have - want:
        cotangent = jax.lax.psum(cotangent, tuple(sorted(have - want)))
    if want - have:
        cotangent = jax.lax.pcast(cotangent, tuple(sorted(want - have)), to="varying")
    return cotangent


def _varying_axes(x) -> frozenset:
    aval = jax.typeof(x)
    manual = getattr(aval, "manual_axis_type", None)  # jax >= 0.8; `vma` before
    return frozenset(manual.varying if manual is not None else getattr(aval, "vma", ()))


_capsule_pass = _one_pass(_capsule_forward)
_box_pass = _one_pass(_box_forward)


@cache
def frame_penetration(kind: int):
    """`penetration(centre (k, 3), axes (k, 3, 3; columns), size (k, 3), points (m, 3))`:
    sum of max(-d, 0) over primitives of `kind` and samples, d the primitive's signed
    distance, with the same one-pass gradient."""

    def forward(centre, axes, size, points):
        p = [points[:, j][None, :] - centre[:, j : j + 1] for j in range(3)]
        local = [sum(axes[:, j, i : i + 1] * p[j] for j in range(3)) for i in range(3)]
        d, sdf_vjp = jax.vjp(lambda s, x, y, z: primitive_sdf(kind, s, x, y, z), size, *local)
        inside = d < 0.0
        # d(depth)/d(local) = -grad sdf where inside.
        g_size, *g_local = sdf_vjp(jnp.where(inside, -1.0, 0.0).astype(d.dtype))
        # local_i = sum_j axes[j, i] p_j, p_j = point_j - centre_j.
        g_p = [sum(axes[:, j, i : i + 1] * g_local[i] for i in range(3)) for j in range(3)]
        g_centre = -jnp.stack([jnp.sum(g, 1) for g in g_p], -1)
        g_axes = jnp.stack(
            [jnp.stack([jnp.sum(p[j] * g_local[i], 1) for i in range(3)], -1) for j in range(3)],
            -2,
        )
        g_points = jnp.stack([jnp.sum(g, 0) for g in g_p], -1)
        value = jnp.sum(jnp.where(inside, -d, 0.0))
        return value, (g_centre, g_axes, g_size, g_points)

    return _one_pass(forward)
