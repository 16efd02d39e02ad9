"""The validation scene: the hand from its own model file, root fixed in space, plus the
object as a free body made of convex pieces (DESIGN.md §8).

Built with `mujoco.MjSpec` from the hand's MJCF/URDF, so the physics is MuJoCo's own:
- the hand's root body (the `HandModel` root) and everything below it is kept; bodies
  above it lose their joints and geoms, and the top one becomes a mocap body, so the
  hand's root pose is set per grasp through `mocap_pos / mocap_quat`;
- the model's actuators are replaced by one position servo per independent joint
  (`HandModel.q_names`, same order); coupled joints follow through the model's own
  tendons / equalities, as in the hand's model;
- bodies outside the hand (floors, targets, tables of the source scene) are removed;
- the object is a free body at the origin (object frame = world frame), welded there by
  an equality constraint that the protocol switches off after closing, whose geoms are
  CoACD convex pieces of the object mesh, with total mass `config.object_mass`;
- optionally a table plane.
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

from kinematics import HandModel
from kinematics.hand_model import hand_file_spec
from sim._decompose import decompose
from sim.config import SimConfig

_OBJECT_BODY = "jaxgrasp_object"
OBJECT_WELD = "jaxgrasp_object_hold"
_TABLE_GEOM = "jaxgrasp_table"


class SceneError(ValueError):
    """The hand's model file cannot be turned into a validation scene."""


@dataclasses.dataclass(frozen=True)
class Scene:
    """A compiled validation scene and the indices needed to drive and read it.

    Fields:
        model: the compiled MuJoCo model.
        config: the physics / protocol parameters it was built with.
        joint_qpos: qpos address of every `HandModel` joint (coupled ones too). Shape: (n_joints,).
        object_qpos: qpos address of the object's free joint (7 values follow).
        object_body: body id of the object.
        object_com: the object's centre of mass in its own frame. Shape: (3,).
        mocap: mocap index that carries the hand.
        root_in_mocap: pose (pos (3,), rot (3, 3)) of the hand root in the mocap frame.
        object_geoms: geom ids of the object's convex pieces. Shape: (n_pieces,).
        object_weld: equality id of the weld that holds the object while the hand closes.
        hand_geom_body: `HandModel` body index of each hand collision geom, by geom id
            (-1: not a hand collision geom). Shape: (n_geoms,).
        table_height: height of the table plane z = table_height (None: no table).
    """

    model: mujoco.MjModel
    config: SimConfig
    joint_qpos: np.ndarray
    object_qpos: int
    object_body: int
    object_com: np.ndarray
    mocap: int
    root_in_mocap: tuple[np.ndarray, np.ndarray]
    object_geoms: np.ndarray
    object_weld: int
    hand_geom_body: np.ndarray
    table_height: float | None = None

    def mocap_pose(self, root_pos, root_quat) -> tuple[np.ndarray, np.ndarray]:
        """Mocap (pos (B, 3), quat (B, 4) wxyz) that puts the hand root at the given poses."""
        root_pos = np.atleast_2d(np.asarray(root_pos, dtype=np.float64))
        root_quat = np.atleast_2d(np.asarray(root_quat, dtype=np.float64))
        off_p, off_r = self.root_in_mocap
        pos = np.empty_like(root_pos)
        quat = np.empty_like(root_quat)
        off_inv = np.empty(4)
        mujoco.mju_mat2Quat(off_inv, off_r.T.reshape(-1).copy())
        for i in range(len(root_pos)):
            q = root_quat[i] / max(np.linalg.norm(root_quat[i]), 1e-12)
            mujoco.mju_mulQuat(quat[i], q, off_inv)  # mocap rot = root rot * offset^-1
            r = np.empty(9)
            mujoco.mju_quat2Mat(r, quat[i])
            pos[i] = root_pos[i] - r.reshape(3, 3) @ off_p
        return pos, quat


