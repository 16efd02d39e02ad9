"""Shared fixtures: hands are built once per test session (building samples geometry)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("MUJOCO_GL", "disable")

import jax
import mujoco
import numpy as np
import pytest

from kinematics import load_hand


def _share_compilation_cache() -> None:
    """One persistent compilation cache for the session, its pytest-xdist workers and
    the processes its tests start (killed-and-resumed runs, the CLI): they compile the
    same programs. A fresh directory, removed at exit; a cache set by the caller wins."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    path = tempfile.mkdtemp(prefix="jaxgrasp-tests-jit-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = path  # inherited by subprocesses
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "1"
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


_share_compilation_cache()


@pytest.fixture(scope="session")
def shadow():
    return load_hand("shadow")


@pytest.fixture(scope="session")
def adroit():
    return load_hand("adroit")


def float64_copy(tree):
    """Float64 copies of a pytree's float leaves (a hand, an object) for tests under
    `jax.enable_x64(True)`. Fresh arrays, not the session fixtures' own: JAX caches the
    dtype canonicalisation of a numpy constant by identity (see `kinematics.fk._Plan`),
    so a leaf that an earlier float32 test of the same worker had used entered a float64
    program as float32, which failed to lower."""

    def copy(a):
        a = np.asarray(a)
        return a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else a

    return jax.tree_util.tree_map(copy, tree)


def random_q(hand, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    """Uniform independent joint values inside the hand's limits. Shape: (n, n_q) or (n_q,)."""
    lo, hi = np.asarray(hand.q_range).T
    shape = (hand.n_q,) if n is None else (n, hand.n_q)
    return rng.uniform(lo, hi, size=shape)


def random_quat(rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    """Uniform random unit quaternions (wxyz)."""
    shape = (4,) if n is None else (n, 4)
    q = rng.normal(size=shape)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def mujoco_model_of(hand) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_path(hand.source)
