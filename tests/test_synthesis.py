"""Synthesis: determinism, sharding equivalence, bad input, the pipeline's outputs."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from energies import EnergyParams, EnergyWeights
from jaxgrasp import objects
from jaxgrasp.cli import main as cli_main
from jaxgrasp.grasp_set import GraspSet
from jaxgrasp.initialization import InitConfig, initial_poses
from jaxgrasp.object_model import ObjectError
from jaxgrasp.pipeline import SUMMARY_KEYS, run_synthesis
from jaxgrasp.synthesis import (
    CPU_ENERGY_CHUNK,
    SynthesisConfig,
    SynthesisError,
    _compiled_part,
    energy_chunk_for,
    resting_height,
    synthesize,
)
from sim import GraspPoses, SimConfig, build_scene, check_grasps, validate

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


def test_objects_step_counts_weights_constants_and_splits_share_one_compilation(shadow, knife):
    from jaxgrasp.synthesis import MODES, _optimizer

    bottle = objects.make_object("bottle", 0)
    assert bottle.grid.shape != knife.grid.shape  # the grids themselves differ
    run = _optimizer(shadow, MODES["wrap"], TINY)
    six = dataclasses.replace(TINY, device_batch=6)
    a = synthesize(shadow, knife, "handle", num=6, seed=0, config=six)
    compiled = run._cache_size()  # (other tests may have compiled other batch sizes)
    synthesize(shadow, bottle, "body", num=6, seed=0, config=six)
    heavier = dataclasses.replace(six, weights=EnergyWeights(fc=10.0, bar=1.0))
    assert _optimizer(shadow, MODES["wrap"], heavier) is run
    b = synthesize(shadow, knife, "handle", num=6, seed=0, config=heavier)
    assert not np.allclose(a.q_grasp, b.q_grasp)  # the traced weights did act
    stand_off = dataclasses.replace(
        six, params=dataclasses.replace(six.params, d0=0.01, w_palm=1.0, pen_margin=2e-3)
    )
    assert _optimizer(shadow, MODES["wrap"], stand_off) is run
    c = synthesize(shadow, knife, "handle", num=6, seed=0, config=stand_off)
    assert not np.allclose(a.q_grasp, c.q_grasp)  # the traced constants did act
    longer = dataclasses.replace(six, steps=7)
    assert _optimizer(shadow, MODES["wrap"], longer) is run
    synthesize(shadow, bottle, "body", num=6, seed=0, config=longer)
    # The pregrasp and squeeze poses are made after the optimizer: the wrist still and
    # no approach give the same grasps, with the root held and the pregrasp at the grasp.
    still = synthesize(
        shadow,
        knife,
        "handle",
        num=6,
        seed=0,
        config=dataclasses.replace(six, wrist_squeeze=0, pregrasp_rad=0),
    )
    np.testing.assert_array_equal(still.q_grasp, a.q_grasp)
    np.testing.assert_array_equal(still.root_pos_squeeze, still.root_pos)
    lo, hi = np.asarray(shadow.q_range).T  # the stages are clipped to the limits
    np.testing.assert_allclose(still.q_pregrasp, np.clip(still.q_grasp, lo, hi), atol=1e-6)
    moved = np.linalg.norm(a.root_pos_squeeze - a.root_pos, axis=1)
    np.testing.assert_allclose(moved, six.wrist_squeeze, rtol=1e-5)
    backed_off = np.abs(np.clip(a.q_grasp, lo, hi) - a.q_pregrasp).max(axis=1)
    assert np.all(backed_off > 0) and np.all(backed_off <= six.pregrasp_rad + 1e-6)
    # 11 hands at most 6 per call: two pieces of 6 (the second padded), not 6 + 5.
    synthesize(shadow, bottle, "body", num=11, seed=0, config=six)
    assert run._cache_size() == compiled


def test_oversampling_keeps_the_lowest_energy_grasps(shadow, knife, monkeypatch):
    """`oversample` 2 optimizes twice the hands (the same starts and program as a plain
    run of that many) and returns the lower-energy half, in the order optimized; with
    `select_at` < 1 the half is chosen part-way and only it runs on, each kept hand
    ending as it would have in one uninterrupted run (Adam's state carried over).
    Every run here is made of pieces of 6 hands (`TINY.device_batch` 8), so they share
    the determinism test's compilation."""
    import jaxgrasp.synthesis as synthesis_module
    from jaxgrasp.initialization import initial_poses
    from jaxgrasp.synthesis import (
        MODES,
        _initial_from,
        _optimizer,
        optimizer_arguments,
        start_state,
        with_span,
    )

    once = dataclasses.replace(TINY, oversample=1.0)
    at_end = dataclasses.replace(TINY, oversample=2.0, select_at=1.0)
    run = _optimizer(shadow, MODES["wrap"], TINY)
    assert _optimizer(shadow, MODES["wrap"], at_end) is _optimizer(shadow, MODES["wrap"], once)
    assert _optimizer(shadow, MODES["wrap"], once) is run
    kept = synthesize(shadow, knife, "handle", num=6, seed=2, config=at_end)
    every = synthesize(shadow, knife, "handle", num=12, seed=2, config=once)
    assert kept.count == 6
    lowest = np.sort(np.argsort(every.energy, kind="stable")[:6])
    np.testing.assert_array_equal(kept.energy, every.energy[lowest])
    np.testing.assert_array_equal(kept.root_pos, every.root_pos[lowest])
    np.testing.assert_array_equal(kept.q_squeeze, every.q_squeeze[lowest])
    assert kept.terms.keys() == every.terms.keys()
    for k in kept.terms:
        np.testing.assert_array_equal(kept.terms[k], every.terms[k][lowest])
    assert kept.energy.max() <= np.sort(every.energy)[5]

    # Chosen after 2 of the 4 steps: the six of lowest energy at step 2.
    halfway = dataclasses.replace(TINY, oversample=2.0, select_at=0.5)
    work = []
    early = synthesize(
        shadow,
        knife,
        "handle",
        num=6,
        seed=2,
        config=halfway,
        progress=lambda done, total: work.append((done, total)),
    )
    assert work[-1] == (12 * 2 + 6 * 2,) * 2  # hand-iterations
    part = knife.part_index("handle")
    starts = initial_poses(shadow, knife, part, "wrap", 12, 2, TINY.init)
    shared = with_span(optimizer_arguments(knife, part, TINY), 0, 2)

    def energy_after_2_steps(pos, quat, q):  # in pieces of 6 rows, the compiled shape
        return np.concatenate(
            [
                np.asarray(
                    run(*shared, *start_state(pos[i : i + 6], quat[i : i + 6], q[i : i + 6]))[3]
                )
                for i in range(0, len(pos), 6)
            ]
        )

    chosen = np.sort(np.argsort(energy_after_2_steps(*starts), kind="stable")[:6])
    assert not np.array_equal(chosen, lowest)  # a different choice than at the end
    np.testing.assert_allclose(early.root_pos, every.root_pos[chosen], atol=1e-6)
    np.testing.assert_allclose(early.q_grasp, every.q_grasp[chosen], atol=1e-5)
    np.testing.assert_allclose(early.energy, every.energy[chosen], rtol=1e-4)

    # Refining given grasps optimizes exactly those, in pieces of their count even when
    # more are asked for (before session 54, num=99 padded the six to eight rows).
    refined = synthesize(shadow, knife, "handle", config=halfway, initial=kept)
    assert refined.count == 6
    sizes = []
    run_sharded = synthesis_module._run_sharded

    def spy(run, devices, shared, args, size=None):
        sizes.append(size)
        return run_sharded(run, devices, shared, args, size)

    monkeypatch.setattr(synthesis_module, "_run_sharded", spy)
    assert synthesize(shadow, knife, "handle", num=99, config=halfway, initial=kept).count == 6
    assert sizes == [6]
    # Fewer asked for than given: all run to `select_at`, the lowest-energy ones go on.
    three = synthesize(shadow, knife, "handle", num=3, config=halfway, initial=kept)
    best = np.sort(
        np.argsort(energy_after_2_steps(*_initial_from(shadow, kept.poses())), kind="stable")[:3]
    )
    np.testing.assert_allclose(three.root_pos, refined.root_pos[best], atol=1e-6)
    np.testing.assert_allclose(three.q_grasp, refined.q_grasp[best], atol=1e-5)
    with pytest.raises(SynthesisError, match="initial grasps are empty"):
        synthesize(shadow, knife, "handle", config=halfway, initial=kept.take([]))
    with pytest.raises(SynthesisError, match=r"oversample = 0.5 \(must be a number in \[1, 64\]\)"):
        SynthesisConfig(oversample=0.5)
    with pytest.raises(SynthesisError, match=r"select_at = 1.5 \(must be a number in \[0, 1\]\)"):
        SynthesisConfig(select_at=1.5)


def test_batch_pieces_are_balanced():
    from energies import balanced_pieces

    assert balanced_pieces(0, 8) == []
    assert balanced_pieces(1500, 1024) == [(0, 750, 750), (750, 1500, 750)]
    assert balanced_pieces(11, 6) == [(0, 6, 6), (6, 11, 6)]
    assert balanced_pieces(4, 8) == [(0, 4, 4)]
    for num, most in [(1, 1), (7, 3), (1000, 999), (4096, 1024)]:
        pieces = balanced_pieces(num, most)
        assert pieces[0][0] == 0 and pieces[-1][1] == num
        assert all(p[1] == q[0] for p, q in zip(pieces, pieces[1:], strict=False))
        assert all(stop - start <= size <= most for start, stop, size in pieces)


def test_map_in_chunks_equals_vmap_for_any_batch():
    from energies.total import map_in_chunks

    def fn(x, y):
        return {"sum": jnp.sum(x) + y, "twice": 2.0 * x}

    for batch in (0, 1, 4, 5):
        x = jnp.arange(batch * 3, dtype=jnp.float32).reshape(batch, 3)
        y = jnp.arange(batch, dtype=jnp.float32)
        got, want = map_in_chunks(fn, (x, y), 2), jax.vmap(fn)(x, y)
        for k in want:
            assert got[k].shape == want[k].shape
            np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]))