def build_scene(
    hand: HandModel,
    obj,
    config: SimConfig | None = None,
    *,
    table_height: float | None = None,
) -> Scene:
    """Scene for `hand` grasping `obj` (a `jaxgrasp.PreparedObject`); see module doc.

    `table_height` adds a horizontal plane z = table_height (object frame) that the hand
    must not push through.
    """
    config = config or SimConfig()
    if hand.source.startswith("<"):
        raise SceneError(
            f"hand '{hand.name}' was built from an in-memory MjModel; build it from its "
            "MJCF/URDF file (HandModel.from_mjcf / from_urdf) to validate in simulation"
        )
    spec = hand_file_spec(hand.source)
    _keep_hand_only(spec, hand)
    _add_servos(spec, hand, config)
    _add_object(spec, obj, config)
    if table_height is not None:
        spec.worldbody.add_geom(
            name=_TABLE_GEOM,
            type=mujoco.mjtGeom.mjGEOM_PLANE,
            size=[1.0, 1.0, 0.01],
            pos=[0.0, 0.0, float(table_height)],
            friction=[config.friction, config.torsional_friction, config.rolling_friction],
            condim=config.condim,
        )
    _set_options(spec, config)
    try:
        model = spec.compile()
    except Exception as err:
        raise SceneError(f"MuJoCo could not compile the validation scene: {err}") from None
    scene = _index(model, hand, config)
    if table_height is None:
        return scene
    return dataclasses.replace(scene, table_height=float(table_height))


def _keep_hand_only(spec: mujoco.MjSpec, hand: HandModel) -> None:
    root = spec.body(hand.root_body)
    if root is None:
        raise SceneError(f"{hand.source} has no body '{hand.root_body}'")
    ancestors = []
    b = root.parent
    while b is not None and b.name != spec.worldbody.name:
        ancestors.append(b)
        b = b.parent
    keep = {root.name} | {a.name for a in ancestors}
    keep |= {d.name for d in root.find_all(mujoco.mjtObj.mjOBJ_BODY)}
    # Everything that refers to a joint or body we drop must go first.
    for act in list(spec.actuators):
        spec.delete(act)
    for sensor in list(spec.sensors):
        spec.delete(sensor)
    for key in list(spec.keys):
        spec.delete(key)
    dropped = [b for b in spec.bodies if b.name not in keep and b.name != spec.worldbody.name]
    dropped_bodies = {b.name for b in dropped}
    dropped_joints = {j.name for a in ancestors for j in a.joints} | {j.name for j in root.joints}
    for body in dropped:
        dropped_joints |= {j.name for j in body.find_all(mujoco.mjtObj.mjOBJ_JOINT)}
    for tendon in list(spec.tendons):
        joints = {w.target.name for w in tendon.path if w.type == mujoco.mjtWrap.mjWRAP_JOINT}
        if joints & dropped_joints:
            spec.delete(tendon)
    for eq in list(spec.equalities):
        if {eq.name1, eq.name2} & (dropped_joints | dropped_bodies):
            spec.delete(eq)
    for body in list(spec.worldbody.bodies):
        if body.name not in keep:
            spec.delete(body)
    for geom in list(spec.worldbody.geoms):
        spec.delete(geom)
    for body in [root, *ancestors]:
        for joint in list(body.joints):
            spec.delete(joint)
    for body in ancestors:
        for geom in list(body.geoms):
            spec.delete(geom)
    top = ancestors[-1] if ancestors else root
    top.mocap = True


def _add_servos(spec: mujoco.MjSpec, hand: HandModel, config: SimConfig) -> None:
    for name in hand.q_names:
        joint = spec.joint(name)
        act = spec.add_actuator(name=f"jaxgrasp_servo:{name}", target=name)
        act.trntype = mujoco.mjtTrn.mjTRN_JOINT
        act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
        act.gainprm[0] = config.kp
        act.biasprm[:3] = [0.0, -config.kp, -config.kv]
        if joint.limited != mujoco.mjtLimited.mjLIMITED_FALSE:
            act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
            act.ctrlrange = list(joint.range)


