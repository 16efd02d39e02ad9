"""Validation in MuJoCo: the disturbance test, exact checks, captions, API and CLI.

The hand-made grasp: Shadow's "wrap" pose around an 8 x 3 x 3 cm bar (with a 4 cm cap
glued to its +x end as a second part), palm facing it, thumb under and fingers over it.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from jaxgrasp import load_object
from jaxgrasp.cli import format_summary
from jaxgrasp.cli import main as cli_main
from jaxgrasp.grasp_set import GraspSet, GraspSetError
from jaxgrasp.object_model import ObjectError
from sim import (
    GraspPoses,
    SimConfig,
    build_scene,
    caption,
    check_grasps,
    grasp_stages,
    summarize,
    validate,
)
from sim.disturbance import DisturbanceResult, crossed_limits, disturbance_test_mujoco

# Where the bar's centre sits in the hand's root frame for the hand-made grasp.
BAR_IN_HAND = np.array([0.0, -0.0625, 0.135])


@pytest.fixture(scope="module")
def bar():
    cap = trimesh.creation.box(extents=(0.04, 0.03, 0.03))
    cap.apply_translation([0.06, 0.0, 0.0])
    parts = {"bar": trimesh.creation.box(extents=(0.08, 0.03, 0.03)), "cap": cap}
    return load_object(trimesh.util.concatenate(list(parts.values())), name="bar", parts=parts)


@pytest.fixture(scope="module")
def scene(shadow, bar):
    return build_scene(shadow, bar)


def _grasps(hand, offsets):
    offsets = np.atleast_2d(offsets)
    n = len(offsets)
    q = np.tile(np.asarray(hand.init_q("wrap")), (n, 1))
    # The root stays still: with the default 4 mm wrist squeeze this grasp turns the
    # bar 15.6 degrees in one push direction (12 without), just past the 15 limit.
    quat = np.tile([1.0, 0, 0, 0], (n, 1))
    return grasp_stages(hand, -BAR_IN_HAND + offsets, quat, q, wrist_squeeze=0.0)


def test_hand_made_grasp_passes_and_far_copy_fails(shadow, bar, scene):
    grasps = _grasps(shadow, [[0, 0, 0], [0, 0.05, 0]])  # second: 5 cm away from the bar
    report = validate(shadow, bar, grasps, part="bar", scene=scene)
    ok, far = report.per_grasp()
    assert ok["valid"], ok
    assert ok["penetration_mm"] < 3.0 and ok["self_penetration_mm"] < 3.0
    assert set(ok["fingers_in_contact"]) >= {"thumb"}
    assert not far["valid"]
    # The squeeze does not rescue a hand that never touched the object.
    assert not far["disturbance"] and not far["contact"]
    assert max(far["translation_m"].values()) > 0.05
    assert report.summary["num_valid"] == 1 and report.summary["valid_fraction"] == 0.5
    # The far copy's object drifts off (the push towards the hand also turns it on it).
    moved, turned = report.disturbance.limits_crossed(report.config)
    assert moved.tolist() == [False, True] and not turned[0]
    assert report.summary["disturbance_moved"] == 0.5
    assert report.summary["disturbance_turned_only"] == 0.0
    # PTA / PGA are measured against the target part; a whole-object grasp set has none,
    # so they are None there (not 0, which would read as grasps off the part).
    assert report.summary["pta"] == 0.5 and report.summary["pga"] == 0.5
    r = report
    whole = summarize(r.valid, r.flags, r.disturbance, r.checks, r.fingers, has_part=False)
    assert whole["pta"] is None and whole["pga"] is None
    assert whole["num_valid"] == 1
    assert "no target part" in format_summary(dict(report.summary, pta=None, pga=None))


def test_closed_contacts_are_the_fingers_in_contact_once_the_hand_has_closed(shadow, bar, scene):
    """`closed_contacts` reads the stored pose's contact rule (a finger's contact link
    within 3 mm) in the closed state: the hand-made grasp closes its index finger, 6 mm
    off the bar at the stored pose, onto it; a hand 5 cm away touches nothing; a grasp
    opened before the squeeze (`sim.back_off`, as `generate(open_by=)` does) has fewer
    fingers in contact at its stored pose than once closed. Read at the stored poses
    instead (these grasps keep the wrist still), it gives the exact checks' answer."""
    from sim import back_off, closed_contacts
    from sim.disturbance import initial_qpos

    q = np.asarray(shadow.init_q("wrap"))[None]
    opened = grasp_stages(
        shadow, -BAR_IN_HAND[None], [[1.0, 0, 0, 0]], back_off(shadow, q, 0.05), wrist_squeeze=0.0
    )
    made = _grasps(shadow, [[0, 0, 0], [0, 0.05, 0]])
    grasps = GraspPoses(*(np.concatenate(x) for x in zip(made, opened, strict=True)))
    report = validate(shadow, bar, grasps, part="bar", scene=scene)
    fingers = list(report.fingers)
    index = fingers.index("index")
    assert report.closed_contact.shape == (3, len(fingers))
    assert 0.005 < report.checks.finger_distance[0, index] < 0.01  # off at the stored pose
    assert report.closed_contact[0, index] and not report.checks.in_contact[0, index]
    assert set(report.per_grasp()[0]["fingers_in_contact_closed"]) >= {"thumb", "index", "little"}
    assert not report.closed_contact[1].any()
    stored, closed = report.checks.in_contact[2], report.closed_contact[2]
    assert closed.sum() > stored.sum() >= 1
    # The same reading from the closed states alone, and a wrong shape named.
    again = closed_contacts(scene, shadow, grasps, report.disturbance.closed_qpos)
    np.testing.assert_array_equal(again, report.closed_contact)
    stored_qpos = initial_qpos(scene, shadow, grasps.q_grasp)
    at_stored = closed_contacts(scene, shadow, grasps, stored_qpos)
    np.testing.assert_array_equal(at_stored, report.checks.in_contact)
    with pytest.raises(ValueError, match="closed_qpos has shape"):
        closed_contacts(scene, shadow, grasps, report.disturbance.closed_qpos[:2])


