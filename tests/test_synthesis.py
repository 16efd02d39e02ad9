"""Synthesis: determinism, sharding equivalence, bad input, the pipeline's outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from energies import EnergyWeights
from jaxgrasp import objects
from jaxgrasp.cli import main as cli_main
from jaxgrasp.object_model import ObjectError
from jaxgrasp.pipeline import SUMMARY_KEYS, run_synthesis
from jaxgrasp.synthesis import SynthesisConfig, SynthesisError, synthesize

# Tiny runs: the point is the plumbing, not grasp quality (see benchmarks/synthesis.py).
TINY = SynthesisConfig(steps=4, energy_chunk=4, device_batch=8)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def knife():
    return objects.make_object("knife", 0)


def test_synthesis_is_deterministic_and_moves_the_hands(shadow, knife):
    a = synthesize(shadow, knife, "handle", num=6, seed=3, config=TINY)
    b = synthesize(shadow, knife, "handle", num=6, seed=3, config=TINY)
    c = synthesize(shadow, knife, "handle", num=6, seed=4, config=TINY)
    for k in ("root_pos", "root_quat", "q_grasp", "energy"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    assert not np.allclose(a.root_pos, c.root_pos)
    assert np.all(np.isfinite(a.energy)) and set(a.terms) >= {"fc", "dis", "pen", "bar"}
    np.testing.assert_allclose(np.linalg.norm(a.root_quat, axis=1), 1.0, atol=1e-5)
    lo, hi = np.asarray(shadow.q_range).T
    assert np.all(a.q_grasp >= lo - 1e-6) and np.all(a.q_grasp <= hi + 1e-6)
    longer = synthesize(
        shadow, knife, "handle", num=6, seed=3, config=SynthesisConfig(steps=40, energy_chunk=4)
    )
    assert np.median(longer.energy) < np.median(a.energy)  # the optimizer descends


def test_sharded_run_matches_one_device(shadow, knife, tmp_path):
    one = synthesize(shadow, knife, "handle", num=6, seed=1, config=TINY)
    script = textwrap.dedent(
        f"""
        import numpy as np, jax
        assert len(jax.devices()) == 4, jax.devices()
        from kinematics import load_hand
        from jaxgrasp import objects
        from jaxgrasp.synthesis import SynthesisConfig, synthesize
        gs = synthesize(load_hand("shadow"), objects.make_object("knife", 0), "handle",
                        num=6, seed=1, config=SynthesisConfig(steps=4, energy_chunk=4,
                        device_batch=8))
        gs.save({str(tmp_path / "four.npz")!r})
        """
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, env=env)
    from jaxgrasp.grasp_set import GraspSet

    four = GraspSet.load(tmp_path / "four.npz")
    np.testing.assert_allclose(four.root_pos, one.root_pos, atol=1e-5)
    np.testing.assert_allclose(four.q_grasp, one.q_grasp, atol=1e-4)
    np.testing.assert_allclose(four.energy, one.energy, rtol=1e-4, atol=1e-5)


def test_bad_input_gets_clear_errors(shadow, knife):
    with pytest.raises(ObjectError, match="unknown part 'spout'"):
        synthesize(shadow, knife, "spout", num=2, config=TINY)
    with pytest.raises(SynthesisError, match="num must be a positive integer"):
        synthesize(shadow, knife, "handle", num=0, config=TINY)
    with pytest.raises(SynthesisError, match="unknown mode"):
        synthesize(shadow, knife, "handle", mode="claw", num=2, config=TINY)
    tiny = objects.object_from_reference("procedural:knife:0")
    import dataclasses

    small = dataclasses.replace(tiny, vertices=np.asarray(tiny.vertices) * 0.01)
    with pytest.raises(SynthesisError, match="too small"):
        synthesize(shadow, small, None, num=2, config=TINY)
    large = dataclasses.replace(tiny, vertices=np.asarray(tiny.vertices) * 20)
    with pytest.raises(SynthesisError, match="too large"):
        synthesize(shadow, large, None, num=2, config=TINY)


def test_pipeline_writes_grasps_pictures_summary_and_show_works(knife, tmp_path):
    summary = run_synthesis(
        knife,
        tmp_path / "run",
        part="handle",
        num=4,
        validate=True,
        top_k=2,
        config=TINY,
        log=lambda *_: None,
    )
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    for key in SUMMARY_KEYS:
        assert key in written, key
    assert written["num_grasps"] == 4 and 0.0 <= written["valid_fraction"] <= 1.0
    assert len(summary["pictures"]) == 2 and all(
        Path(p).stat().st_size > 0 for p in summary["pictures"]
    )
    cli_main(
        [
            "show",
            str(tmp_path / "run" / "grasps.npz"),
            "--out",
            str(tmp_path / "show"),
            "--top-k",
            "1",
        ]
    )
    assert (tmp_path / "show" / "grasp_00.png").stat().st_size > 0


def test_strong_barrier_run_stays_finite(shadow):
    """Regression: with the part barrier weighted 1000 on the pan's handle, one of 64
    hands went non-finite late in an 800-step run (GraspSetError: non-finite root_pos).
    A hand whose step is not finite now keeps its last finite pose."""
    config = SynthesisConfig(weights=EnergyWeights(fc=3.0, bar=1000.0))
    gs = synthesize(shadow, objects.make_object("pan", 0), "handle", num=64, config=config)
    assert np.all(np.isfinite(gs.root_pos)) and np.all(np.isfinite(gs.q_grasp))
    assert np.all(np.isfinite(gs.energy))