def test_energy_chunk_is_chosen_for_the_platform_unless_set():
    auto = SynthesisConfig(device_batch=512)
    assert auto.energy_chunk is None
    # Small cache-sized chunks on CPU; one vmap over each device's piece elsewhere.
    assert energy_chunk_for(auto, "cpu") == CPU_ENERGY_CHUNK == 16
    assert energy_chunk_for(auto, "gpu") == energy_chunk_for(auto, "tpu") == 512
    assert energy_chunk_for(dataclasses.replace(auto, energy_chunk=8), "gpu") == 8
    assert jax.default_backend() == "cpu" and energy_chunk_for(auto) == 16
    # The automatic chunk compiles the same optimizer as the chunk it stands for.
    assert _compiled_part(auto) == _compiled_part(dataclasses.replace(auto, energy_chunk=16))
    assert _compiled_part(auto) != _compiled_part(dataclasses.replace(auto, energy_chunk=8))


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
    with pytest.raises(SynthesisError, match=r"steps = -1 \(must be an integer >= 0\)"):
        synthesize(shadow, knife, "handle", num=2, steps=-1, config=TINY)
    tiny = objects.object_from_reference("procedural:knife:0")
    small = dataclasses.replace(tiny, vertices=np.asarray(tiny.vertices) * 0.01)
    with pytest.raises(SynthesisError, match="too small"):
        synthesize(shadow, small, None, num=2, config=TINY)
    large = dataclasses.replace(tiny, vertices=np.asarray(tiny.vertices) * 20)
    with pytest.raises(SynthesisError, match="too large"):
        synthesize(shadow, large, None, num=2, config=TINY)


