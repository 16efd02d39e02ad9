"""Dataset generation: object specs, kill-and-resume equals an uninterrupted run, the
loader's batches, the DexGraspBench export, settings mismatch."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh

from jaxgrasp.dataset import (
    DatasetConfig,
    DatasetError,
    GraspDataset,
    export_dexgraspbench,
    generate_dataset,
    parse_objects,
)
from jaxgrasp.grasp_set import GraspSet
from jaxgrasp.objects import categories
from jaxgrasp.synthesis import STAGE_SETTINGS, SynthesisConfig
from sim.grasps import WRIST_SQUEEZE

ROOT = Path(__file__).resolve().parents[1]
# Tiny jobs: the point is the bookkeeping, not grasp quality (benchmarks/synthesis.py).
TINY = DatasetConfig(
    num=4, steps=4, seed=5, synthesis=SynthesisConfig(energy_chunk=4, device_batch=8)
)
SPEC = "knife:0"  # two parts -> two jobs


def test_object_specs():
    assert parse_objects("mug:0-1,bottle:3") == [
        "procedural:mug:0",
        "procedural:mug:1",
        "procedural:bottle:3",
    ]
    assert len(parse_objects("all:2+4")) == 2 * len(categories())
    for bad in ("teapot:0", "mug", "mug:x", "mug:1-"):
        with pytest.raises(DatasetError, match="spec|seeds"):
            parse_objects(bad)


def test_bad_dataset_settings_are_refused_when_made():
    cases = {
        "num = 0 (must be an integer > 0)": dict(num=0),
        "modes = ('wrap', 'claw')": dict(modes=("wrap", "claw")),
        "modes = ()": dict(modes=()),
        "whole_object = False (must be True or False, and True when parts": dict(parts=False),
        "steps = -4 (must be None or an integer >= 0)": dict(steps=-4),
    }
    for message, kwargs in cases.items():
        with pytest.raises(DatasetError) as err:
            DatasetConfig(**kwargs)
        assert message in str(err.value), str(err.value)
    assert DatasetConfig(parts=False, whole_object=True).whole_object


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    manifest = generate_dataset(SPEC, out, TINY, progress=False, log=lambda _: None)
    return out, manifest


KILL_SPEC = "bottle:0"  # three parts -> three jobs: a kill after the first shard leaves work


def test_killed_run_resumes_to_the_same_dataset(tmp_path):
    """A run killed after its first shard (the next job's validation in flight, on the
    worker thread of the overlapped pipeline) resumes to the dataset of an uninterrupted
    run made one stage at a time (`overlap=False`)."""
    ref_dir = tmp_path / "sequential"
    ref_manifest = generate_dataset(
        KILL_SPEC, ref_dir, TINY, progress=False, log=lambda _: None, overlap=False
    )
    assert ref_manifest["complete"] and ref_manifest["jobs_done"] == 3
    out = tmp_path / "killed"
    script = textwrap.dedent(
        f"""
        from jaxgrasp.dataset import DatasetConfig, generate_dataset
        from jaxgrasp.synthesis import SynthesisConfig
        config = DatasetConfig(num=4, steps=4, seed=5,
                               synthesis=SynthesisConfig(energy_chunk=4, device_batch=8))
        generate_dataset({KILL_SPEC!r}, {str(out)!r}, config, progress=False)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and not _shards(out):
        assert proc.poll() is None, "the generator exited before writing a shard"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-run: the third job cannot have finished
    proc.wait()
    written = len(_shards(out))
    assert written in (1, 2), _shards(out)
    partial = json.loads((out / "manifest.json").read_text())
    assert partial["jobs_done"] <= written and not partial["complete"]

    logs: list[str] = []
    manifest = generate_dataset(KILL_SPEC, out, TINY, progress=False, log=logs.append)
    assert any(f"resuming: {written} of 3" in line for line in logs), logs
    assert manifest["complete"]
    assert not list((out / "shards").glob(".*")), "stale temporary files left behind"
    for path in sorted((ref_dir / "shards").glob("*.npz")):
        a, b = GraspSet.load(path), GraspSet.load(out / "shards" / path.name)
        for k in ("root_pos", "root_quat", "q_pregrasp", "q_grasp", "q_squeeze", "energy"):
            np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
        ea, eb = GraspSet.load_extra(path), GraspSet.load_extra(out / "shards" / path.name)
        for k in ("valid", "penetration", "translation", "rotation_deg", "caption"):
            np.testing.assert_array_equal(ea[k], eb[k])
    drop = {"seconds"}
    assert [{k: v for k, v in j.items() if k not in drop} for j in manifest["jobs"]] == [
        {k: v for k, v in j.items() if k not in drop} for j in ref_manifest["jobs"]
    ]


