"""The flow-matching grasp generator: grasp vectors, partial views, training (overfit,
checkpoint/restore, kill-and-resume), deterministic sampling, bad input, evaluation."""

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
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial import cKDTree

from jaxgrasp._hand_depth import CLOUD_GRID_PADDING, cloud_sdf, grasp_surface
from jaxgrasp._open_to_clear import open_to_clear
from jaxgrasp.dataset import DatasetError, GraspDataset
from jaxgrasp.evaluation import (
    EvalConfig,
    choose_open_by,
    choose_temperature,
    evaluate,
    joint_entropy,
)
from jaxgrasp.generator import GenerationError, GraspGenerator, estimate_normals, generate
from jaxgrasp.grasp_set import GraspSet
from jaxgrasp.grasp_vector import (
    Normalizer,
    anchored_vectors,
    from_vector,
    nearest_anchors,
    palm_points,
    rotated_vectors,
    to_vector,
    yaw_rotations,
)
from jaxgrasp.initialization import initial_poses
from jaxgrasp.instruction import InstructionError, Tokenizer, parse_instruction
from jaxgrasp.objects import make_object
from jaxgrasp.pipeline import show_grasps
from jaxgrasp.point_views import partial_views, view_camera
from jaxgrasp.sentence_encoder import sentence_encoder
from jaxgrasp.synthesis import SynthesisConfig
from jaxgrasp.training import (
    TrainConfig,
    TrainingError,
    schedule_shortfall,
    train,
    training_times,
)
from kinematics import forward_kinematics, points_to_world
from sim.grasps import grasp_stages

ROOT = Path(__file__).resolve().parents[1]
REF = "procedural:bottle:0"
CAPTIONS = (
    "Grasp the body of the bottle object, with contacts on thumb, index, middle, ring, little",
    "Grasp the cap of the bottle object, with contacts on thumb, index",
)
# Small and fast: the point is the machinery, not grasp quality (benchmarks/model.py).
TINY = TrainConfig(
    steps=300,
    batch_size=16,
    n_points=128,
    lr=3e-3,
    warmup=20,
    checkpoint_every=100,
    point_width=32,
    cond_width=64,
    hidden=128,
    blocks=2,
    token_width=16,
    partial_fraction=0.5,
    n_views=4,
)

STAGES = {"pregrasp_rad": 0.2, "wrist_squeeze": 0.002}