def test_bad_settings_fail_where_they_are_made():
    """Each settings class names the bad field, its value and the rule, all at once; a
    negative weight or margin would otherwise run and reward what it should penalise."""
    cases = [
        (lambda: EnergyWeights(pen=-1.0), "EnergyWeights: pen = -1.0"),
        (lambda: EnergyWeights(fc=float("nan")), "fc = nan"),
        (
            lambda: EnergyParams(pen_margin=-1e-3),
            "pen_margin = -0.001 (must be a finite number >= 0)",
        ),
        (lambda: EnergyParams(barrier_d_hat=0.0), "barrier_d_hat = 0.0"),
        (lambda: EnergyParams(tau_f=2.0), "tau_f = 2.0 (must be a number in [0, 1])"),
        (lambda: EnergyParams(table_normal=(0.0, 0.0, 2.0)), "table_normal"),
        (lambda: EnergyParams(pen_object_points=0), "pen_object_points = 0"),
        (lambda: InitConfig(retreat=(0.05, 0.02)), "InitConfig: retreat"),
        (lambda: InitConfig(q_noise=-0.1), "q_noise = -0.1"),
        (
            lambda: SynthesisConfig(lr_q=0.0, energy_chunk=0),
            "energy_chunk = 0 (must be None (automatic) or an integer > 0)",
        ),
        (lambda: SynthesisConfig(params=EnergyWeights()), "params = EnergyWeights"),
        (lambda: dataclasses.replace(TINY, device_batch=-8), "device_batch = -8"),
        (lambda: SynthesisConfig(wrist_squeeze=float("nan")), "wrist_squeeze = nan"),
        (lambda: SynthesisConfig(pregrasp_rad=-0.1), "pregrasp_rad = -0.1"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError) as err:
            make()
        assert message in str(err.value), (message, str(err.value))
    with pytest.raises(ValueError) as err:  # every bad field, in one line
        SynthesisConfig(lr_q=0.0, energy_chunk=0)
    assert str(err.value) == (
        "invalid SynthesisConfig: lr_q = 0.0 (must be a finite number > 0); "
        "energy_chunk = 0 (must be None (automatic) or an integer > 0)"
    )
    # The optimizer traces some weights and the table height through these classes.
    traced = jax.jit(
        lambda w, h: EnergyWeights(pen=w).pen + EnergyParams(table_height=h).table_height
    )
    assert float(traced(2.0, 1.0)) == 3.0
    assert EnergyWeights(pen=np.float32(3.0)).pen == 3.0  # numpy scalars are numbers


def test_settings_round_trip_through_json_and_reject_unknown_fields():
    """`SynthesisConfig.from_dict` rebuilds the config a dataset manifest or a training
    run stored (nested settings, tuples from lists); a missing field keeps its default,
    and an unknown or misshapen one is a clear error, not a TypeError."""
    config = SynthesisConfig(
        steps=7,
        weights=EnergyWeights(pen=500.0),
        params=EnergyParams(table_normal=(0.0, 1.0, 0.0), pen_margin=2e-3),
        init=InitConfig(retreat=(0.01, 0.03)),
        pregrasp_rad=0.1,
    )
    stored = json.loads(json.dumps(dataclasses.asdict(config)))
    assert SynthesisConfig.from_dict(stored) == config
    assert SynthesisConfig.from_dict({"steps": 7}) == SynthesisConfig(steps=7)
    cases = [
        ({"stages": 1}, "SynthesisConfig: unknown setting(s) 'stages'"),
        ({"weights": {"pen": 1.0, "foo": 2}}, "SynthesisConfig.weights: unknown setting(s) 'foo'"),
        ({"init": [0.02, 0.04]}, "SynthesisConfig.init: expected a mapping of settings, got list"),
        ({"weights": {"pen": -1.0}}, "EnergyWeights: pen = -1.0"),
    ]
    for data, message in cases:
        with pytest.raises(ValueError) as err:
            SynthesisConfig.from_dict(data)
        assert message in str(err.value), (message, str(err.value))


def test_pipeline_rejects_bad_input_before_writing(knife, tmp_path):
    logged: list[str] = []  # ... and before announcing a run it will not do
    with pytest.raises(ObjectError, match="unknown part 'lid'"):
        run_synthesis(knife, tmp_path / "run", part="lid", num=2, config=TINY, log=logged.append)
    with pytest.raises(SynthesisError, match="num must be a positive integer"):
        run_synthesis(knife, tmp_path / "run", part="handle", num=0, config=TINY, log=logged.append)
    assert not (tmp_path / "run").exists() and logged == []


def test_pipeline_writes_grasps_pictures_summary_and_show_works(knife, tmp_path):
    summary = run_synthesis(
        knife,
        tmp_path / "run",
        part="handle",
        num=6,  # pieces of 6 hands: the determinism test's compilation
        validate=True,
        top_k=2,
        config=TINY,
        log=lambda *_: None,
    )
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    for key in SUMMARY_KEYS:
        assert key in written, key
    assert written["num_grasps"] == 6 and 0.0 <= written["valid_fraction"] <= 1.0
    assert written["table_height"] is None and "table" not in written["pass_rate"]
    assert written["synthesis_config"]["steps"] == TINY.steps
    assert written["sim_config"]["kp"] == SimConfig().kp
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


def test_cli_takes_synthesis_settings_and_rejects_bad_ones(tmp_path, capsys):
    out = tmp_path / "cli"
    tiny = ["--num", "2", "--steps", "3", "--synthesis.energy-chunk", "4"]
    target = ["procedural:knife:0", "--part", "handle", "--out", str(out)]
    cli_main(["synthesize", *target, *tiny, "--synthesis.weights.fc", "5"])
    settings = json.loads((out / "summary.json").read_text())["synthesis_config"]
    assert settings["weights"]["fc"] == 5.0 and settings["steps"] == 3
    default_params = dataclasses.asdict(SynthesisConfig().params)
    assert settings["params"] == json.loads(json.dumps(default_params))
    bad = tmp_path / "bad"
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["synthesize", *target[:3], "--out", str(bad), *tiny,
                  "--synthesis.params.pen-margin", "-0.001"])  # fmt: skip
    assert exit_info.value.code == 2 and not bad.exists()
    assert "pen_margin = -0.001 (must be a finite number >= 0)" in capsys.readouterr().err