def test_pipelined_overlaps_consuming_with_producing_and_keeps_the_order():
    """`pipelined` consumes item k on its worker while item k + 1 is produced (here the
    consumer of item 0 waits for the producer of item 1: one stage at a time it would
    time out), yields in order, and raises a consumer's error."""
    import threading

    from jaxgrasp.pipeline import pipelined

    second_made = threading.Event()

    def produce(i):
        if i == 1:
            second_made.set()
        return i * 10

    def consume(i, made):
        if i == 0 and not second_made.wait(timeout=10):
            raise AssertionError("item 1 was not produced while item 0 was consumed")
        if i == 3:
            raise ValueError("bad item 3")
        return made + 1

    got = []
    with pytest.raises(ValueError, match="bad item 3"):
        for item, result in pipelined(range(5), produce, consume):
            got.append((item, result))
    assert got == [(0, 1), (1, 11), (2, 21)]
    sequential = list(pipelined(range(3), lambda i: i * 10, lambda i, m: m + 1, overlap=False))
    assert sequential == [(0, 1), (1, 11), (2, 21)]


def _shards(out: Path) -> list[Path]:
    # Finished shards only: a write in flight is a hidden temporary file.
    return [p for p in (out / "shards").glob("*.npz") if not p.name.startswith(".")]


def test_resume_refuses_other_settings(uninterrupted):
    out, _ = uninterrupted
    other = DatasetConfig(num=8, steps=4, seed=5)
    # The message names what differs, down to a nested synthesis setting.
    with pytest.raises(DatasetError, match="other settings") as error:
        generate_dataset(SPEC, out, other, progress=False, log=lambda _: None)
    assert "config.num: 4 there, 8 now" in str(error.value)
    assert "config.synthesis.energy_chunk: 4 there, 16 now" in str(error.value)


def test_resume_reads_a_manifest_from_before_select_at(uninterrupted, tmp_path):
    """A dataset begun before `SynthesisConfig.select_at` existed (its manifest lacks
    it; oversampling chose after the last step) resumes with the settings it was begun
    with, and only with those."""
    out = tmp_path / "old"
    shutil.copytree(uninterrupted[0], out)
    manifest = json.loads((out / "manifest.json").read_text())
    old_synthesis = manifest["config"]["synthesis"]
    del old_synthesis["select_at"]
    for oversample, select_at in ((1.0, 0.25), (2.0, 1.0)):
        old_synthesis["oversample"] = oversample
        (out / "manifest.json").write_text(json.dumps(manifest))
        same = dataclasses.replace(
            TINY,
            synthesis=dataclasses.replace(
                TINY.synthesis, oversample=oversample, select_at=select_at
            ),
        )
        assert generate_dataset(SPEC, out, same, progress=False, log=lambda _: None)["complete"]
    # Oversampling 2 chosen after the last step there, after a quarter of the steps now.
    with pytest.raises(DatasetError, match="select_at: 1.0 there, 0.25 now"):
        generate_dataset(SPEC, out, TINY, progress=False, log=lambda _: None)


