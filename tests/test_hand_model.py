"""Loader generality (toy MJCF with equality couplings, URDF), geometry, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from conftest import random_q, random_quat

from kinematics import (
    BOX,
    CAPSULE,
    SPHERE,
    ContactSpec,
    HandModel,
    HandModelError,
    forward_kinematics,
    full_joint_angles,
    load_hand,
    points_to_world,
)
from kinematics.geometry import primitive_sdf, primitive_sdf_np

TOY_MJCF = """
<mujoco>
  <compiler angle="radian"/>
  <worldbody>
    <body name="base" pos="0.1 0.2 0.3" quat="0.9 0.1 0.3 0.2">
      <geom type="box" size="0.03 0.01 0.04"/>
      <body name="f1a" pos="0.02 0 0.04">
        <joint name="j1a" type="hinge" axis="1 0 0" range="-0.2 1.5" ref="0.1" pos="0 0 0.005"/>
        <geom type="capsule" fromto="0 0 0 0 0 0.04" size="0.008"/>
        <body name="f1b" pos="0 0 0.04" euler="0.1 0.2 0.3">
          <joint name="j1b" type="hinge" axis="0.6 0.8 0" range="0 1.5"/>
          <joint name="j1s" type="slide" axis="0 0 1" range="-0.01 0.01"/>
          <geom type="cylinder" size="0.007 0.015" pos="0 0 0.015"/>
          <body name="f1c" pos="0 0 0.03">
            <joint name="j1c" type="hinge" axis="1 0 0" range="0 1.2"/>
            <geom type="sphere" size="0.008" pos="0 0 0.01"/>
          </body>
        </body>
      </body>
      <body name="f2a" pos="-0.02 0 0.04">
        <joint name="j2a" type="hinge" axis="1 0 0" range="0 1.5"/>
        <geom type="ellipsoid" size="0.008 0.01 0.02" pos="0 0 0.02"/>
      </body>
    </body>
  </worldbody>
  <equality>
    <joint joint1="j1c" joint2="j1b" polycoef="0.05 0.7 0.1 0 0"/>
  </equality>
</mujoco>
"""

TOY_URDF = """<?xml version="1.0"?>
<robot name="toy">
  <link name="base">
    <inertial><mass value="0.1"/>
      <inertia ixx="1e-4" iyy="1e-4" izz="1e-4" ixy="0" ixz="0" iyz="0"/></inertial>
    <collision><geometry><box size="0.06 0.02 0.08"/></geometry></collision>
  </link>
  <link name="prox">
    <inertial><mass value="0.02"/>
      <inertia ixx="1e-5" iyy="1e-5" izz="1e-5" ixy="0" ixz="0" iyz="0"/></inertial>
    <collision><origin xyz="0 0 0.02"/>
      <geometry><cylinder radius="0.008" length="0.04"/></geometry></collision>
  </link>
  <link name="dist">
    <inertial><mass value="0.02"/>
      <inertia ixx="1e-5" iyy="1e-5" izz="1e-5" ixy="0" ixz="0" iyz="0"/></inertial>
    <collision><origin xyz="0 0 0.015"/>
      <geometry><sphere radius="0.009"/></geometry></collision>
  </link>
  <joint name="j_prox" type="revolute">
    <parent link="base"/><child link="prox"/><origin xyz="0.01 0 0.04" rpy="0.1 0.2 0.3"/>
    <axis xyz="1 0 0"/><limit lower="-0.3" upper="1.4" effort="1" velocity="1"/>
  </joint>
  <joint name="j_dist" type="revolute">
    <parent link="prox"/><child link="dist"/><origin xyz="0 0 0.04" rpy="0 0 0"/>
    <axis xyz="0 1 0"/><limit lower="0" upper="1.2" effort="1" velocity="1"/>
  </joint>