def test_strong_barrier_run_stays_finite(shadow):
    """Regression: with the part barrier weighted 1000 on the pan's handle, one of 64
    hands went non-finite late in an 800-step run (GraspSetError: non-finite root_pos).
    A hand whose step is not finite now keeps its last finite pose."""
    config = SynthesisConfig(weights=EnergyWeights(fc=3.0, bar=1000.0))
    gs = synthesize(shadow, objects.make_object("pan", 0), "handle", num=64, config=config)
    assert np.all(np.isfinite(gs.root_pos)) and np.all(np.isfinite(gs.q_grasp))
    assert np.all(np.isfinite(gs.energy))


def _lowest_points(hand, grasps):
    from jaxgrasp.initialization import _lowest_surface_point

    return np.asarray(
        _lowest_surface_point(
            hand,
            *(
                np.asarray(x, np.float32)
                for x in (grasps.root_pos, grasps.root_quat, grasps.q_grasp)
            ),
        )
    )


def test_tabletop_initial_hands_start_above_the_table(shadow):
    mug = objects.make_object("mug", 0)
    table = resting_height(mug)
    loose = initial_poses(shadow, mug, None, "wrap", 64, 0)
    kept = initial_poses(shadow, mug, None, "wrap", 64, 0, table_height=table)
    loose, kept = (GraspPoses(p, r, None, q, None) for p, r, q in (loose, kept))
    # Whole-object starts surround the mug standing on the table: some reach under it.
    assert (_lowest_points(shadow, loose) < table).any()
    assert (_lowest_points(shadow, kept) >= table + InitConfig().table_clearance).all()


