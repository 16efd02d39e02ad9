"""Shared fixtures: hands are built once per test session (building samples geometry)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "disable")

import mujoco
import numpy as np
import pytest

from kinematics import load_hand


@pytest.fixture(scope="session")
def shadow():
    return load_hand("shadow")


@pytest.fixture(scope="session")
def adroit():
    return load_hand("adroit")


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