def write_dataset(path: Path, hand, n: int = 6) -> Path:
    """A dataset directory in `jaxgrasp generate`'s format with `n` grasps on one
    bottle (initial poses of two parts; every grasp marked valid)."""
    obj = make_object("bottle", 0)
    shards = path / "shards"
    shards.mkdir(parents=True)
    jobs = []
    for k, (part, text) in enumerate(zip(("body", "cap"), CAPTIONS, strict=True)):
        pos, quat, q = initial_poses(hand, obj, obj.part_index(part), "wrap", n // 2, seed=k)
        gs = GraspSet(
            **grasp_stages(hand, pos, quat, q, **STAGES)._asdict(),
            energy=np.zeros(n // 2),
            terms={},
            hand=hand.name,
            object_ref=REF,
            object_name="bottle",
            part=part,
        )
        key = f"bottle-0__{part}__wrap"
        gs.save(
            shards / f"{key}.npz",
            extra={"valid": np.ones(n // 2, bool), "caption": np.array([text] * (n // 2))},
        )
        jobs.append({"job": key, "object_ref": REF, "generated": n // 2, "valid": n // 2})
    # Closing settings other than the defaults: a model trained here must close its
    # samples this way (test_samples_are_closed_like_the_training_grasps).
    manifest = {"config": {"hand": hand.name, "synthesis": dict(STAGES)}, "jobs": jobs}
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


@pytest.fixture(scope="module")
def trained(shadow, tmp_path_factory):
    root = tmp_path_factory.mktemp("model")
    data = write_dataset(root / "dataset", shadow)
    result = train(data, root / "run", TINY, progress=False)
    return data, result


def test_grasp_vector_round_trip_and_degenerate_rotation(shadow):
    rng = np.random.default_rng(0)
    quat = rng.normal(size=(50, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    pos = rng.normal(size=(50, 3))
    q = rng.uniform(*np.asarray(shadow.q_range).T, size=(50, shadow.n_q))
    pos2, quat2, q2 = from_vector(to_vector(pos, quat, q))
    np.testing.assert_allclose(pos2, pos, atol=1e-6)
    np.testing.assert_allclose(q2, q, atol=1e-6)
    np.testing.assert_allclose(np.abs(np.sum(quat2 * quat, axis=1)), 1.0, atol=1e-5)
    # All-zero or parallel 6D columns still give unit quaternions.
    bad = np.zeros((2, 9 + shadow.n_q))
    bad[1, 3:9] = [1, 0, 0, 2, 0, 0]
    _, qb, _ = from_vector(bad)
    assert np.all(np.isfinite(qb)) and np.allclose(np.linalg.norm(qb, axis=1), 1.0)


def test_normalizer_keeps_constant_dimensions_finite():
    x = np.c_[np.random.default_rng(1).normal(size=(20, 2)), np.ones((20, 1))]
    norm = Normalizer.fit(x)
    z = norm.normalize(x)
    assert np.all(np.isfinite(z)) and np.allclose(norm.denormalize(z), x, atol=1e-5)


def test_anchor_targets_stay_finite_and_peak_at_the_nearest_point(shadow):
    # The palm origin is fixed in the root frame, so it moves rigidly with the root pose.
    offset = np.asarray(shadow.spec.palm.origin)
    assert 0.01 < np.linalg.norm(offset) < 0.1
    quat = np.array([[0.0, 0.0, 0.0, 1.0]])  # half a turn about z
    np.testing.assert_allclose(
        palm_points(shadow, np.array([[1.0, 2.0, 3.0]]), quat)[0],
        [1.0 - offset[0], 2.0 - offset[1], 3.0 + offset[2]],
        atol=1e-6,
    )
    cloud = np.random.default_rng(0).uniform(-0.05, 0.05, size=(1, 64, 3))
    # On the cloud, beside it, and a kilometre away (where exp(-d^2) underflows).
    palms = np.stack([cloud[0, 7], cloud[0, 3] + 1e-3, [1000.0, 0.0, 0.0]])
    index, logp = nearest_anchors(cloud, palms, sigma=0.01)
    d = np.linalg.norm(cloud[0][None] - palms[:, None], axis=-1)
    np.testing.assert_array_equal(index, d.argmin(1))
    assert index[0] == 7 and index[1] == 3
    assert np.all(np.isfinite(logp))
    np.testing.assert_allclose(np.exp(logp).sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(logp.argmax(1), index)
    # Translations relative to the nearest point; one cloud shared by every palm.
    vectors = np.arange(3 * 12, dtype=np.float32).reshape(3, 12)
    rel, shared, _ = anchored_vectors(vectors, cloud, palms, sigma=0.01)
    np.testing.assert_array_equal(shared, index)
    np.testing.assert_allclose(rel[:, :3], vectors[:, :3] - cloud[0, index], rtol=1e-6)
    np.testing.assert_array_equal(rel[:, 3:], vectors[:, 3:])


def test_grasps_sharing_a_cloud_get_what_their_own_copies_would_give():
    """`repeat` grasps per cloud (training's grasps_per_cloud, sampling's num) read each
    cloud once; that must equal every grasp holding its own copy of it, values and
    gradients alike (session 51 dropped the per-grasp copies for speed)."""
    from flax import nnx

    from jaxgrasp.flow_model import FlowNet, ModelConfig

    config = ModelConfig(grasp_dim=12, vocab_size=9, point_width=16, cond_width=32, hidden=32)
    net = FlowNet(dataclasses.replace(config, anchored=True), nnx.Rngs(0))
    rng = np.random.default_rng(0)
    # The output layer starts at zero (every velocity 0): give it weights to compare.
    net.out.kernel.value = jnp.asarray(rng.normal(size=(32, 12)), jnp.float32)
    clouds, repeat, n = 3, 4, 20
    b = clouds * repeat
    pts = jnp.asarray(rng.normal(size=(clouds, n, 3)), jnp.float32)
    nrm = jnp.asarray(rng.normal(size=(clouds, n, 3)), jnp.float32)
    tokens = jnp.asarray(rng.integers(1, 9, size=(b, 5)))
    sentence = jnp.zeros((b, 0))
    x_t = jnp.asarray(rng.normal(size=(b, 12)), jnp.float32)
    t = jnp.asarray(rng.uniform(size=b), jnp.float32)
    anchor = jnp.asarray(rng.integers(0, n, size=b))

    def outputs(net, pts, nrm, repeat):
        base, per_point = net.features(pts, nrm, tokens, sentence, repeat)
        logits = net.anchor_logits(base, per_point, repeat)
        return logits, net(pts, nrm, tokens, sentence, x_t, t, repeat, anchor)

    shared = outputs(net, pts, nrm, repeat)
    own = outputs(net, jnp.repeat(pts, repeat, 0), jnp.repeat(nrm, repeat, 0), 1)
    for a, b_ in zip(shared, own, strict=True):
        assert a.shape == b_.shape
        np.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-5)
    # A grasp's anchor row comes from its own cloud: moving another cloud changes nothing.
    moved = outputs(net, pts.at[1].add(1.0), nrm, repeat)[1]
    np.testing.assert_array_equal(moved[:repeat], shared[1][:repeat])
    assert not np.allclose(moved[repeat : 2 * repeat], shared[1][repeat : 2 * repeat])

    def loss(net, pts, nrm, repeat):
        logits, v = outputs(net, pts, nrm, repeat)
        return jnp.sum(jax.nn.log_softmax(logits) ** 2) + jnp.sum(v**2)

    g_shared = nnx.grad(loss)(net, pts, nrm, repeat)
    g_own = nnx.grad(loss)(net, jnp.repeat(pts, repeat, 0), jnp.repeat(nrm, repeat, 0), 1)
    for a, b_ in zip(jax.tree.leaves(g_shared), jax.tree.leaves(g_own), strict=True):
        # The floor is for the anchor key's bias, whose gradient is 0 (a softmax ignores
        # a shift of all its logits) up to rounding; other leaves reach 30 and more.
        atol = max(1e-5 * float(np.abs(b_).max()), 1e-2)
        np.testing.assert_allclose(a, b_, rtol=1e-4, atol=atol)


def test_training_times_lean_towards_the_data_end_with_their_power():
    key = jax.random.key(0)
    for power in (1.0, 2.0, 4.0):
        t = np.asarray(training_times(key, 20000, power))
        assert t.min() >= 0.0 and t.max() <= 1.0
        # 1 - (1 - u)^p has mean p / (p + 1): 1/2 uniform, 2/3 at 2, 4/5 at 4.
        assert abs(t.mean() - power / (power + 1.0)) < 0.01, (power, t.mean())
    # Power 1 is the uniform draw itself, to the bit (runs before t_power resume alike).
    np.testing.assert_array_equal(training_times(key, 64), jax.random.uniform(key, (64,)))


def test_a_time_cap_that_stops_the_schedule_early_is_told():
    # session 47's benchmark: 160000 steps capped at 58 minutes, 31 ms per step
    capped = TrainConfig(steps=160000, max_minutes=58)
    msg = schedule_shortfall(capped, 200, 10.0, 0.031)
    assert msg is not None
    reach = 200 + int((58 * 60 - 10) / 0.031)
    assert f"near step {reach} of 160000" in msg and "set steps to about 112000" in msg
    # the learning rate there, read from the optimizer's own schedule: a quarter of its peak
    assert "still at 25% of its peak" in msg
    # a schedule that ends within the cap, or no cap: nothing to tell
    assert schedule_shortfall(dataclasses.replace(capped, steps=100000), 200, 10.0, 0.031) is None
    assert schedule_shortfall(TrainConfig(steps=160000), 200, 10.0, 0.031) is None


def test_partial_view_sees_one_side():
    obj = make_object("bottle", 0)
    pts, nrm = np.asarray(obj.points), np.asarray(obj.normals)
    views = partial_views(pts, nrm, n_views=4)
    for view in views:
        assert 0.15 * len(pts) < len(view) < 0.7 * len(pts)
    # Opposite cameras (azimuth 0 and 180 degrees) see mostly different points.
    overlap = len(np.intersect1d(views[0], views[2])) / len(views[0])
    assert overlap < 0.5


def test_tokenizer_and_instruction_parser():
    tok = Tokenizer.fit(CAPTIONS)
    ids = tok.encode(["Grasp the LID of the bottle object"])
    assert ids.shape == (1, tok.max_len) and (ids[0] == 1).sum() == 1  # "lid" unknown
    with pytest.raises(InstructionError):
        tok.encode(["  !! "])
    p = parse_instruction(CAPTIONS[1])
    assert (p.part, p.object, p.fingers) == ("cap", "bottle", ("thumb", "index"))
    assert parse_instruction("Grasp the mug object").part is None


def test_sentence_encoder_loads_offline_and_places_words_by_meaning():
    """The frozen encoder (WordLlama, weights from its wheel) gives unit vectors that put
    an instruction naming an unseen object or part nearest its related seen one."""
    enc = sentence_encoder("wordllama")
    assert sentence_encoder("wordllama") is enc  # loaded once
    names = ("flask", "bottle", "mug", "lamp", "cup")
    v = enc.encode([f"Grasp the body of the {n} object" for n in names])
    assert v.shape == (5, enc.dim) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sim = dict(zip(names, v @ v[0], strict=True))  # to the flask
    assert sim["bottle"] > max(sim["mug"], sim["lamp"]) + 0.03
    assert v[4] @ v[2] > v[4] @ v[1]  # a cup is nearer a mug than a bottle
    grip, handle, blade = enc.encode(
        [f"Grasp the {p} of the knife object" for p in ("grip", "handle", "blade")]
    )
    assert grip @ handle > grip @ blade + 0.03
    np.testing.assert_array_equal(enc.encode(["Grasp the body of the flask object"])[0], v[0])
    with pytest.raises(InstructionError, match="empty"):
        enc.encode(["  "])
    with pytest.raises(InstructionError, match="unknown sentence encoder 'bert'"):
        sentence_encoder("bert")
    with pytest.raises(TrainingError, match="sentence_encoder"):
        TrainConfig(sentence_encoder="bert")  # type: ignore[arg-type]


def test_model_with_a_sentence_encoder_tells_unseen_words_apart(shadow, trained, tmp_path):
    """With the frozen encoder, an instruction naming an object the captions never did
    conditions the samples on its meaning; the word-only model reads every unseen word
    as one unknown token. The run records the encoder and reloads with it."""
    config = dataclasses.replace(TINY, steps=60, sentence_encoder="wordllama")
    result = train(trained[0], tmp_path / "run", config, progress=False)
    model = GraspGenerator.load(result.run)
    assert model.sentence_encoder == "wordllama"
    for a, b in zip(jax.tree.leaves(result.ema), jax.tree.leaves(model.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    pts = np.asarray(make_object("bottle", 0).points)

    def sample(m, name):
        text = f"Grasp the body of the {name} object"
        # An unseen word is named in a warning, with how the model reads it.
        reads = "its sentence encoder still" if m.sentence_encoder else "the model reads each"
        with pytest.warns(UserWarning, match=rf"never used: {name} \({reads}"):
            return generate(m, pts, text, 8, seed=2, method="euler", steps=4).root_pos

    assert not np.allclose(sample(model, "flask"), sample(model, "jar"))
    words_only = GraspGenerator.load(trained[1].run)
    assert words_only.sentence_encoder is None
    np.testing.assert_array_equal(sample(words_only, "flask"), sample(words_only, "jar"))
    with warnings.catch_warnings():  # a training caption's words are all known
        warnings.simplefilter("error")
        generate(words_only, pts, CAPTIONS[0], 2, steps=2)
    # Runs written before the setting existed resume with the default (no encoder).
    old = shutil.copytree(trained[1].run, tmp_path / "old_run")
    info = json.loads((old / "run.json").read_text())
    del info["config"]["sentence_encoder"]
    (old / "run.json").write_text(json.dumps(info))
    assert train(trained[0], old, TINY, progress=False).steps_run == 0
    with pytest.raises(TrainingError, match="other settings"):
        train(trained[0], old, dataclasses.replace(TINY, sentence_encoder="wordllama"))
    info["config"]["sentence_encoder"] = "bert"
    (old / "run.json").write_text(json.dumps(info))
    with pytest.raises(TrainingError, match=r"run.json: invalid TrainConfig: sentence_encoder"):
        GraspGenerator.load(old)


def test_missing_sentence_encoder_package_is_a_clear_error(trained, tmp_path, monkeypatch):
    """Without the `text` extra: one line saying what to install, and no run written."""
    sentence_encoder.cache_clear()
    monkeypatch.setitem(sys.modules, "wordllama", None)  # `import wordllama` fails
    config = dataclasses.replace(TINY, sentence_encoder="wordllama")
    try:
        hint = r'needs the wordllama package: pip install "jaxgrasp\[text\]"'
        with pytest.raises(TrainingError, match=hint):
            train(trained[0], tmp_path / "run", config, progress=False)
        assert not (tmp_path / "run").exists()
    finally:
        sentence_encoder.cache_clear()


def test_turned_grasps_keep_their_place_on_the_turned_cloud(shadow):
    # TrainConfig.yaw_augment turns a training cloud and its grasps together: the hand
    # must land where the turn takes it, and its anchor must stay the same cloud point.
    rng = np.random.default_rng(3)
    quat = rng.normal(size=(5, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    pos = rng.uniform(-0.1, 0.1, size=(5, 3))
    q = rng.uniform(*np.asarray(shadow.q_range).T, size=(5, shadow.n_q))
    vectors = to_vector(pos, quat, q)
    yaw = np.array([0.0, 0.5, -2.0, np.pi, 3.0])
    turn = yaw_rotations(yaw)
    np.testing.assert_allclose(turn[1] @ [1.0, 0.0, 0.0], [np.cos(0.5), np.sin(0.5), 0.0])
    np.testing.assert_allclose(
        turn @ turn.transpose(0, 2, 1), np.broadcast_to(np.eye(3), turn.shape), atol=1e-12
    )
    turned = rotated_vectors(vectors, turn)
    np.testing.assert_allclose(turned[0], vectors[0], atol=1e-7)
    np.testing.assert_array_equal(turned[:, 9:], vectors[:, 9:])  # joints stay
    pos2, quat2, _ = from_vector(turned)
    palms = palm_points(shadow, pos, quat)
    np.testing.assert_allclose(
        palm_points(shadow, pos2, quat2), np.einsum("nij,nj->ni", turn, palms), atol=1e-5
    )
    cloud = rng.uniform(-0.05, 0.05, size=(5, 64, 3))
    turned_cloud = np.einsum("nij,npj->npi", turn, cloud)
    rel, index, logp = anchored_vectors(vectors, cloud, palms, sigma=0.01)
    rel2, index2, logp2 = anchored_vectors(
        turned, turned_cloud, np.einsum("nij,nj->ni", turn, palms), sigma=0.01
    )
    np.testing.assert_array_equal(index2, index)
    np.testing.assert_allclose(logp2, logp, atol=1e-4)
    np.testing.assert_allclose(rel2, rotated_vectors(rel, turn), atol=1e-6)


def test_yaw_augmented_run_takes_its_statistics_over_turned_grasps(trained, tmp_path):
    data = trained[0]
    config = dataclasses.replace(TINY, steps=20, checkpoint_every=20, yaw_augment=180.0)
    result = train(data, tmp_path / "run", config, progress=False)
    assert np.isfinite(result.losses[-1][1])
    mean = GraspGenerator.load(result.run).normalizer.mean
    own = GraspGenerator.load(trained[1].run).normalizer.mean
    # Turned evenly round the circle, the horizontal parts of T and of both rotation
    # columns average out; the vertical parts and the joints keep their statistics.
    horizontal = [0, 1, 3, 4, 6, 7]
    assert np.abs(own[horizontal]).max() > 0.05
    np.testing.assert_allclose(mean[horizontal], 0.0, atol=1e-5)
    np.testing.assert_allclose(mean[[2, 5, 8]], own[[2, 5, 8]], atol=1e-5)
    np.testing.assert_allclose(mean[9:], own[9:], atol=1e-5)


def assert_learned(data: Path, result) -> GraspGenerator:
    """The loss fell, and samples land near the training grasps of the instructed part
    (memorised). Returns the model loaded from the run."""
    first = np.mean([v for _, v in result.losses[:3]])
    last = np.mean([v for _, v in result.losses[-5:]])
    # Under 0.35 with uniform flow times; t_power 2 (the default) draws more of the
    # times near t = 1, where the velocity's noise end is hardest to read, so the loss
    # keeps a higher floor (0.45-0.47 here): the samples below show the memorising.
    assert last < 0.55 * first, (first, last)
    model = GraspGenerator.load(result.run)
    ds = GraspDataset(data)
    norm = model.normalizer
    obj = make_object("bottle", 0)
    train_z = norm.normalize(to_vector(ds.root_pos, ds.root_quat, ds.q_grasp))
    for part, text in zip(("body", "cap"), CAPTIONS, strict=True):
        g = generate(model, np.asarray(obj.points), text, 16, normals=np.asarray(obj.normals))
        assert g.part == part and g.count == 16
        z = norm.normalize(to_vector(g.root_pos, g.root_quat, g.q_grasp))
        mine = np.array([p == part for p in ds.parts])
        d = np.linalg.norm(z[:, None] - train_z[None], axis=-1)
        assert np.median(d[:, mine].min(1)) < np.median(d[:, ~mine].min(1))
    return model


def test_tiny_model_overfits_and_checkpoint_restores(trained, shadow):
    data, result = trained
    model = assert_learned(data, result)
    assert model.step == TINY.steps
    # Sampling uses the weights' moving average; average=False, the last step's own.
    own = GraspGenerator.load(result.run, average=False)
    for saved, loaded in ((result.ema, model.params), (result.params, own.params)):
        for a, b in zip(jax.tree.leaves(saved), jax.tree.leaves(loaded), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # The average is not the last step: it trails it (lr 3e-3 still moves the weights).
    gap = max(
        float(np.abs(np.asarray(a) - np.asarray(b)).max())
        for a, b in zip(jax.tree.leaves(result.ema), jax.tree.leaves(result.params), strict=True)
    )
    assert gap > 1e-4


@pytest.fixture(scope="module")
def object_frame(shadow, trained, tmp_path_factory):
    """A model whose translations are in the object frame (not anchored; the only kind
    before session 41)."""
    data = trained[0]
    run = tmp_path_factory.mktemp("object_frame") / "run"
    return data, train(data, run, dataclasses.replace(TINY, anchored=False), progress=False)


def test_anchored_model_places_the_palm_from_the_cloud(trained, shadow):
    data, result = trained  # anchored: the default
    model = GraspGenerator.load(result.run)
    assert json.loads((result.run / "run.json").read_text())["config"]["anchored"]
    obj = make_object("bottle", 0)
    pts, nrm = np.asarray(obj.points), np.asarray(obj.normals)
    ds = GraspDataset(data)
    train_palms = palm_points(shadow, ds.root_pos, ds.root_quat)
    for part, text in zip(("body", "cap"), CAPTIONS, strict=True):
        g = generate(model, pts, text, 16, normals=nrm, seed=1)
        # Translations are relative to the anchor drawn from the cloud; put back in the
        # object frame, the palms land near the instructed part's training palms.
        d = np.linalg.norm(
            palm_points(shadow, g.root_pos, g.root_quat)[:, None] - train_palms, axis=-1
        )
        mine = np.array([p == part for p in ds.parts])
        assert np.median(d[:, mine].min(1)) < 0.5 * np.median(d[:, ~mine].min(1))
    # The anchor draw is part of the seed; temperature 0 takes the likeliest anchor.
    a = generate(model, pts, CAPTIONS[1], 8, normals=nrm, seed=2, steps=4)
    b = generate(model, pts, CAPTIONS[1], 8, normals=nrm, seed=2, steps=4)
    np.testing.assert_array_equal(a.root_pos, b.root_pos)
    cold = generate(model, pts, CAPTIONS[1], 4, normals=nrm, seed=2, temperature=0.0)
    np.testing.assert_allclose(cold.root_pos, cold.root_pos[:1].repeat(4, 0), atol=1e-6)
    # The anchor's own temperature: no noise, but palms drawn at several points.
    spread = generate(
        model, pts, CAPTIONS[1], 8, normals=nrm, seed=2, temperature=0.0, anchor_temperature=1.0
    )
    assert len(np.unique(spread.root_pos.round(6), axis=0)) > 1
    for bad in (-1.0, float("nan")):
        with pytest.raises(GenerationError, match="anchor_temperature"):
            generate(model, pts, CAPTIONS[1], 2, anchor_temperature=bad)


def test_object_frame_model_learns_and_older_runs_load_as_one(object_frame, tmp_path):
    data, result = object_frame
    model = assert_learned(data, result)
    obj = make_object("bottle", 0)
    # A run written before session 41 records no anchor settings: it is one of these.
    # Nor did it keep a moving average of its weights (session 47): it samples its own;
    # and it drew its flow times uniformly (t_power 1; 2 since session 48).
    old = shutil.copytree(result.run, tmp_path / "old_run")
    info = json.loads((old / "run.json").read_text())
    for key in ("anchored", "anchor_sigma", "anchor_weight", "ema_decay", "t_power"):
        del info["config"][key]
    (old / "run.json").write_text(json.dumps(info))
    for average in old.glob("checkpoints/*/ema"):
        shutil.rmtree(average)
    before = dataclasses.replace(TINY, anchored=False, ema_decay=0.0, t_power=1.0)
    pts = np.asarray(obj.points)
    own = GraspGenerator.load(result.run, average=False)
    a = generate(own, pts, CAPTIONS[0], 4, seed=1, steps=4)
    b = generate(GraspGenerator.load(old), pts, CAPTIONS[0], 4, seed=1, steps=4)
    np.testing.assert_array_equal(a.root_pos, b.root_pos)
    assert not np.array_equal(
        a.root_pos, generate(model, pts, CAPTIONS[0], 4, seed=1, steps=4).root_pos
    )
    resumed = train(data, old, before, progress=False)
    assert resumed.steps_run == 0  # the same settings: it resumes (and is done)
    # Session 43's runs recorded a training term that was removed after it: off, the
    # run loads and resumes as one without it; on, a clear error.
    info["config"].update(penetration_weight=0.0, penetration_points=128)
    (old / "run.json").write_text(json.dumps(info))
    c = generate(GraspGenerator.load(old), pts, CAPTIONS[0], 4, seed=1, steps=4)
    np.testing.assert_array_equal(a.root_pos, c.root_pos)
    assert train(data, old, before, progress=False).steps_run == 0
    info["config"]["penetration_weight"] = 1.0
    (old / "run.json").write_text(json.dumps(info))
    with pytest.raises(TrainingError, match="penetration_weight = 1.0, a training term removed"):
        GraspGenerator.load(old)
    # Session 49's hand features of the velocity network, likewise (commit 22edefe).
    info["config"].update(penetration_weight=0.0, hand_features=False)
    (old / "run.json").write_text(json.dumps(info))
    d = generate(GraspGenerator.load(old), pts, CAPTIONS[0], 4, seed=1, steps=4)
    np.testing.assert_array_equal(a.root_pos, d.root_pos)
    info["config"]["hand_features"] = True
    (old / "run.json").write_text(json.dumps(info))
    with pytest.raises(TrainingError, match="hand_features = True, network inputs removed"):
        GraspGenerator.load(old)
    # Session 50's prediction of the clean grasp (commit f0e2c41): "velocity" is a run
    # without it; "grasp" names the commit that had it.
    info["config"].update(hand_features=False, prediction="velocity")
    (old / "run.json").write_text(json.dumps(info))
    e = generate(GraspGenerator.load(old), pts, CAPTIONS[0], 4, seed=1, steps=4)
    np.testing.assert_array_equal(a.root_pos, e.root_pos)
    info["config"]["prediction"] = "grasp"
    (old / "run.json").write_text(json.dumps(info))
    with pytest.raises(TrainingError, match="prediction = grasp, .*commit f0e2c41"):
        GraspGenerator.load(old)


def test_sampling_is_deterministic_for_a_seed(trained):
    model = GraspGenerator.load(trained[1].run)
    pts = np.asarray(make_object("bottle", 0).points)
    a = generate(model, pts, CAPTIONS[0], 8, seed=3, method="euler", steps=4)
    b = generate(
        GraspGenerator.load(trained[1].run), pts, CAPTIONS[0], 8, seed=3, method="euler", steps=4
    )
    c = generate(model, pts, CAPTIONS[0], 8, seed=4, method="euler", steps=4)
    np.testing.assert_array_equal(a.root_pos, b.root_pos)
    np.testing.assert_array_equal(a.q_grasp, b.q_grasp)
    assert not np.allclose(a.root_pos, c.root_pos)


def test_temperature_gathers_samples_towards_one_grasp(trained):
    model = GraspGenerator.load(trained[1].run)
    pts = np.asarray(make_object("bottle", 0).points)

    def spread(temperature):
        g = generate(model, pts, CAPTIONS[0], 16, seed=5, temperature=temperature)
        z = model.normalizer.normalize(to_vector(g.root_pos, g.root_quat, g.q_grasp))
        return float(np.linalg.norm(z - z.mean(0), axis=1).mean())

    # 0: no noise, every sample integrates from the same start (one grasp, repeated).
    assert spread(0.0) < 1e-5
    assert spread(0.1) < 0.5 * spread(1.0)
    # The default temperature is 1 (the noise the model was trained from).
    a = generate(model, pts, CAPTIONS[0], 8, seed=5)
    b = generate(model, pts, CAPTIONS[0], 8, seed=5, temperature=1.0)
    np.testing.assert_array_equal(a.q_grasp, b.q_grasp)
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(GenerationError, match="temperature"):
            generate(model, pts, CAPTIONS[0], 8, temperature=bad)


def _widened_bottle():
    """The bottle 3 times its size about its axis (its cloud and normals): the tiny model,
    trained on hands around the real one, closes its fingers inside this one."""
    obj = make_object("bottle", 0)
    centre = np.r_[np.asarray(obj.points)[:, :2].mean(0), 0.0]
    pts = (np.asarray(obj.points) - centre) * [3.0, 3.0, 1.0] + centre
    return obj, pts, np.asarray(obj.normals)


def _below_cloud(pts, nrm, surface):
    """Brute force: each point's distance to its nearest cloud point and its depth (m)
    below that point's tangent plane (0 above). Shape: surface's without its last axis."""
    dist, nearest = cKDTree(pts).query(surface)
    signed = np.sum((surface - pts[nearest]) * nrm[nearest], axis=-1)
    return dist, np.maximum(-signed, 0.0)


def test_guidance_moves_the_hands_out_of_the_cloud(trained, shadow):
    model = GraspGenerator.load(trained[1].run)
    _, pts, nrm = _widened_bottle()

    def depth_mm(g):  # mean depth of each sample's hand surface samples below the cloud
        x = to_vector(g.root_pos, g.root_quat, g.q_grasp)
        z = jnp.asarray(model.normalizer.normalize(x), jnp.float32)
        stats = jnp.asarray(model.normalizer.mean), jnp.asarray(model.normalizer.std)
        surface = jax.vmap(lambda z1: grasp_surface(shadow, *stats, z1, jnp.zeros(3)))(z)
        return 1000.0 * _below_cloud(pts, nrm, np.asarray(surface, np.float64))[1].mean(axis=1)

    kw = dict(normals=nrm, seed=2, steps=8)
    raw = generate(model, pts, CAPTIONS[0], 8, **kw)
    off = generate(model, pts, CAPTIONS[0], 8, guidance=0.0, **kw)
    guided = generate(model, pts, CAPTIONS[0], 8, guidance=3.0, **kw)
    np.testing.assert_array_equal(raw.q_grasp, off.q_grasp)  # 0: the model's own samples
    assert np.all(np.isfinite(guided.root_pos)) and np.all(np.isfinite(guided.q_grasp))
    before, after = depth_mm(raw), depth_mm(guided)
    assert before.mean() > 0.1, before
    assert after.mean() < 0.5 * before.mean(), (before, after)
    for bad in (-1.0, float("nan")):
        with pytest.raises(GenerationError, match="guidance"):
            generate(model, pts, CAPTIONS[0], 8, guidance=bad)


def test_oversampling_keeps_the_samples_that_sit_best_against_the_cloud(trained, shadow, tmp_path):
    model = GraspGenerator.load(trained[1].run)
    obj, pts, nrm = _widened_bottle()  # most samples lie in it, some less deep

    def hand_surface(g):  # (B, n_surface, 3)
        def one(pos, quat, q):
            poses = forward_kinematics(shadow, pos, quat, q)
            return points_to_world(poses, shadow.surface.body, jnp.asarray(shadow.surface.points))

        return np.asarray(jax.vmap(one)(g.root_pos, g.root_quat, g.q_grasp))

    def deepest_mm(g):  # each hand's deepest surface sample below the cloud, brute force
        dist, depth = _below_cloud(pts, nrm, hand_surface(g))
        # Within the grid's padding of the cloud: further out a tangent plane says little.
        return 1000.0 * np.where(dist < CLOUD_GRID_PADDING, depth, 0.0).max(axis=1)

    kw = dict(normals=nrm, seed=2, steps=8)
    raw = generate(model, pts, CAPTIONS[0], 8, **kw)
    drawn = generate(model, pts, CAPTIONS[0], 32, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ranked = generate(model, pts, CAPTIONS[0], 8, oversample=4, **kw)
    assert not [w for w in caught if "one view" in str(w.message)]  # a full cloud
    # The first 8 of 32 draws are the 8 that k = 1 returns (the noise is per sample;
    # XLA's batched arithmetic rounds a little differently for another batch size).
    np.testing.assert_allclose(drawn.q_grasp[:8], raw.q_grasp, atol=1e-5)
    assert raw.terms == {} and ranked.count == 8
    assert set(ranked.terms) == {"cloud_depth_mm", "cloud_gap_mm"}
    score = ranked.terms["cloud_depth_mm"] + ranked.terms["cloud_gap_mm"] / 3.0
    assert np.all(np.diff(score) >= 0)  # best first
    # The kept hands are 8 of the 32 drawn, and no left-out one sits better.
    kept = [int(np.flatnonzero((drawn.q_grasp == q).all(axis=1))[0]) for q in ranked.q_grasp]
    assert len(set(kept)) == 8
    left_out = np.setdiff1d(np.arange(32), kept)
    depth = deepest_mm(drawn)
    # The grid's depths follow the brute-force ones (3 mm nodes, trilinear; near the
    # cloud's edges, where the nearest point's plane turns, they part by a few mm).
    assert np.median(np.abs(ranked.terms["cloud_depth_mm"] - depth[kept])) < 0.5
    assert depth[kept].mean() < depth[left_out].mean() - 1.0, (depth[kept], depth[left_out])
    np.testing.assert_array_equal(
        generate(model, pts, CAPTIONS[0], 8, oversample=1.0, **kw).q_grasp, raw.q_grasp
    )
    for bad in (0.5, float("nan"), 65.0):
        with pytest.raises(GenerationError, match="oversample must be a number in"):
            generate(model, pts, CAPTIONS[0], 8, oversample=bad)
    # Its pictures come best first, titled with the fit (a generated set has no energy).
    (picture,) = show_grasps(ranked, tmp_path, top_k=1, obj=obj)
    assert picture.name == "grasp_00.png" and picture.stat().st_size > 0
    # With a table, a hand below its plane is as deep as its lowest point.
    table = float(np.median(pts[:, 2]))
    on_table = generate(model, pts, CAPTIONS[0], 8, oversample=4, table_height=table, **kw)
    under = 1000.0 * (table - hand_surface(on_table)[:, :, 2].min(axis=1))
    assert under.max() > 1.0  # the table cuts through some of the kept hands
    assert np.all(on_table.terms["cloud_depth_mm"] >= under - 1e-3)
    # One camera view: without the camera its unseen side reads as inside the object,
    # and a warning says so; with it, the unseen side is unknown.
    view = partial_views(np.asarray(obj.points), nrm, n_views=1)[0]
    camera = view_camera(np.asarray(obj.points), 0, n_views=1)
    one_view = np.asarray(obj.points)[view], nrm[view]
    for extra in ({"oversample": 2}, {"guidance": 1.0}):
        with pytest.warns(UserWarning, match="it looks like one view of the object"):
            generate(model, one_view[0], CAPTIONS[0], 4, normals=one_view[1], steps=2, **extra)
    kw = dict(normals=one_view[1], seed=2, steps=8, oversample=4)
    with pytest.warns(UserWarning, match="it looks like one view of the object"):
        closed = generate(model, one_view[0], CAPTIONS[0], 8, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seen = generate(model, one_view[0], CAPTIONS[0], 8, camera=camera, **kw)
        guided = generate(model, one_view[0], CAPTIONS[0], 8, camera=camera, guidance=1.0, **kw)
    assert not [w for w in caught if "one view" in str(w.message)]
    for g in (seen, guided):
        assert np.all(np.isfinite(g.root_pos)) and np.all(np.isfinite(g.terms["cloud_depth_mm"]))
    # The same draws, read another way (the reading itself: test_hand_depth.py).
    assert not np.array_equal(seen.terms["cloud_depth_mm"], closed.terms["cloud_depth_mm"])
    with pytest.warns(UserWarning, match="it looks like a closed surface, not one camera view"):
        generate(model, pts, CAPTIONS[0], 4, normals=nrm, camera=camera, steps=2, oversample=2)
    for bad in ([0.0, 0.0], [np.nan, 0.0, 1.0]):
        with pytest.raises(GenerationError, match="camera must be a finite position"):
            generate(model, one_view[0], CAPTIONS[0], 4, normals=one_view[1], camera=bad)


def test_bad_sampling_input_is_a_clear_error(trained):
    model = GraspGenerator.load(trained[1].run)
    pts = np.asarray(make_object("bottle", 0).points)
    with pytest.raises(GenerationError, match="non-empty"):
        generate(model, np.zeros((0, 3)), CAPTIONS[0])
    nan = pts.copy()
    nan[5] = np.nan
    with pytest.raises(GenerationError, match="NaN"):
        generate(model, nan, CAPTIONS[0])
    with pytest.raises(GenerationError, match="empty"):
        generate(model, pts, "   ")
    with pytest.raises(GenerationError, match="no words"):
        generate(model, pts, "?!")
    with pytest.raises(GenerationError, match="num"):
        generate(model, pts, CAPTIONS[0], num=0)
    with pytest.raises(TrainingError, match="no training run"):
        GraspGenerator.load(trained[1].run / "missing")


def test_estimated_normals_point_outwards():
    obj = make_object("bottle", 0)
    pts, nrm = np.asarray(obj.points), np.asarray(obj.normals)
    est = estimate_normals(pts)
    assert np.all(np.isfinite(est))
    assert np.median(np.sum(est * nrm, axis=1)) > 0.9
    # One view of a bowl: away from the centroid is inwards in its hollow; towards the
    # camera is outwards everywhere the camera sees.
    bowl = make_object("bowl", 0)
    pts, nrm = np.asarray(bowl.points), np.asarray(bowl.normals)
    view = partial_views(pts, nrm, n_views=8)[2]
    camera = view_camera(pts, 2, n_views=8)
    toward = estimate_normals(pts[view], camera=camera)
    away = estimate_normals(pts[view])
    assert np.mean(np.sum(toward * nrm[view], axis=1) > 0) > 0.95
    assert np.mean(np.sum(away * nrm[view], axis=1) > 0) < 0.6


def test_samples_are_closed_like_the_training_grasps(trained, shadow, tmp_path):
    model = GraspGenerator.load(trained[1].run)
    assert model.stage_settings == STAGES == GraspDataset(trained[0]).stage_settings
    pts = np.asarray(make_object("bottle", 0).points)
    g = generate(model, pts, CAPTIONS[0], 8, seed=1, steps=2)
    expected = grasp_stages(shadow, g.root_pos, g.root_quat, g.q_grasp, **STAGES)
    for name in ("q_pregrasp", "q_squeeze", "root_pos_squeeze"):
        np.testing.assert_array_equal(getattr(g, name), getattr(expected, name))
    back_off = np.abs(g.q_grasp - g.q_pregrasp).max()
    assert 0.05 < back_off <= STAGES["pregrasp_rad"] + 1e-9  # not the 0.05 rad default
    wrist = np.linalg.norm(g.root_pos_squeeze - g.root_pos, axis=1)
    np.testing.assert_allclose(wrist, STAGES["wrist_squeeze"], rtol=1e-6)
    # The run records the dataset's whole synthesis config (refinement energies too).
    assert model.synthesis == SynthesisConfig(**STAGES) == GraspDataset(trained[0]).synthesis_config
    # Earlier runs: one that recorded only the closing ("stages") closes the same way;
    # one that recorded neither closes with grasp_stages' defaults.
    old = shutil.copytree(trained[1].run, tmp_path / "old_run")
    info = json.loads((old / "run.json").read_text())
    info["stages"] = STAGES
    del info["synthesis"]
    (old / "run.json").write_text(json.dumps(info))
    assert GraspGenerator.load(old).synthesis == model.synthesis
    del info["stages"]
    (old / "run.json").write_text(json.dumps(info))
    g_old = generate(GraspGenerator.load(old), pts, CAPTIONS[0], 8, seed=1, steps=2)
    np.testing.assert_array_equal(g_old.q_grasp, g.q_grasp)
    default = grasp_stages(shadow, g.root_pos, g.root_quat, g.q_grasp)
    np.testing.assert_array_equal(g_old.q_pregrasp, default.q_pregrasp)
    # A tampered run file is a clear error naming the file and the setting.
    info["synthesis"] = {"pregrasp": 0.1}
    (old / "run.json").write_text(json.dumps(info))
    with pytest.raises(TrainingError) as err:
        GraspGenerator.load(old)
    assert str(err.value).endswith("run.json: synthesis settings: unknown setting(s) 'pregrasp'")
    # ... and so is one in a dataset's manifest, before training writes anything.
    data = shutil.copytree(trained[0], tmp_path / "bad_dataset")
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["config"]["synthesis"]["weights"] = {"pen": -1.0}
    (data / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=r"manifest.json: invalid EnergyWeights: pen = -1.0"):
        train(data, tmp_path / "bad_run", TINY, progress=False)
    assert not (tmp_path / "bad_run").exists()


def test_opened_samples_back_each_closing_joint_off_by_the_opening(trained, shadow):
    model = GraspGenerator.load(trained[1].run)
    pts = np.asarray(make_object("bottle", 0).points)
    sampled = generate(model, pts, CAPTIONS[0], 8, seed=2, steps=2)
    opened = generate(model, pts, CAPTIONS[0], 8, seed=2, steps=2, open_by=0.04)
    np.testing.assert_array_equal(opened.root_pos, sampled.root_pos)
    np.testing.assert_array_equal(opened.root_quat, sampled.root_quat)
    open_q = np.asarray(shadow.init_q("open"))
    closing = np.abs(sampled.q_grasp - open_q) > 0.05
    assert closing.any() and not closing.all()
    # Closing joints move 0.04 towards the open pose, or to it where they were nearer;
    # the others stay. No joint ends farther from the open pose than it was.
    moved = np.abs(sampled.q_grasp - opened.q_grasp)
    expected = np.minimum(np.abs(sampled.q_grasp - open_q), 0.04)
    np.testing.assert_allclose(moved[closing], expected[closing], atol=1e-9)
    assert np.all(moved[~closing] == 0)
    assert np.all(np.abs(opened.q_grasp - open_q) <= np.abs(sampled.q_grasp - open_q) + 1e-12)
    # Then closed like any grasp: the pregrasp and squeeze follow the opened joints.
    stages = grasp_stages(shadow, opened.root_pos, opened.root_quat, opened.q_grasp, **STAGES)
    np.testing.assert_array_equal(opened.q_squeeze, stages.q_squeeze)
    # Opened all the way, a closing joint sits at the open pose (within the limits).
    wide = generate(model, pts, CAPTIONS[0], 8, seed=2, steps=2, open_by=10.0)
    lo, hi = np.asarray(shadow.q_range).T
    np.testing.assert_allclose(
        wide.q_grasp[closing], np.broadcast_to(np.clip(open_q, lo, hi), closing.shape)[closing]
    )
    with pytest.raises(GenerationError, match=r"open_by must be a finite number >= 0"):
        generate(model, pts, CAPTIONS[0], 8, open_by=-0.1)


def test_samples_opened_to_clear_the_cloud_are_the_opened_samples_backed_out_of_it(trained):
    model = GraspGenerator.load(trained[1].run)
    obj = make_object("bottle", 0)
    pts, nrm = np.asarray(obj.points), np.asarray(obj.normals)
    kw = {"normals": nrm, "seed": 2, "steps": 2, "open_by": 0.04}
    opened = generate(model, pts, CAPTIONS[0], 8, **kw)
    cleared = generate(model, pts, CAPTIONS[0], 8, open_to_clear=True, **kw)
    # `open_to_clear` on the opened samples, against the grid of the same cloud.
    grid = jax.tree.map(jnp.asarray, cloud_sdf(pts, nrm).bucketed())
    pos, q, back, opening = open_to_clear(
        model.hand, grid, opened.root_pos, opened.root_quat, opened.q_grasp
    )
    assert back.max() > 0 or opening.max() > 0  # some hand lay in the cloud
    np.testing.assert_array_equal(cleared.root_pos, pos)
    np.testing.assert_array_equal(cleared.root_quat, opened.root_quat)
    np.testing.assert_array_equal(cleared.q_grasp, q)
    np.testing.assert_array_equal(cleared.terms["palm_back_mm"], 1000.0 * back)
    np.testing.assert_array_equal(cleared.terms["finger_open_rad"], opening.mean(axis=1))
    # Closed like any grasp, from where it now is.
    stages = grasp_stages(model.hand, pos, cleared.root_quat, q, **model.stage_settings)
    np.testing.assert_array_equal(cleared.q_pregrasp, stages.q_pregrasp)
    np.testing.assert_array_equal(cleared.root_pos_squeeze, stages.root_pos_squeeze)
    # Before `oversample`'s choice: the ranked set carries both records of its grasps.
    ranked = generate(model, pts, CAPTIONS[0], 4, oversample=2, open_to_clear=True, **kw)
    records = {"palm_back_mm", "finger_open_rad", "cloud_depth_mm", "cloud_gap_mm"}
    assert set(ranked.terms) == records
    assert all(v.shape == (4,) for v in ranked.terms.values())
    with pytest.raises(GenerationError, match=r"open_to_clear must be True or False \(got 1\)"):
        generate(model, pts, CAPTIONS[0], 8, open_to_clear=1)


def test_opening_is_chosen_on_the_selection_split_by_raw_suc(trained, tmp_path):
    from jaxgrasp.cli import main as cli_main

    model = GraspGenerator.load(trained[1].run)
    config = EvalConfig(num=2, sample_steps=2, refine_steps=3, temperature=0.5)
    choice = choose_open_by(
        model, ["procedural:bottle:1"], [0.06, 0.0, 0.06], config, progress=False
    )
    # Each candidate once, smallest first, at config's temperature, raw samples only.
    assert [c["open_by"] for c in choice["candidates"]] == [0.0, 0.06]
    best = max(c["suc"] for c in choice["candidates"])
    assert choice["open_by"] == next(c["open_by"] for c in choice["candidates"] if c["suc"] == best)
    opened = evaluate(
        model,
        ["procedural:bottle:1"],
        EvalConfig(num=2, sample_steps=2, refine_steps=0, temperature=0.5, open_by=0.06),
        progress=False,
    )
    assert choice["candidates"][1]["suc"] == opened["rows"][0]["suc"]
    assert choice["candidates"][1]["diversity"] == opened["rows"][0]["diversity"]
    with pytest.raises(ValueError, match=r"open_by = -0.1 \(must be"):
        choose_open_by(model, ["procedural:bottle:1"], [-0.1], progress=False)
    # The command: both choices on the selection split, each recorded.
    out = tmp_path / "eval.json"
    bottle = ["--objects", "procedural:bottle:1", "--num", "2", "--refine-steps", "0"]
    with pytest.raises(SystemExit):  # candidates without a selection split
        cli_main(["evaluate", str(trained[1].run), *bottle, "--choose-open-by", "0", "0.04"])
    cli_main(
        ["evaluate", str(trained[1].run), *bottle, "--json", str(out)]
        + ["--choose-temperature", "1", "0.5", "--choose-open-by", "0", "0.04"]
        + ["--choose-objects", "procedural:bottle:2", "--open-to-clear"]
    )
    result = json.loads(out.read_text())
    assert result["config"]["open_to_clear"] is True
    assert [c["open_by"] for c in result["open_by_choice"]["candidates"]] == [0.0, 0.04]
    assert result["config"]["open_by"] == result["open_by_choice"]["open_by"]
    assert result["config"]["temperature"] == result["temperature_choice"]["temperature"]


def test_run_records_whether_the_objects_rested_on_a_table(trained, tmp_path):
    """run.json carries the dataset's `tabletop` (the evaluation puts its objects on a
    table when it is set); runs that did not record it load as floating objects."""
    info = json.loads((trained[1].run / "run.json").read_text())
    assert info["tabletop"] is False and GraspDataset(trained[0]).tabletop is False
    assert GraspGenerator.load(trained[1].run).tabletop is False
    run = shutil.copytree(trained[1].run, tmp_path / "run")

    def load_with(**changes):
        (run / "run.json").write_text(json.dumps({**info, **changes}))
        return GraspGenerator.load(run)

    assert load_with(tabletop=True).tabletop is True
    with pytest.raises(TrainingError, match=r"run.json: tabletop must be true or false, got 'yes'"):
        load_with(tabletop="yes")
    del info["tabletop"]
    assert load_with().tabletop is False
    data = shutil.copytree(trained[0], tmp_path / "dataset")
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["config"]["tabletop"] = True
    (data / "manifest.json").write_text(json.dumps(manifest))
    assert GraspDataset(data).tabletop is True
    manifest["config"]["tabletop"] = 1
    (data / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=r"manifest.json: tabletop must be true or false, got 1"):
        train(data, tmp_path / "bad_run", TINY, progress=False)
    assert not (tmp_path / "bad_run").exists()


def test_samples_of_a_tabletop_model_record_the_table(trained, tmp_path, capsys):
    """A tabletop model's samples carry the table their object rests on (`jaxgrasp
    validate` adds it): `jaxgrasp sample` takes the mesh's lowest point, `generate` the
    cloud's unless told; a floating model's samples have none."""
    from jaxgrasp.cli import main as cli_main
    from jaxgrasp.synthesis import resting_height

    obj = make_object("bottle", 0)
    pts = np.asarray(obj.points)
    floating = GraspGenerator.load(trained[1].run)
    on_table = dataclasses.replace(floating, tabletop=True)
    # 8 grasps in 2 midpoint steps: the sampler test_samples_are_closed_like_... compiled
    assert generate(floating, pts, CAPTIONS[0], 8, steps=2).table_height is None
    assert generate(on_table, pts, CAPTIONS[0], 8, steps=2).table_height == pts[:, 2].min()
    assert generate(on_table, pts, CAPTIONS[0], 8, steps=2, table_height=-0.2).table_height == -0.2
    with pytest.raises(GenerationError, match=r"table_height must be a finite number \(got nan\)"):
        generate(on_table, pts, CAPTIONS[0], 8, steps=2, table_height=float("nan"))
    run = shutil.copytree(trained[1].run, tmp_path / "run")
    info = json.loads((run / "run.json").read_text())
    for tabletop, table in ((False, None), (True, resting_height(obj))):
        (run / "run.json").write_text(json.dumps({**info, "tabletop": tabletop}))
        out = tmp_path / f"tabletop_{tabletop}.npz"
        args = ["--object", REF, "--instruction", CAPTIONS[0], "--out", str(out)]
        cli_main(["sample", str(run), *args, "--num", "8", "--steps", "2"])
        saved = GraspSet.load(out)
        assert saved.count == 8 and saved.table_height == table
        assert ("on a table" in capsys.readouterr().out) is tabletop
    # From one camera view (the choice and the clearing told where the camera was), and a
    # view that is not.
    out = tmp_path / "view.npz"
    args = ["--object", REF, "--instruction", CAPTIONS[0], "--out", str(out), "--num", "8"]
    view = ["--view", "2", "--oversample", "2", "--open-to-clear"]
    cli_main(["sample", str(run), *args, "--steps", "2", *view])
    assert {"cloud_depth_mm", "palm_back_mm"} <= set(GraspSet.load(out).terms)
    with pytest.raises(SystemExit):
        cli_main(["sample", str(run), *args, "--view", "8"])
    assert "--view takes 0-7 (got 8)" in capsys.readouterr().err
    # --no-average: the checkpoint step's own weights, not their moving average.
    args = ["--object", REF, "--instruction", CAPTIONS[0], "--num", "8", "--steps", "2"]
    cli_main(["sample", str(run), *args, "--out", str(tmp_path / "own.npz"), "--no-average"])
    cli_main(["sample", str(run), *args, "--out", str(tmp_path / "average.npz")])
    own = GraspSet.load(tmp_path / "own.npz").root_pos
    mine = generate(
        GraspGenerator.load(run, average=False),
        pts,
        CAPTIONS[0],
        8,
        steps=2,
        normals=np.asarray(obj.normals),
    )
    np.testing.assert_allclose(own, mine.root_pos, atol=1e-6)
    assert not np.allclose(own, GraspSet.load(tmp_path / "average.npz").root_pos, atol=1e-4)


def test_training_settings_mismatch_and_bad_config(trained):
    data, result = trained
    with pytest.raises(TrainingError, match="other settings"):
        train(data, result.run, TrainConfig(steps=5), progress=False)
    # Bad settings fail where they are made, every bad field named in one line.
    cases = {
        "batch_size = 10 (must be an integer > 0 and a multiple of grasps_per_cloud (4))": dict(
            batch_size=10, grasps_per_cloud=4
        ),
        "steps = 0 (must be an integer > 0); lr = nan": dict(steps=0, lr=float("nan")),
        "grasps_per_cloud = 0 (must be an integer > 0)": dict(grasps_per_cloud=0),
        "partial_fraction = 1.5 (must be a number in [0, 1])": dict(partial_fraction=1.5),
        "max_minutes = -1 (must be None or a number > 0)": dict(max_minutes=-1),
        "ema_decay = 1.0 (must be a number in [0, 1))": dict(ema_decay=1.0),
        "t_power = 0 (must be a finite number > 0)": dict(t_power=0),
        "yaw_augment = 200 (must be a number of degrees in [0, 180])": dict(yaw_augment=200),
    }
    for message, kwargs in cases.items():
        with pytest.raises(TrainingError) as err:
            TrainConfig(**kwargs)
        assert message in str(err.value), str(err.value)


def test_killed_training_resumes_to_the_same_weights(trained, tmp_path):
    data, result = trained
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / "tests")!r})
        from test_model import TINY
        from jaxgrasp.training import train
        train({str(data)!r}, sys.argv[1], TINY, progress=False)
        """
    )
    run = tmp_path / "run"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen([sys.executable, "-c", script, str(run)], env=env)
    first = run / "checkpoints" / str(TINY.checkpoint_every)
    deadline = time.time() + 300
    while not first.is_dir() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert first.is_dir(), "the training subprocess wrote no checkpoint"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = train(data, run, TINY, progress=False)
    assert resumed.steps_run < TINY.steps  # it did resume
    for a, b in zip(
        jax.tree.leaves((result.params, result.ema)),
        jax.tree.leaves((resumed.params, resumed.ema)),
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
    assert resumed.losses == result.losses


def test_evaluate_reports_metrics_in_range(trained, shadow):
    model = GraspGenerator.load(trained[1].run)
    assert model.train_objects == (REF,)  # the split defaults to these (from run.json)
    res = evaluate(
        model,
        ["procedural:bottle:1"],
        EvalConfig(num=2, refine_steps=2, sample_steps=2),
        progress=False,
    )
    assert [r["variant"] for r in res["rows"]] == ["raw", "refined"]
    assert all(r["split"] == "seen category" for r in res["rows"])
    for r in res["rows"]:
        for m in ("suc", "held", "pta", "pga", "valid", "contact_acc", "contact_acc_closed"):
            assert 0.0 <= r[m] <= 1.0
        assert r["suc"] <= r["held"]  # Suc is held with the penetration limits
        assert r["targets"] == 3 and r["grasps"] == 6
    assert res["tabletop"] is False
    assert all("table_ok" not in t[v] for t in res["targets"] for v in ("raw", "refined"))
    # The instruction asks for the mode's contacts as the dataset captions them, the
    # palm included (session 42: without it, the caption of grasps whose palm is off).
    body = next(t for t in res["targets"] if t["part"] == "body")
    assert body["instruction"] == (
        "Grasp the body of the bottle object, with contacts on thumb, index, middle, ring, "
        "little, palm"
    )
    # Validating each target while the next is sampled (the default) changes nothing.
    one_at_a_time = evaluate(
        model,
        ["procedural:bottle:1"],
        EvalConfig(num=2, refine_steps=2, sample_steps=2),
        progress=False,
        overlap=False,
    )
    assert one_at_a_time["targets"] == res["targets"]
    # With guidance, the same samples drawn again with it are reported beside them;
    # with oversampling, the best-placed num of k x num such samples.
    guided = evaluate(
        model,
        ["procedural:bottle:1"],
        EvalConfig(num=2, refine_steps=0, sample_steps=2, guidance=1.0, oversample=3),
        progress=False,
    )
    assert [r["variant"] for r in guided["rows"]] == ["raw", "guided", "ranked"]
    assert [t["raw"] for t in guided["targets"]] == [t["raw"] for t in res["targets"]]
    assert all(t[v]["n"] == 2 for t in guided["targets"] for v in ("guided", "ranked"))
    with pytest.raises(ValueError, match=r"oversample = 0.0 \(must be a number in"):
        EvalConfig(oversample=0.0)
    # A model of a tabletop dataset: the objects rest on a table, the refinement stays
    # above it, and the validation checks it (its pass rate is reported).
    on_table = evaluate(
        dataclasses.replace(model, tabletop=True),
        ["procedural:bottle:1"],
        EvalConfig(num=2, refine_steps=2, sample_steps=2),
        progress=False,
    )
    assert on_table["tabletop"] is True
    for t in on_table["targets"]:
        for v in ("raw", "refined"):
            assert 0.0 <= t[v]["table_ok"] <= 1.0 and t[v]["suc"] <= t[v]["table_ok"]
    # Refining twice the samples keeps `num` per target (the lowest energy part-way).
    chosen = evaluate(
        model,
        ["procedural:bottle:1"],
        EvalConfig(num=2, refine_steps=4, sample_steps=2, refine_oversample=2),
        progress=False,
    )
    assert [r["grasps"] for r in chosen["rows"]] == [6, 6]
    with pytest.raises(ValueError, match=r"refine_oversample = 0.5 \(must be a number in"):
        EvalConfig(refine_oversample=0.5)
    # Sampling temperatures are checked before any target is sampled.
    with pytest.raises(ValueError, match=r"temperature = -1.0 .*anchor_temperature = nan"):
        EvalConfig(temperature=-1.0, anchor_temperature=float("nan"))
    same = np.zeros((10, shadow.n_q))
    assert joint_entropy(shadow, same) == 0.0


def test_temperature_is_chosen_on_the_selection_split_by_raw_suc(trained):
    model = GraspGenerator.load(trained[1].run)
    config = EvalConfig(num=2, sample_steps=2, refine_steps=3, guidance=1.0, oversample=2)
    choice = choose_temperature(
        model, ["procedural:bottle:1"], [0.5, 1.0, 0.5], config, progress=False
    )
    # Each candidate once, highest first; raw samples only, whatever config asked for.
    assert [c["temperature"] for c in choice["candidates"]] == [1.0, 0.5]
    best = max(c["suc"] for c in choice["candidates"])
    assert choice["temperature"] == next(
        c["temperature"] for c in choice["candidates"] if c["suc"] == best
    )
    low = evaluate(
        model,
        ["procedural:bottle:1"],
        EvalConfig(num=2, sample_steps=2, refine_steps=0, temperature=0.5),
        progress=False,
    )
    assert [r["variant"] for r in low["rows"]] == ["raw"]
    assert choice["candidates"][1]["suc"] == low["rows"][0]["suc"]
    assert choice["candidates"][1]["diversity"] == low["rows"][0]["diversity"]
    with pytest.raises(ValueError, match="at least one candidate"):
        choose_temperature(model, ["procedural:bottle:1"], [], progress=False)
    with pytest.raises(ValueError, match=r"temperature = -0.5 \(must be"):
        choose_temperature(model, ["procedural:bottle:1"], [-0.5], progress=False)


def test_evaluate_command_chooses_the_temperature_on_its_selection_split(trained, tmp_path):
    from jaxgrasp.cli import main as cli_main

    run = str(trained[1].run)
    out = tmp_path / "eval.json"
    bottle = ["--objects", "procedural:bottle:1", "--num", "2", "--refine-steps", "0"]
    with pytest.raises(SystemExit):  # candidates without a selection split
        cli_main(["evaluate", run, *bottle, "--choose-temperature", "1", "0.5"])
    cli_main(
        ["evaluate", run, *bottle, "--json", str(out), "--choose-temperature", "1", "0.5"]
        + ["--choose-objects", "procedural:bottle:2"]
    )
    result = json.loads(out.read_text())
    choice = result["temperature_choice"]
    assert choice["objects"] == ["procedural:bottle:2"]
    assert [c["temperature"] for c in choice["candidates"]] == [1.0, 0.5]
    assert result["config"]["temperature"] == choice["temperature"]