def test_tabletop_energy_pushes_the_hand_above_the_table_and_validation_checks_it(
    shadow, knife, tmp_path
):
    table = resting_height(knife)
    start = synthesize(shadow, knife, "handle", num=4, seed=2, config=TINY, tabletop=True)
    assert start.table_height == pytest.approx(table)
    # The same hands pushed 3 cm down, through the table.
    sunk = dataclasses.replace(start, root_pos=start.root_pos - [0.0, 0.0, 0.03])
    at_start = synthesize(
        shadow, knife, "handle", config=TINY, steps=0, initial=sunk, tabletop=True
    )
    assert (at_start.terms["table"] > 0).all()
    moved = synthesize(shadow, knife, "handle", config=TINY, steps=40, initial=sunk, tabletop=True)
    assert (_lowest_points(shadow, moved) > _lowest_points(shadow, sunk)).all()

    path = at_start.save(tmp_path / "sunk.npz")
    loaded = GraspSet.load(path)
    assert loaded.table_height == pytest.approx(table)
    report = validate(shadow, knife, loaded, part="handle")  # the table comes from the set
    assert not report.flags["table"].any() and not report.valid.any()
    assert (report.checks.table_penetration > 0.01).all()
    with pytest.raises(ValueError, match="table"):  # a scene without the table
        validate(shadow, knife, loaded, part="handle", scene=build_scene(shadow, knife))