def _add_object(spec: mujoco.MjSpec, obj, config: SimConfig) -> None:
    body = spec.worldbody.add_body(name=_OBJECT_BODY)
    body.add_freejoint(name=f"{_OBJECT_BODY}:free")
    # Holds the object in place while the hand closes; released for the disturbance.
    spec.add_equality(
        name=OBJECT_WELD,
        type=mujoco.mjtEq.mjEQ_WELD,
        objtype=mujoco.mjtObj.mjOBJ_BODY,
        name1=_OBJECT_BODY,
    )
    pieces = decompose(obj.trimesh(), config.coacd_threshold, config.coacd_max_hulls)
    volume = sum(_hull_volume(v, f) for v, f in pieces)
    density = config.object_mass / max(volume, 1e-12)
    for i, (v, f) in enumerate(pieces):
        mesh_name = f"{_OBJECT_BODY}:hull{i}"
        spec.add_mesh(
            name=mesh_name, uservert=v.reshape(-1).tolist(), userface=f.reshape(-1).tolist()
        )
        body.add_geom(
            name=f"{_OBJECT_BODY}:{i}",
            type=mujoco.mjtGeom.mjGEOM_MESH,
            meshname=mesh_name,
            density=density,
            friction=[config.friction, config.torsional_friction, config.rolling_friction],
            condim=config.condim,
            contype=1,
            conaffinity=1,
        )


def _hull_volume(v: np.ndarray, f: np.ndarray) -> float:
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return float(abs(np.einsum("ij,ij->i", a, np.cross(b, c)).sum()) / 6.0)


def _set_options(spec: mujoco.MjSpec, config: SimConfig) -> None:
    opt = spec.option
    opt.timestep = config.timestep
    opt.gravity = [0.0, 0.0, 0.0]
    opt.cone = (
        mujoco.mjtCone.mjCONE_ELLIPTIC
        if config.cone == "elliptic"
        else mujoco.mjtCone.mjCONE_PYRAMIDAL
    )
    opt.impratio = config.impratio
    opt.integrator = {
        "euler": mujoco.mjtIntegrator.mjINT_EULER,
        "implicit": mujoco.mjtIntegrator.mjINT_IMPLICIT,
        "implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST,
        "rk4": mujoco.mjtIntegrator.mjINT_RK4,
    }[config.integrator]
    # All geoms get the same contact parameters (MuJoCo mixes them by max). Margins
    # and gaps are zeroed so both backends see the same contacts (MJX implements no
    # margin for mesh pairs).
    for geom in spec.geoms:
        geom.margin = 0.0
        geom.gap = 0.0
        geom.friction = [config.friction, config.torsional_friction, config.rolling_friction]
        geom.condim = config.condim
    for pair in spec.pairs:  # the hand's own explicit contact pairs (finger-finger)
        pair.margin = 0.0
        pair.gap = 0.0
        pair.condim = config.condim
        pair.friction = [
            config.friction,
            config.friction,
            config.torsional_friction,
            config.rolling_friction,
            config.rolling_friction,
        ]


def _index(model, hand: HandModel, config) -> Scene:
    joint_qpos = np.array(
        [model.jnt_qposadr[model.joint(n).id] for n in hand.joint_names], dtype=np.int64
    )
    obj_body = model.body(_OBJECT_BODY).id
    free = model.body_jntadr[obj_body]
    mocap_body = int(np.flatnonzero(model.body_mocapid >= 0)[0])
    mocap = int(model.body_mocapid[mocap_body])
    data = mujoco.MjData(model)
    data.mocap_pos[mocap] = 0.0
    data.mocap_quat[mocap] = [1.0, 0.0, 0.0, 0.0]
    for k, adr in enumerate(joint_qpos):
        data.qpos[adr] = float(np.asarray(hand.joint_ref)[k])
    mujoco.mj_kinematics(model, data)
    root = model.body(hand.root_body).id
    root_in_mocap = (data.xpos[root].copy(), data.xmat[root].reshape(3, 3).copy())
    object_geoms = np.flatnonzero(model.geom_bodyid == obj_body)
    hand_geom_body = np.full(model.ngeom, -1, dtype=np.int64)
    body_index = {n: i for i, n in enumerate(hand.body_names)}
    for g in range(model.ngeom):
        name = model.body(model.geom_bodyid[g]).name
        if name in body_index and (model.geom_contype[g] or model.geom_conaffinity[g]):
            hand_geom_body[g] = body_index[name]
    return Scene(
        model=model,
        config=config,
        joint_qpos=joint_qpos,
        object_qpos=int(model.jnt_qposadr[free]),
        object_body=obj_body,
        object_com=model.body_ipos[obj_body].copy(),
        mocap=mocap,
        root_in_mocap=root_in_mocap,
        object_geoms=object_geoms,
        object_weld=model.equality(OBJECT_WELD).id,
        hand_geom_body=hand_geom_body,
    )