</robot>
"""


def _compare_with_mujoco(hand, model, rng, n=100, tol=1e-6):
    d = mujoco.MjData(model)
    root = model.body(hand.root_body).id
    bodies = [model.body(b).id for b in hand.body_names]
    jadr = [model.joint(j).qposadr[0] for j in hand.joint_names]
    with jax.enable_x64(True):
        for q in random_q(hand, rng, n):
            model.body_pos[root] = rng.uniform(-1, 1, 3)
            model.body_quat[root] = random_quat(rng)
            d.qpos[:] = model.qpos0
            d.qpos[jadr] = np.asarray(full_joint_angles(hand, q))
            mujoco.mj_kinematics(model, d)
            poses = forward_kinematics(hand, d.xpos[root], d.xquat[root], q)
            np.testing.assert_allclose(poses.pos, d.xpos[bodies], atol=tol)
            np.testing.assert_allclose(poses.rot, d.xmat[bodies].reshape(-1, 3, 3), atol=10 * tol)


def test_toy_mjcf_equality_coupling_hinge_slide(tmp_path):
    path = tmp_path / "toy.xml"
    path.write_text(TOY_MJCF)
    hand = HandModel.from_mjcf(path)
    assert hand.root_body == "base"
    assert hand.joint_names == ("j1a", "j1b", "j1s", "j1c", "j2a")
    assert hand.q_names == ("j1a", "j1b", "j1s", "j2a")
    assert hand.coupled_joints == ("j1c",)
    # Primitive kinds: box, capsule, cylinder -> capsule, sphere, ellipsoid -> box.
    assert hand.primitives.kind == (BOX, CAPSULE, CAPSULE, 0, BOX)
    model = mujoco.MjModel.from_xml_path(str(path))
    _compare_with_mujoco(hand, model, np.random.default_rng(0))
    # The polynomial equality holds exactly in MuJoCo (its residual is zero) ...
    d = mujoco.MjData(model)
    jadr = [model.joint(j).qposadr[0] for j in hand.joint_names]
    with jax.enable_x64(True):
        for q in random_q(hand, np.random.default_rng(1), 20):
            d.qpos[jadr] = np.asarray(full_joint_angles(hand, q))
            mujoco.mj_forward(model, d)
            eq_rows = d.efc_type == mujoco.mjtConstraint.mjCNSTR_EQUALITY
            assert eq_rows.sum() == 1
            assert abs(d.efc_pos[eq_rows][0]) < 1e-12
    # ... and the driver range was narrowed so the follower stays within [0, 1.2].
    lo, hi = np.asarray(hand.q_range[hand.q_index("j1b")])
    x = np.linspace(lo, hi, 200)
    y = 0.05 + 0.6 * x + 0.1 * x**2
    assert y.min() >= -1e-9 and y.max() <= 1.2 + 1e-9
    assert hi < 1.5  # narrowed from the joint's own 1.5


def test_urdf_hand(tmp_path):
    path = tmp_path / "toy.urdf"
    path.write_text(TOY_URDF)
    hand = HandModel.from_urdf(path, root_body="base")
    assert hand.q_names == ("j_prox", "j_dist")
    assert hand.body_names == ("base", "prox", "dist")
    # Reference: MuJoCo's own compile of the unmodified URDF, where the root link *is* the
    # world; so the root pose is the identity and the movable links must match.
    model = mujoco.MjModel.from_xml_path(str(path))
    d = mujoco.MjData(model)
    ids = [model.body(n).id for n in hand.body_names[1:]]
    jadr = [model.joint(j).qposadr[0] for j in hand.joint_names]
    with jax.enable_x64(True):
        for q in random_q(hand, np.random.default_rng(2), 100):
            d.qpos[jadr] = q
            mujoco.mj_kinematics(model, d)
            poses = forward_kinematics(hand, np.zeros(3), np.array([1.0, 0, 0, 0]), q)
            np.testing.assert_allclose(poses.pos[1:], d.xpos[ids], atol=1e-6)
            np.testing.assert_allclose(poses.rot[1:], d.xmat[ids].reshape(-1, 3, 3), atol=1e-5)


def test_surface_points_lie_on_collision_surface(shadow):
    s, p = shadow.surface, shadow.primitives
    pts, nrm = np.asarray(s.points), np.asarray(s.normals)
    n = shadow.spec.n_surface_points
    assert pts.shape == (n, 3) and nrm.shape == (n, 3)
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=1), 1.0, atol=1e-6)
    for i in range(s.count):
        same = [k for k in range(p.count) if p.body[k] == s.body[i]]
        d = [
            primitive_sdf_np(
                p.kind[k], np.asarray(p.size[k]), ((pts[i] - p.pos[k]) @ p.rot[k])[None]
            )[0]
            for k in same
        ]
        # On the union's surface: on one primitive's surface (mesh facets: <0.3 mm) and not
        # buried inside another primitive of the same link.
        assert min(abs(v) for v in d) < 3e-4
        assert min(d) > -3e-4
    # Deterministic: a rebuild gives identical samples.
    again = load_hand("shadow")
    np.testing.assert_array_equal(np.asarray(again.surface.points), pts)


@pytest.mark.parametrize("kind", [SPHERE, CAPSULE, BOX])
def test_host_primitive_distance_is_the_traced_one_in_float64(kind):
    """Hand building and the exact checks evaluate primitive distances in NumPy (no JAX
    dispatch: eager JAX compiled each small op, ~6 s per hand build); the energies trace
    the same formula with jax.numpy. The two agree, the NumPy one in float64, on points
    inside, outside, at the centre and on the axis."""
    rng = np.random.default_rng(kind)
    size = np.array([0.011, 0.023, 0.007]) if kind == BOX else np.array([0.009, 0.02, 0.0])
    pts = np.concatenate([rng.uniform(-0.04, 0.04, (500, 3)), np.zeros((1, 3)), [[0, 0, 0.01]]])
    host = primitive_sdf_np(kind, size, pts)
    assert host.dtype == np.float64 and host.shape == (len(pts),)
    with jax.enable_x64(True):
        traced = primitive_sdf(
            kind, jnp.asarray(size)[None], *(jnp.asarray(pts[:, i])[None] for i in range(3))
        )[0]
    np.testing.assert_allclose(host, np.asarray(traced), rtol=0, atol=1e-12)
    # Inside is negative: the centre lies a radius (or the smallest half extent) deep.
    assert host[-2] == pytest.approx(-(size[2] if kind == BOX else size[0]), abs=1e-6)


def test_surface_points_evenly_spread(shadow):
    """Farthest-point thinning: no two samples on a link are much closer than the spacing."""
    pts = np.asarray(shadow.surface.points)
    body = np.asarray(shadow.surface.body)
    palm = pts[body == 0]
    d = np.linalg.norm(palm[:, None] - palm[None], axis=-1) + np.eye(len(palm))
    nearest = d.min(1)
    assert nearest.min() > 0.3 * np.median(nearest)


def test_contact_candidates_on_front_faces(shadow, adroit):
    for hand in (shadow, adroit):
        c, p = hand.contacts, hand.primitives
        assert c.finger == ("thumb", "index", "middle", "ring", "little", "palm")
        for i in range(c.count):
            same = [k for k in range(p.count) if p.body[k] == c.body[i]]
            pt, n = np.asarray(c.points[i]), np.asarray(c.normals[i])
            dists = []
            for k in same:
                local = (pt - np.asarray(p.pos[k])) @ np.asarray(p.rot[k])
                dists.append(primitive_sdf_np(p.kind[k], np.asarray(p.size[k]), local[None])[0])
            assert min(abs(v) for v in dists) < 1e-3, (hand.name, c.finger[i])
            # Moving along the normal leaves the link: the normal points outwards.
            k = same[int(np.argmin(np.abs(dists)))]
            out = (pt + 2e-3 * n - np.asarray(p.pos[k])) @ np.asarray(p.rot[k])
            assert primitive_sdf_np(p.kind[k], np.asarray(p.size[k]), out[None])[0] > 1e-3


def test_finger_pads_face_the_palm_side(shadow):
    """Flexing a finger moves its tip towards the palm normal (-y of the palm frame)."""
    q0 = shadow.init_q("open")
    q1 = q0.copy()
    q1[shadow.q_index("robot0:FFJ2")] = 1.0
    ident = np.array([1.0, 0, 0, 0])
    tips = []
    for q in (q0, q1):
        poses = forward_kinematics(shadow, np.zeros(3), ident, q)
        tips.append(
            np.asarray(points_to_world(poses, shadow.contacts.body, shadow.contacts.points))
        )
    palm_normal = np.array(shadow.spec.palm.normal)
    assert (tips[1][1] - tips[0][1]) @ palm_normal > 0.02


def test_select_fingers(shadow):
    pinch = shadow.contacts.select(["thumb", "index", "middle", "palm"])
    assert pinch.finger == ("thumb", "index", "middle", "palm")
    with pytest.raises(ValueError, match="unknown finger"):
        shadow.contacts.select(["pinky"])


def test_hand_is_a_pytree_and_jits_as_argument(shadow):
    leaves = jax.tree_util.tree_leaves(shadow)
    assert all(hasattr(x, "shape") for x in leaves)
    f = jax.jit(lambda h, q: forward_kinematics(h, jnp.zeros(3), jnp.array([1.0, 0, 0, 0]), q).pos)
    out = f(shadow, jnp.zeros(shadow.n_q))
    assert out.shape == (shadow.n_bodies, 3)


# ----------------------------------------------------------------------------- bad input
def test_missing_file(tmp_path):
    with pytest.raises(HandModelError, match="hand file not found"):
        HandModel.from_mjcf(tmp_path / "nope.xml")


def test_malformed_xml(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text("<mujoco><worldbody><body name='a'>")
    with pytest.raises(HandModelError, match="could not compile the MJCF hand file"):
        HandModel.from_mjcf(path)


def test_model_without_joints(tmp_path):
    path = tmp_path / "rigid.xml"
    path.write_text(
        "<mujoco><worldbody><body name='a'><geom size='0.1'/></body></worldbody></mujoco>"
    )
    with pytest.raises(HandModelError, match="no hinge or slide joints"):
        HandModel.from_mjcf(path)


def test_unknown_root_body(tmp_path):
    path = tmp_path / "toy.xml"
    path.write_text(TOY_MJCF)
    with pytest.raises(HandModelError, match="no body named 'palm'"):
        HandModel.from_mjcf(path, root_body="palm")


def test_unknown_hand_name():
    with pytest.raises(HandModelError, match="unknown hand 'allegro'; available hands"):
        load_hand("allegro")
    # A file path is not a name: the error says how a hand file becomes a hand.
    with pytest.raises(HandModelError, match="is a file path.*HandSpec.*register_hand"):
        load_hand("hands/allegro_right.xml")


def test_bad_contact_spec(tmp_path):
    path = tmp_path / "toy.xml"
    path.write_text(TOY_MJCF)
    with pytest.raises(HandModelError, match="not a body of the hand"):
        HandModel.from_mjcf(path, contacts=(ContactSpec("index", "nope", (0, 0, 0), (0, 0, 1)),))
    with pytest.raises(HandModelError, match="zero normal"):
        HandModel.from_mjcf(path, contacts=(ContactSpec("index", "f1c", (0, 0, 0), (0, 0, 0)),))
    with pytest.raises(HandModelError, match="not one of"):
        HandModel.from_mjcf(path, contacts=(ContactSpec("toe", "f1c", (0, 0, 0), (0, 0, 1)),))


def test_unknown_joint_in_pose(shadow):
    with pytest.raises(HandModelError, match="not an independent joint"):
        shadow.q_from_dict({"robot0:FFJ0": 0.3})  # coupled, so not settable


def test_default_root_keeps_every_joint(tmp_path):
    """A single finger chain: the common ancestor carries a joint, so the root steps up."""
    path = tmp_path / "chain.xml"
    path.write_text(
        """<mujoco><compiler angle="radian"/><worldbody>
        <body name="mount"><geom type="box" size="0.02 0.02 0.02"/>
          <body name="a" pos="0 0 0.02"><joint name="ja" axis="1 0 0" range="0 1"/>
            <geom type="capsule" size="0.008 0.02" pos="0 0 0.02"/>
            <body name="b" pos="0 0 0.04"><joint name="jb" axis="1 0 0" range="0 1"/>
              <geom type="capsule" size="0.008 0.02" pos="0 0 0.02"/></body></body></body>
        </worldbody></mujoco>"""
    )
    hand = HandModel.from_mjcf(path)
    assert hand.root_body == "mount"
    assert hand.q_names == ("ja", "jb")


def test_malformed_urdf(tmp_path):
    path = tmp_path / "bad.urdf"
    path.write_text("<robot name='x'><link name='a'>")
    with pytest.raises(HandModelError, match="could not compile the URDF hand file"):
        HandModel.from_urdf(path)