def test_resume_reads_an_automatic_energy_chunk_as_this_platforms(uninterrupted, tmp_path):
    """`SynthesisConfig.energy_chunk` None means the platform's chunk (16 on CPU): a
    manifest that names 16 (written before the chunk was automatic) resumes under the
    automatic default, and one that names another chunk does not."""
    out = tmp_path / "chunk"
    shutil.copytree(uninterrupted[0], out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["config"]["synthesis"]["energy_chunk"] = 16
    (out / "manifest.json").write_text(json.dumps(manifest))
    auto = dataclasses.replace(
        TINY, synthesis=dataclasses.replace(TINY.synthesis, energy_chunk=None)
    )
    assert generate_dataset(SPEC, out, auto, progress=False, log=lambda _: None)["complete"]
    with pytest.raises(DatasetError, match="energy_chunk: 16 there, 8 now"):
        eight = dataclasses.replace(
            TINY, synthesis=dataclasses.replace(TINY.synthesis, energy_chunk=8)
        )
        generate_dataset(SPEC, out, eight, progress=False, log=lambda _: None)


def test_loader_batches_and_dexgraspbench_export(uninterrupted, tmp_path, shadow):
    out, manifest = uninterrupted
    valid = sum(j["valid"] for j in manifest["jobs"])
    assert len(GraspDataset(out)) == valid
    ds = GraspDataset(out, include_invalid=True)
    assert len(ds) == 8 and ds.object_refs == ["procedural:knife:0"]
    # The synthesis settings are read from the manifest itself (TINY's chunk sizes are
    # not the defaults), the closing settings with them.
    assert set(STAGE_SETTINGS) <= set(manifest["config"]["synthesis"])
    assert ds.synthesis_config == TINY.synthesis != SynthesisConfig()
    assert ds.stage_settings == {k: getattr(TINY.synthesis, k) for k in STAGE_SETTINGS}
    assert all(c.startswith("Grasp the ") and " of the knife object" in c for c in ds.captions)
    batches = list(ds.batches(3, seed=1, n_points=256))
    assert len(batches) == 2  # 8 grasps, batches of 3, the short one dropped
    b = batches[0]
    assert b["points"].shape == (3, 256, 3) and b["normals"].shape == (3, 256, 3)
    assert b["grasp"].shape == (3, 7 + shadow.n_q) and len(b["caption"]) == 3
    again = next(ds.batches(3, seed=1, n_points=256))
    np.testing.assert_array_equal(again["grasp"], b["grasp"])  # seeded shuffling
    with pytest.raises(DatasetError, match="batch_size"):
        next(ds.batches(0))

    n = export_dexgraspbench(ds, tmp_path / "dgb")
    files = sorted((tmp_path / "dgb").rglob("*.npy"))
    assert n == len(files) == 8
    record = np.load(files[0], allow_pickle=True).item()
    for key in ("obj_path", "obj_scale", "obj_pose", "pregrasp_qpos", "grasp_qpos", "squeeze_qpos"):
        assert key in record
    assert record["grasp_qpos"].shape == (7 + shadow.n_joints,)
    assert len(record["joint_names"]) == shadow.n_joints
    mesh = trimesh.load(record["obj_path"], force="mesh")
    assert len(mesh.faces) == len(np.asarray(ds.object(0).faces))
    # The root pose leads the qpos, as DexGraspBench's mocap hands expect.
    row = int(files[0].stem.rsplit("_", 1)[1])  # the object's k-th grasp in dataset order
    np.testing.assert_allclose(record["grasp_qpos"][:3], ds.root_pos[row])
    np.testing.assert_allclose(record["grasp_qpos"][3:7], ds.root_quat[row])
    # The squeeze pose carries the wrist's squeeze position (the palm presses too).
    np.testing.assert_allclose(record["squeeze_qpos"][:3], ds.root_pos_squeeze[row])
    np.testing.assert_allclose(record["pregrasp_qpos"][:3], ds.root_pos[row])
    moved = np.linalg.norm(ds.root_pos_squeeze[row] - ds.root_pos[row])
    np.testing.assert_allclose(moved, WRIST_SQUEEZE, rtol=1e-5)
    assert record["caption"] == ds.captions[row] and files[0].name.startswith(ds.parts[row])


def test_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="no dataset"):
        GraspDataset(tmp_path)
