"""Validation in MuJoCo: the disturbance test, exact checks, captions, API and CLI.

The hand-made grasp: Shadow's "wrap" pose around an 8 x 3 x 3 cm bar (with a 4 cm cap
glued to its +x end as a second part), palm facing it, thumb under and fingers over it.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import trimesh

from jaxgrasp import load_object
from jaxgrasp.cli import main as cli_main
from jaxgrasp.grasp_set import GraspSet, GraspSetError
from jaxgrasp.object_model import ObjectError
from sim import SimConfig, build_scene, caption, grasp_stages, validate
from sim.disturbance import disturbance_test_mujoco

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
    return grasp_stages(hand, -BAR_IN_HAND + offsets, np.tile([1.0, 0, 0, 0], (n, 1)), q)


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
    with pytest.raises(ValueError, match="invalid SimConfig"):
        SimConfig(timestep=-1.0)


def test_grasp_set_roundtrip_and_cli_validate(shadow, tmp_path, capsys):
    from jaxgrasp import objects

    obj = objects.make_object("knife", 0)
    # A grasp set far from the knife: it must come out invalid, through the CLI.
    g = grasp_stages(
        shadow, [[0.0, 0.3, 0.0]], [[1.0, 0, 0, 0]], [np.asarray(shadow.init_q("wrap"))]
    )
    gs = GraspSet(
        *g,
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
    assert back.part == "handle" and back.terms["dis"][0] == 0.5
    out = tmp_path / "report.json"
    cli_main(["validate", str(path), "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["summary"]["num_valid"] == 0 and not report["grasps"][0]["valid"]
    text = capsys.readouterr().out
    assert "friction=0.6" in text and "condim=4" in text  # physics printed in the report
    with pytest.raises(GraspSetError, match="not found"):
        GraspSet.load(tmp_path / "missing.npz")
    with pytest.raises(SystemExit):
        cli_main(["validate", str(tmp_path / "missing.npz")])


@pytest.mark.skipif(
    not os.environ.get("JAXGRASP_TEST_MJX"),
    reason="MJX on CPU compiles this scene for ~5 min; set JAXGRASP_TEST_MJX=1 to run",
)
def test_mjx_agrees_with_mujoco(shadow, scene):
    from sim.mjx_backend import disturbance_test_mjx

    rng = np.random.default_rng(0)
    offsets = np.r_[np.zeros((1, 3)), rng.uniform(-0.01, 0.01, (8, 3)), [[0, 0.05, 0]]]
    grasps = _grasps(shadow, offsets)
    c = disturbance_test_mujoco(scene, shadow, grasps)
    x = disturbance_test_mjx(scene, shadow, grasps)
    assert np.mean(c.success == x.success) >= 0.9