def test_limits_crossed_names_each_broken_limit():
    # Four grasps: held; moved 6 cm in -x; turned 20 degrees in +z; both, in two directions.
    translation = np.zeros((4, 6))
    rotation = np.zeros((4, 6))
    translation[1, 1] = translation[3, 0] = 0.06
    rotation[2, 4] = rotation[3, 5] = 20.0
    rotation[0] = 14.9  # under the 15 degree limit in every direction
    ok = np.array([True, False, False, False])
    result = DisturbanceResult(ok, translation, rotation, np.zeros(4), np.zeros((4, 7)))
    moved, turned = result.limits_crossed(SimConfig())
    assert moved.tolist() == [False, True, False, True]
    assert turned.tolist() == [False, False, True, True]
    moved, turned = result.limits_crossed(SimConfig(max_translation=0.07, max_rotation_deg=14.0))
    assert moved.tolist() == [False] * 4 and turned.tolist() == [True, False, True, True]
    # A diverged world (NaN translation) counts as moved: a failure, counted as one.
    moved, turned = crossed_limits(np.full((1, 6), np.nan), np.zeros((1, 6)), SimConfig())
    assert moved.tolist() == [True] and turned.tolist() == [False]


def test_wrist_squeeze_moves_the_root_along_the_palm_normal(shadow, scene):
    """grasp_stages' squeeze root: `wrist_squeeze` along the palm normal (rotated by
    MuJoCo's own quaternion routine as the reference), and both backends' inputs put
    the mocap there from the end of the squeeze ramp on."""
    import mujoco

    from sim.disturbance import closing_controls, hold_controls
    from sim.mjx_backend import _inputs

    rng = np.random.default_rng(0)
    quat = rng.normal(size=(4, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    pos = rng.normal(scale=0.1, size=(4, 3))
    q = np.tile(np.asarray(shadow.init_q("wrap")), (4, 1))
    g = grasp_stages(shadow, pos, quat, q, wrist_squeeze=0.01)
    for i in range(4):
        normal = np.empty(3)
        mujoco.mju_rotVecQuat(normal, np.asarray(shadow.spec.palm.normal, float), quat[i])
        np.testing.assert_allclose(g.root_pos_squeeze[i], pos[i] + 0.01 * normal, atol=1e-12)
    np.testing.assert_array_equal(
        grasp_stages(shadow, pos, quat, q, wrist_squeeze=0).root_pos_squeeze, pos
    )

    m, c = scene.model, scene.config
    at_grasp, _ = scene.mocap_pose(g.root_pos, g.root_quat)
    squeezed, _ = scene.mocap_pose(g.root_pos_squeeze, g.root_quat)
    first = m.nu + m.neq + 3 * scene.mocap  # the hand mocap's position columns
    closing = closing_controls(scene, g)[:, :, first : first + 3]
    np.testing.assert_allclose(
        closing[:, : c.close_steps], np.repeat(at_grasp[:, None], c.close_steps, 1)
    )
    np.testing.assert_allclose(closing[:, -1], squeezed)
    hold = hold_controls(scene, g)[:, 0, m.nu + 6 * m.nbody + m.neq :][:, 3 * scene.mocap :][:, :3]
    np.testing.assert_allclose(hold, np.repeat(squeezed, 6, axis=0))
    _, _, mpos_closing, mpos_hold, *_ = _inputs(scene, shadow, g)
    np.testing.assert_allclose(mpos_closing[:, : c.close_steps], closing[:, : c.close_steps])
    np.testing.assert_allclose(mpos_closing[:, -1], squeezed)
    np.testing.assert_allclose(mpos_hold, squeezed)
    # Without the field (a 5-tuple), the root stays where it is.
    still = GraspPoses(*g[:5])
    np.testing.assert_array_equal(still.squeeze_root_pos(), g.root_pos)
    np.testing.assert_allclose(closing_controls(scene, still)[:, -1, first : first + 3], at_grasp)


def test_deep_penetration_fails_penetration_check(shadow, bar, scene):
    report = validate(shadow, bar, _grasps(shadow, [0, -0.015, 0.0]), part="bar", scene=scene)
    assert report.checks.penetration[0] > 0.003
    assert not report.flags["penetration"][0] and not report.valid[0]


def test_wrong_part_fails_alignment(shadow, bar, scene):
    right = validate(shadow, bar, _grasps(shadow, [0, 0, 0]), part="bar", scene=scene)
    wrong = validate(shadow, bar, _grasps(shadow, [0, 0, 0]), part="cap", scene=scene)
    assert right.flags["part_alignment"][0] and right.checks.pta[0]
    assert not wrong.flags["part_alignment"][0] and not wrong.valid[0]
    assert not wrong.checks.pga[0]


def test_disturbance_is_deterministic_and_threads_agree(shadow, scene):
    grasps = _grasps(shadow, [[0, 0, 0], [0.01, 0, 0.003], [0, -0.01, 0]])
    one = disturbance_test_mujoco(scene, shadow, grasps, nthread=1)
    two = disturbance_test_mujoco(scene, shadow, grasps, nthread=2)
    np.testing.assert_allclose(one.translation, two.translation, atol=1e-9)
    np.testing.assert_array_equal(one.success, two.success)


def test_exact_checks_are_the_same_on_any_number_of_threads(shadow, bar, scene):
    """The checks run blocks of `CHECK_BLOCK` grasps on a thread pool: the results, and
    which grasp each row belongs to, must not depend on the thread count."""
    from sim.checks import CHECK_BLOCK

    n = 2 * CHECK_BLOCK + 5  # three blocks, the last one padded
    offsets = np.random.default_rng(0).uniform(-0.01, 0.01, (n, 3))
    grasps = _grasps(shadow, offsets)
    one = check_grasps(scene, shadow, bar, grasps, 0, nthread=1)
    three = check_grasps(scene, shadow, bar, grasps, 0, nthread=3)
    alone = check_grasps(scene, shadow, bar, grasps.take([n - 1, 40]), 0, nthread=1)
    assert one.penetration.shape == (n,) and len(np.unique(one.penetration)) > n // 2
    for a, b, c in zip(one, three, alone, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a[[n - 1, 40]], c)


def test_part_distances_are_exact_where_a_decision_reads_them():
    """The exact checks query a part's faces only for points that are not already
    nearest to it and whose part box is within `NEAR`: exact up to `NEAR` against one
    full query per part, a lower bound of at least `NEAR` beyond (four-part kettle)."""
    import igl

    from jaxgrasp import objects
    from jaxgrasp.sdf import mesh_signed_distance
    from sim.checks import NEAR, _part_distances

    obj = objects.make_object("kettle", 0)
    rng = np.random.default_rng(4)
    v, f, face_part = obj.vertices, np.asarray(obj.faces, np.int64), np.asarray(obj.face_part)
    base = obj.points[rng.integers(0, len(obj.points), 6000)]
    pts = base + rng.normal(size=(6000, 3)) * rng.uniform(0.0, 0.02, (6000, 1))
    sd, face, _ = mesh_signed_distance(pts, v, f, obj.grid)
    got = _part_distances(pts, v, f, face_part, obj.n_parts, face, np.abs(sd))
    ref = np.stack(
        [np.sqrt(igl.point_mesh_squared_distance(pts, v, f[face_part == p])[0]) for p in range(4)],
        axis=1,
    )
    exact = ref <= NEAR
    assert 0.2 < exact.mean() < 0.8
    np.testing.assert_allclose(got[exact], ref[exact], rtol=0, atol=1e-12)
    assert np.all(got[~exact] >= NEAR) and np.all(got[~exact] <= ref[~exact] + 1e-12)


def test_validation_reports_progress_per_stage(shadow, bar, scene):
    """`validate(progress=)` hears (stage, done, total) after every 32 grasps of the
    simulation, then of the checks; `stage_logger` turns that into about ten lines a
    stage, the last at 100 %."""
    from jaxgrasp.pipeline import stage_logger

    calls: list[tuple[str, int, int]] = []
    n = 40  # two chunks of 32
    offsets = np.random.default_rng(1).uniform(-0.01, 0.01, (n, 3))
    validate(
        shadow,
        bar,
        _grasps(shadow, offsets),
        part="bar",
        scene=scene,
        progress=lambda *a: calls.append(a),
    )
    assert calls == [
        ("simulation", 32, n),
        ("simulation", n, n),
        ("checks", 32, n),
        ("checks", n, n),
    ]
    lines: list[str] = []
    log = stage_logger(lines.append)
    for done in range(0, 1001, 7):
        log("simulation", done, 1000)
    log("simulation", 1000, 1000)
    log("checks", 1000, 1000)
    assert 9 <= len(lines) <= 12 and "simulation 100 %" in lines[-2]
    assert lines[-1].startswith("  checks 100 %") and sum("100 %" in x for x in lines) == 2


def test_empty_batch_gives_empty_results_on_both_backends(shadow, bar, scene):
    from sim.mjx_backend import disturbance_test_mjx

    none = _grasps(shadow, np.zeros((0, 3)))
    for result in (
        disturbance_test_mujoco(scene, shadow, none),
        disturbance_test_mjx(scene, shadow, none),
    ):
        assert result.success.shape == (0,) and result.translation.shape == (0, 6)
        assert result.rotation_deg.shape == (0, 6)
        assert result.closed_qpos.shape == (0, scene.model.nq)
    # The exact checks, and so `validate`, too (they raised a TypeError before).
    checks = check_grasps(scene, shadow, bar, none, 0)
    one = check_grasps(scene, shadow, bar, _grasps(shadow, np.zeros((1, 3))), 0)
    for empty, full in zip(checks, one, strict=True):
        assert empty.shape == (0, *full.shape[1:]) and empty.dtype == full.dtype
    report = validate(shadow, bar, none, part="bar", scene=scene)
    assert report.valid.shape == (0,) and report.summary["num_valid"] == 0
    assert report.closed_contact.shape == (0, len(shadow.contacts.finger))


@pytest.mark.parametrize("module", ["sim", "sim.validate"])
def test_sim_imports_first_in_a_fresh_interpreter(module):
    """sim and jaxgrasp import each other's modules; `import sim` as a script's first
    import once failed with a circular ImportError (the tests import jaxgrasp first)."""
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=root, capture_output=True)
    assert run.returncode == 0, run.stderr.decode()[-2000:]


def test_caption_format():
    assert (
        caption("mug", "handle", ["thumb", "index", "middle"])
        == "Grasp the handle of the mug object, with contacts on thumb, index, middle"
    )
    assert caption("bowl", None, ["thumb"]) == "Grasp the bowl object, with contacts on thumb"


def test_bad_input_gets_clear_errors(shadow, bar, scene):
    grasps = _grasps(shadow, [0, 0, 0])
    with pytest.raises(ObjectError, match="unknown part 'spout'"):
        validate(shadow, bar, grasps, part="spout", scene=scene)
    nan = grasps._replace(q_grasp=np.full_like(grasps.q_grasp, np.nan))
    with pytest.raises(ValueError, match="NaN"):
        validate(shadow, bar, nan, scene=scene)
    with pytest.raises(ValueError, match="unknown backend"):
        validate(shadow, bar, grasps, backend="bullet", scene=scene)
    with pytest.raises(ValueError, match="shape"):
        validate(shadow, bar, grasps._replace(q_grasp=grasps.q_grasp[:, :5]), scene=scene)
    with pytest.raises(ValueError, match=r"invalid SimConfig: timestep = -1.0 \(must be a finite"):
        SimConfig(timestep=-1.0)
    with pytest.raises(ValueError, match=r"max_rotation_deg = 0.0 .*coacd_max_hulls = 0"):
        SimConfig(max_rotation_deg=0.0, coacd_max_hulls=0)


def test_grasp_set_roundtrip_and_cli_validate(shadow, tmp_path, capsys):
    from jaxgrasp import objects

    obj = objects.make_object("knife", 0)
    # A grasp set far from the knife: it must come out invalid, through the CLI.
    g = grasp_stages(
        shadow, [[0.0, 0.3, 0.0]], [[1.0, 0, 0, 0]], [np.asarray(shadow.init_q("wrap"))]
    )
    gs = GraspSet(
        **g._asdict(),
        energy=np.array([1.0]),
        terms={"dis": np.array([0.5])},
        hand="shadow",
        object_ref=obj.source,
        object_name=obj.name,
        part="handle",
    )
    path = gs.save(tmp_path / "knife")
    back = GraspSet.load(path)
    np.testing.assert_array_equal(back.q_squeeze, gs.q_squeeze)
    np.testing.assert_array_equal(back.root_pos_squeeze, g.root_pos_squeeze)
    assert back.part == "handle" and back.terms["dis"][0] == 0.5
    # A format-1 file (no squeeze root) loads with the root held still, as it was
    # validated; an unknown format is refused with the version named.
    old = gs.to_arrays()
    del old["root_pos_squeeze"]
    for version, name in ((1, "v1.npz"), (99, "v99.npz")):
        meta = {**json.loads(str(old["metadata"])), "format_version": version}
        np.savez(tmp_path / name, **{**old, "metadata": np.array(json.dumps(meta))})
    np.testing.assert_array_equal(
        GraspSet.load(tmp_path / "v1.npz").poses().squeeze_root_pos(), gs.root_pos
    )
    with pytest.raises(GraspSetError, match="format 99 is not one of"):
        GraspSet.load(tmp_path / "v99.npz")
    out = tmp_path / "report.json"
    cli_main(["validate", str(path), "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["summary"]["num_valid"] == 0 and not report["grasps"][0]["valid"]
    text = capsys.readouterr().out
    assert "friction=0.6" in text and "condim=4" in text  # physics printed in the report
    assert "validating 1 grasps of knife" in text and "simulation 100 %" in text
    assert "checks 100 %" in text and "fingers in contact once closed" in text
    assert isinstance(report["grasps"][0]["fingers_in_contact_closed"], list)
    # A whole-object set has no target part: PTA / PGA are null, and the table says why.
    whole = dataclasses.replace(gs, part=None).save(tmp_path / "knife_whole")
    cli_main(["validate", str(whole), "--json", str(out)])
    assert json.loads(out.read_text())["summary"]["pga"] is None
    assert "no target part" in capsys.readouterr().out
    with pytest.raises(GraspSetError, match="not found"):
        GraspSet.load(tmp_path / "missing.npz")
    # Not an archive, a cut-off one, or a bare array: one line that names the file and
    # never numpy's advice to unpickle it.
    (tmp_path / "junk.npz").write_bytes(b"not an archive")
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[:200])
    np.save(tmp_path / "array.npy", np.zeros(3))
    for name in ("junk.npz", "cut.npz", "array.npy"):
        with pytest.raises(GraspSetError, match="re-create it") as err:
            GraspSet.load(tmp_path / name)
        assert name in str(err.value) and "pickle" not in str(err.value)
    with pytest.raises(SystemExit):
        cli_main(["validate", str(tmp_path / "missing.npz")])


def test_mjx_agrees_with_mujoco_on_optimized_grasps(shadow, bar, scene):
    """Both backends through `validate`, the same scene and criteria, on grasps the
    optimizer made (plus the hand-made grasp, which holds, and a copy whose wrist pulls
    away during the squeeze, which cannot). MJX runs in float64 (`SimConfig.mjx_dtype`'s
    default), as MuJoCo C does."""
    from jaxgrasp.synthesis import SynthesisConfig, synthesize

    # energy_chunk 4: the same compiled optimizer as tests/test_synthesis.py's runs.
    config = SynthesisConfig(energy_chunk=4)
    optimized = synthesize(shadow, bar, "bar", num=8, seed=1, config=config).poses()
    made = _grasps(shadow, [[0, 0, 0]])
    # The hand-made grasp again, its wrist pulled 3 cm back during the squeeze: it drags
    # the bar out of place (MuJoCo C: 1.3 m), so both backends must move the root.
    pulled = grasp_stages(
        shadow, -BAR_IN_HAND[None], [[1.0, 0, 0, 0]], made.q_grasp, wrist_squeeze=-0.03
    )
    grasps = GraspPoses(*(np.concatenate(x) for x in zip(optimized, made, pulled, strict=True)))
    reports = {
        b: validate(shadow, bar, grasps, part="bar", backend=b, scene=scene)
        for b in ("mujoco", "mjx")
    }
    assert [r.summary["backend"] for r in reports.values()] == ["mujoco", "mjx"]
    c, x = reports["mujoco"].disturbance, reports["mjx"].disturbance
    assert np.all(np.isfinite(x.translation)) and np.all(np.isfinite(x.rotation_deg))
    assert c.success[-2] and x.success[-2]  # the hand-made grasp holds in both
    assert not c.success[-1] and not x.success[-1]
    assert c.translation[-1].max() > 0.05 and x.translation[-1].max() > 0.05
    assert np.mean(c.success == x.success) >= 0.9, (c.success, x.success)
    # The fingers in contact once closed, read from each backend's closed state.
    cc, xc = reports["mujoco"].closed_contact, reports["mjx"].closed_contact
    assert cc[-2].sum() >= 3 and np.mean(cc == xc) >= 0.9, (cc, xc)
    # Where both held, the object ended in about the same place.
    held = c.success & x.success
    np.testing.assert_allclose(x.translation[held], c.translation[held], atol=0.005)
    np.testing.assert_allclose(x.rotation_deg[held], c.rotation_deg[held], atol=5.0)


def test_mjx_newton_cone_hessian_matches_mjx():
    """`sim._mjx_newton.update_gradient` (per-contact cone Hessian) gives MJX's own
    Newton direction, for contacts of condim 3, 4 and 6, some in the cone zone."""
    import jax
    import jax.numpy as jnp
    import mujoco
    from mujoco import mjx
    from mujoco.mjx._src import solver

    from sim._mjx_newton import elliptic_newton, supported, update_gradient

    assert supported()
    corners = np.array(np.meshgrid(*[[-0.03, 0.03]] * 3)).reshape(3, -1).T
    cube = " ".join(map(str, corners.ravel()))
    model = mujoco.MjModel.from_xml_string(f"""<mujoco><option cone="elliptic"/>
      <asset><mesh name="cube" vertex="{cube}"/></asset>
      <default><geom contype="0" conaffinity="0"/></default>
      <worldbody><body name="o"><freejoint/><geom name="o" type="mesh" mesh="cube"/></body>
        <geom name="a" type="capsule" size="0.01 0.02" pos="0 0 0.038"/>
        <geom name="b" type="sphere" size="0.01" pos="0.038 0 0"/>
        <geom name="c" type="box" size="0.01 0.01 0.01" pos="0 0.038 0"/>
        <geom name="e" type="sphere" size="0.01" pos="-0.038 0 0"/></worldbody>
      <contact><pair geom1="a" geom2="o" condim="3"/><pair geom1="b" geom2="o" condim="4"/>
        <pair geom1="c" geom2="o" condim="4"/><pair geom1="e" geom2="o" condim="6"/></contact>
    </mujoco>""")
    mx = mjx.put_model(model)
    d = jax.jit(mjx.forward)(mx, mjx.make_data(mx))
    assert sorted(set(np.asarray(d._impl.contact.dim).tolist())) == [3, 4, 6]

    @jax.jit
    def directions(d):
        ctx = solver.Context.create(mx, d, grad=False)
        return solver._update_gradient(mx, d, ctx).Mgrad, update_gradient(mx, d, ctx).Mgrad, ctx.h

    rng = np.random.default_rng(0)
    for _ in range(3):
        qacc = jnp.asarray(rng.normal(0.0, 50.0, model.nv), dtype=d.qacc.dtype)
        ours, theirs, cone_h = directions(d.replace(qacc=qacc))
        assert np.any(np.abs(np.asarray(cone_h)) > 0)  # some contacts in the cone zone
        np.testing.assert_allclose(ours, theirs, atol=1e-5 * float(np.abs(theirs).max()))
    stock = solver._update_gradient
    with elliptic_newton():
        assert solver._update_gradient is not stock
    assert solver._update_gradient is stock  # restored after tracing