def test_part_grasp_points_keep_away_from_the_other_parts(knife):
    from scipy.spatial import cKDTree

    from jaxgrasp.initialization import _part_frames

    handle = knife.part_index("handle")
    on_part = np.asarray(knife.point_part) == handle
    to_others = cKDTree(np.asarray(knife.points)[~on_part])
    margin = InitConfig().part_margin
    points, *_ = _part_frames(knife, handle, 256, np.random.default_rng(0), margin)
    assert to_others.query(points)[0].min() >= margin
    # A margin no point satisfies falls back to the farthest quarter of the part.
    allowed = on_part & np.asarray(knife.allowed)
    quarter = np.quantile(to_others.query(np.asarray(knife.points)[allowed])[0], 0.75)
    points, *_ = _part_frames(knife, handle, 256, np.random.default_rng(0), 1.0)
    assert to_others.query(points)[0].min() >= quarter - 1e-9


def test_default_synthesis_puts_the_palm_on_the_surface(shadow):
    """Wrap grasps whose palm touches the object hold the disturbance test far more often
    (benchmarks/HISTORY.md, "Palm on the surface"), so synthesis pulls the palm onto the
    surface; with DexVLG's 1 cm stand-off it stays off more often. Measured exactly (mesh
    distance of the palm link) on the drill's body, 64 grasps at the default 800 steps: 49 palms
    within 3 mm against 35 (seed 1: 49 vs 36; an earlier energy's float rounding gave
    52 vs 39 and 55 vs 40). With 16 grasps the gap was within the run-to-run spread
    (seed 1: 12 vs 12; a change of float rounding in the energy moved seed 0 from 12 vs
    7 to 10 vs 7). The stand-off is a traced constant: both runs share one compilation."""
    drill = objects.make_object("drill", 0)
    scene = build_scene(shadow, drill)
    palm = list(shadow.contacts.finger).index("palm")
    part = drill.part_index("body")

    def palms_touching(config):
        gs = synthesize(shadow, drill, "body", num=64, seed=0, config=config)
        checks = check_grasps(scene, shadow, drill, gs.poses(), part)
        return int(checks.in_contact[:, palm].sum())  # within contact_distance, 3 mm

    default = SynthesisConfig()
    stand_off = dataclasses.replace(
        default, params=dataclasses.replace(default.params, d0=0.01, w_palm=1.0)
    )
    touching, touching_off = palms_touching(default), palms_touching(stand_off)
    assert touching >= 44, touching
    assert touching_off <= touching - 8, (touching_off, touching)
