"""MJX's Newton step for elliptic friction cones, with the constraint Hessian assembled
contact by contact instead of through a dense (nefc, nefc) matrix.

MJX (`mujoco.mjx._src.solver._update_gradient`) builds the Hessian of an elliptic-cone
problem as `J^T C J` with C a dense (nefc, nefc) matrix, adding each contact's cone block
to C in a Python loop. The validation scene has ~144 contacts and nefc ~ 666: each
gradient update copies C once per contact, and one `mjx.step` costs ~120 ms on this CPU
(and compiles slowly). The same Hessian is `J^T diag(D * active) J` plus, per contact,
`J_c^T H_c J_c` (J_c: the contact's condim rows of J, H_c: its cone block), which is one
gather and one einsum: ~6 ms per step, same numbers (the test compares them).

`elliptic_newton()` swaps this version in only while a function is being traced (JAX
traces Python once and keeps the compiled program), so MJX is left as it was for
everyone else. Where MJX's solver does not look as expected (another MJX version), it
changes nothing.
"""

from __future__ import annotations

import contextlib
import threading

import jax
import jax.numpy as jnp
import numpy as np

_lock = threading.RLock()  # re-entrant: a traced function may trace another


def _stock():
    from mujoco.mjx._src import solver

    return solver


def supported() -> bool:
    """The installed MJX has the solver internals this module replaces."""
    try:
        solver = _stock()
        fields = solver.Context.__dataclass_fields__
    except (ImportError, AttributeError):
        return False
    return callable(getattr(solver, "_update_gradient", None)) and {
        "h",
        "active",
        "Ma",
        "qfrc_constraint",
        "grad",
        "Mgrad",
    } <= set(fields)


def update_gradient(m, d, ctx, *, _stock_update=None):
    """`solver._update_gradient` with the cone Hessian assembled per contact (Newton,
    elliptic cones); any other solver / cone goes to MJX's own."""
    from mujoco.mjx._src import support
    from mujoco.mjx._src.types import ConeType, SolverType

    stock = _stock_update or _stock()._update_gradient
    if m.opt.solver != SolverType.NEWTON or m.opt.cone != ConeType.ELLIPTIC:
        return stock(m, d, ctx)
    grad = ctx.Ma - d.qfrc_smooth - ctx.qfrc_constraint
    efc_j = d._impl.efc_J
    h = (efc_j.T * (d._impl.efc_D * ctx.active)) @ efc_j
    # Contact dims and efc addresses are static in MJX (fixed at put_model).
    dim = np.asarray(d._impl.contact.dim)
    cone = dim > 1
    adr, dim = np.asarray(d._impl.contact.efc_address)[cone], dim[cone]
    if len(dim):
        width = ctx.h.shape[-1]  # 6: the largest condim
        k = np.arange(width)
        mask = k[None, :] < dim[:, None]  # (n_cone, width)
        rows = np.where(mask, adr[:, None] + k[None, :], 0)
        j_c = efc_j[rows] * mask[:, :, None]  # (n_cone, width, nv)
        h_c = ctx.h * (mask[:, :, None] & mask[:, None, :])
        h = h + jnp.einsum("cin,cij,cjm->nm", j_c, h_c, j_c)
    h = support.full_m(m, d) + h
    h_sym = (h + h.T) * 0.5  # as MJX: symmetrise before the Cholesky factorisation
    mgrad = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(h_sym), grad)
    return ctx.replace(grad=grad, Mgrad=mgrad)


@contextlib.contextmanager
def elliptic_newton():
    """While active (use it around tracing), MJX's Newton solver assembles elliptic cone
    Hessians with `update_gradient`. Restores MJX's own on exit."""
    if not supported():
        yield
        return
    solver = _stock()
    with _lock:
        stock = solver._update_gradient
        solver._update_gradient = lambda m, d, ctx: update_gradient(m, d, ctx, _stock_update=stock)
        try:
            yield
        finally:
            solver._update_gradient = stock
