"""`HandModel`: an immutable pytree describing an articulated hand, built once from MuJoCo.

Static structure (names, parents, joint types, couplings) sits in pytree metadata; numeric
data (body offsets, joint axes, limits, geometry) sits in array leaves. Every function that
uses a hand takes it as an argument (see `kinematics.fk`), so one hand model serves jit,
vmap and sharding alike.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import mujoco
import numpy as np
from jaxtyping import Array, Float

from kinematics._pytree import static_field
from kinematics.geometry import (
    PRIMITIVE_KIND_NAMES,
    CollisionPrimitives,
    CollisionSpheres,
    ContactCandidates,
    SurfacePoints,
)
from kinematics.spec import ContactSpec, HandSpec

HINGE = int(mujoco.mjtJoint.mjJNT_HINGE)
SLIDE = int(mujoco.mjtJoint.mjJNT_SLIDE)

# Polynomial degree of a joint coupling, as in MuJoCo's joint equality (a0 .. a4).
COUPLING_DEGREE = 4


class HandModelError(ValueError):
    """A hand file or hand name that cannot be turned into a `HandModel`."""


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class HandModel:
    """An articulated hand below a root body, in MuJoCo's body order.

    The joint vector `q` (length `n_q`) holds the hand's *independent* joints, in MuJoCo
    joint order, in MuJoCo's units (radians / metres, same zero as `qpos`). Joints coupled
    to another joint (tendon or equality couplings, e.g. the Shadow Hand's distal joints)
    are not in `q`; `full_joint_angles` derives them. The root body's pose is given
    separately to `forward_kinematics`; joints of the root body and above it (the Shadow
    wrist) are held at their reference value.

    Array fields:
        body_pos: body origin in its parent's frame (row 0, the root, is unused).
            Shape: (n_bodies, 3).
        body_rot: body orientation in its parent's frame. Shape: (n_bodies, 3, 3).
        joint_axis: unit joint axis in its body frame. Shape: (n_joints, 3).
        joint_anchor: hinge anchor in its body frame. Shape: (n_joints, 3).
        joint_ref: reference angle (MuJoCo qpos0). Shape: (n_joints,).
        joint_range: [lower, upper] limits from the model. Shape: (n_joints, 2).
        coupling_x0: driver reference value of each joint's polynomial map. Shape: (n_joints,).
        coupling_y0: constant offset of each joint's polynomial map. Shape: (n_joints,).
        coupling_poly: coefficients a0..a4 of joint = y0 + sum_k a_k (q[src] - x0)^k;
            (0, 1, 0, 0, 0) for independent joints. Shape: (n_joints, 5).
        q_range: limits of the independent joints, narrowed so that every coupled joint
            stays inside its own limits. Shape: (n_q, 2).
        primitives / surface / contacts / spheres: per-link geometry (collision
            primitives, surface samples, contact candidates, self-collision spheres; see
            `kinematics.geometry`).
    """

    body_pos: Float[Array, "n_bodies 3"]
    body_rot: Float[Array, "n_bodies 3 3"]
    joint_axis: Float[Array, "n_joints 3"]
    joint_anchor: Float[Array, "n_joints 3"]
    joint_ref: Float[Array, " n_joints"]
    joint_range: Float[Array, "n_joints 2"]
    coupling_x0: Float[Array, " n_joints"]
    coupling_y0: Float[Array, " n_joints"]
    coupling_poly: Float[Array, "n_joints 5"]
    q_range: Float[Array, "n_q 2"]
    primitives: CollisionPrimitives
    surface: SurfacePoints
    contacts: ContactCandidates
    spheres: CollisionSpheres

    name: str = static_field()
    source: str = static_field()
    body_names: tuple[str, ...] = static_field()
    body_parent: tuple[int, ...] = static_field()  # -1 for the root
    joint_names: tuple[str, ...] = static_field()
    joint_type: tuple[int, ...] = static_field()
    joint_body: tuple[int, ...] = static_field()
    joint_source: tuple[int, ...] = static_field()  # index into q driving each joint
    q_names: tuple[str, ...] = static_field()
    spec: HandSpec | None = static_field(default=None)

    # ----------------------------------------------------------------- counts / names
    @property
    def n_bodies(self) -> int:
        return len(self.body_names)

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def n_q(self) -> int:
        return len(self.q_names)

    @property
    def root_body(self) -> str:
        return self.body_names[0]

    @property
    def coupled_joints(self) -> tuple[str, ...]:
        """Names of joints derived from another joint (not part of `q`)."""
        q = set(self.q_names)
        return tuple(n for n in self.joint_names if n not in q)

    def body_index(self, name: str) -> int:
        try:
            return self.body_names.index(name)
        except ValueError:
            raise HandModelError(
                f"hand '{self.name}' has no body '{name}'; bodies: {', '.join(self.body_names)}"
            ) from None

    def q_index(self, name: str) -> int:
        try:
            return self.q_names.index(name)
        except ValueError:
            raise HandModelError(
                f"'{name}' is not an independent joint of hand '{self.name}'; "
                f"independent joints: {', '.join(self.q_names)}"
            ) from None

    def q_from_dict(self, angles: dict[str, float]) -> np.ndarray:
        """A joint vector from {joint name: value}; other joints at 0 clipped to limits.

        Shape: (n_q,).
        """
        lo, hi = np.asarray(self.q_range).T
        q = np.array(np.clip(0.0, lo, hi), dtype=np.float64)
        for name, value in angles.items():
            q[self.q_index(name)] = value
        return np.clip(q, lo, hi)

    def init_q(self, mode: str = "open") -> np.ndarray:
        """The spec's hand-crafted joint pose `mode` (open / wrap / pinch). Shape: (n_q,)."""
        if self.spec is None:
            raise HandModelError(
                f"hand '{self.name}' was built without a HandSpec, so it has no named poses"
            )
        return self.q_from_dict(self.spec.init_pose(mode))

    def describe(self) -> dict:
        """A JSON-ready summary: bodies, joints (limits, couplings), geometry counts."""
        joints = []
        for k, name in enumerate(self.joint_names):
            entry: dict[str, object] = {
                "name": name,
                "type": "hinge" if self.joint_type[k] == HINGE else "slide",
                "body": self.body_names[self.joint_body[k]],
                "range": [float(v) for v in np.asarray(self.joint_range)[k]],
            }
            if name in self.q_names:
                q_index = self.q_names.index(name)
                entry["q_index"] = q_index
                entry["q_range"] = [float(v) for v in np.asarray(self.q_range)[q_index]]
            else:
                entry["coupled_to"] = self.q_names[self.joint_source[k]]
                entry["coupling_poly"] = [float(v) for v in np.asarray(self.coupling_poly)[k]]
            joints.append(entry)
        return {
            "name": self.name,
            "source": self.source,
            "root_body": self.root_body,
            "n_bodies": self.n_bodies,
            "n_joints": self.n_joints,
            "n_q": self.n_q,
            "bodies": [
                {"name": n, "parent": self.body_names[p] if p >= 0 else None}
                for n, p in zip(self.body_names, self.body_parent, strict=True)
            ],
            "joints": joints,
            "q_names": list(self.q_names),
            "coupled_joints": list(self.coupled_joints),
            "collision_primitives": [
                {"name": n, "body": self.body_names[b], "kind": PRIMITIVE_KIND_NAMES[k]}
                for n, b, k in zip(
                    self.primitives.names, self.primitives.body, self.primitives.kind, strict=True
                )
            ],
            "n_surface_points": self.surface.count,
            "contact_candidates": [
                {
                    "finger": f,
                    "body": self.body_names[b],
                    "pos": [float(v) for v in p],
                    "normal": [float(v) for v in n],
                }
                for f, b, p, n in zip(
                    self.contacts.finger,
                    self.contacts.body,
                    np.asarray(self.contacts.points),
                    np.asarray(self.contacts.normals),
                    strict=True,
                )
            ],
        }

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_mjcf(
        cls,
        path: str | Path,
        root_body: str | None = None,
        *,
        contacts: tuple[ContactSpec, ...] = (),
        n_surface_points: int = 1024,
        name: str | None = None,
        spec: HandSpec | None = None,
    ) -> HandModel:
        """Build a hand from an MJCF file, compiled by MuJoCo's own parser.

        Args:
            path: MJCF file (scene files are fine: only the subtree of `root_body` is used).
            root_body: body whose pose is the hand's root pose; its own joints and those
                above it are held at their reference value. Default: the deepest common
                ancestor of every hinge/slide joint's body, or its parent if it carries a
                joint itself (so no joint is dropped).
            contacts: labelled contact candidates (see `kinematics.spec.ContactSpec`).
            n_surface_points: number of surface samples spread over the collision geometry.
            name: hand name (default: the file stem).
            spec: the `HandSpec` this hand was built from, kept for its poses and palm frame.
        """
        from kinematics._mjcf import build_hand

        return build_hand(
            cls,
            _compile(path, "MJCF"),
            str(path),
            root_body,
            contacts,
            n_surface_points,
            name or Path(path).stem,
            spec,
        )

    @classmethod
    def from_urdf(
        cls,
        path: str | Path,
        root_body: str | None = None,
        *,
        contacts: tuple[ContactSpec, ...] = (),
        n_surface_points: int = 1024,
        name: str | None = None,
        spec: HandSpec | None = None,
    ) -> HandModel:
        """Build a hand from a URDF file via MuJoCo's URDF compiler (same args as `from_mjcf`).

        MuJoCo fuses links joined by fixed joints into their parent, so body names are
        those of the movable links. MuJoCo would also merge the URDF's root link into the
        world; the root link is kept as a body (it is the default `root_body`).
        """
        from kinematics._mjcf import build_hand

        model, root_link = _compile_urdf(Path(path))
        return build_hand(
            cls,
            model,
            str(path),
            root_body or root_link,
            contacts,
            n_surface_points,
            name or Path(path).stem,
            spec,
        )

    @classmethod
    def from_mj_model(
        cls,
        model: mujoco.MjModel,
        root_body: str | None = None,
        *,
        contacts: tuple[ContactSpec, ...] = (),
        n_surface_points: int = 1024,
        name: str = "hand",
        spec: HandSpec | None = None,
    ) -> HandModel:
        """Build a hand from an already compiled `mujoco.MjModel`."""
        from kinematics._mjcf import build_hand

        return build_hand(
            cls, model, "<MjModel>", root_body, contacts, n_surface_points, name, spec
        )


def _check_file(path: Path) -> None:
    if not path.exists():
        raise HandModelError(f"hand file not found: {path}")
    if not path.is_file():
        raise HandModelError(f"hand file is not a regular file: {path}")


def _compile_error(path: Path, kind: str, err: Exception) -> HandModelError:
    msg = " ".join(str(err).split())
    return HandModelError(
        f"MuJoCo could not compile the {kind} hand file {path}: {msg} "
        f"(check that it is valid {kind} and that mesh files it names exist)"
    )


def _compile(path: str | Path, kind: str) -> mujoco.MjModel:
    """Compile a hand file with MuJoCo, turning its failures into one clear line."""
    path = Path(path)
    _check_file(path)
    try:
        return mujoco.MjModel.from_xml_path(str(path))
    except Exception as err:  # MuJoCo raises ValueError with its parser message
        raise _compile_error(path, kind, err) from None


def _compile_urdf(path: Path) -> tuple[mujoco.MjModel, str]:
    """Compile a URDF whose root link stays a body (see `hand_file_spec`)."""
    spec, root = _urdf_spec(path)
    try:
        return spec.compile(), root
    except Exception as err:
        raise _compile_error(path, "URDF", err) from None


def hand_file_spec(path: str | Path) -> mujoco.MjSpec:
    """An editable `mujoco.MjSpec` of a hand file (MJCF, or URDF with its root link hung
    on a floating joint from a new world link, as `HandModel.from_urdf` compiles it)."""
    path = Path(path)
    _check_file(path)
    if path.suffix.lower() == ".urdf":
        return _urdf_spec(path)[0]
    try:
        return mujoco.MjSpec.from_file(str(path))
    except Exception as err:
        raise _compile_error(path, "MJCF", err) from None


def _urdf_spec(path: Path) -> tuple[mujoco.MjSpec, str]:
    import xml.etree.ElementTree as ET

    _check_file(path)
    try:
        robot = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise _compile_error(path, "URDF", err) from None
    links = [str(link.get("name")) for link in robot.findall("link")]
    children = {
        str(child.get("link"))
        for child in (j.find("child") for j in robot.findall("joint"))
        if child is not None
    }
    roots = [n for n in links if n not in children]
    if robot.tag != "robot" or len(roots) != 1:
        raise HandModelError(
            f"{path}: not a URDF robot with a single root link (found roots {roots})"
        )
    world = "jaxgrasp_world"
    ET.SubElement(robot, "link", name=world)
    joint = ET.SubElement(robot, "joint", name="jaxgrasp_root", type="floating")
    ET.SubElement(joint, "parent", link=world)
    ET.SubElement(joint, "child", link=roots[0])
    try:
        spec = mujoco.MjSpec.from_string(ET.tostring(robot, encoding="unicode"))
    except Exception as err:
        raise _compile_error(path, "URDF", err) from None
    spec.meshdir = str(path.parent)
    return spec, roots[0]
