"""Headless pictures (matplotlib Agg): hands with their collision geometry and contacts."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # noqa: E402

from kinematics import HandModel, forward_kinematics, points_to_world, vectors_to_world  # noqa: E402
from kinematics.geometry import primitive_mesh  # noqa: E402

# (elevation, azimuth) of the default views: front (looking into the palm), side, top.
DEFAULT_VIEWS = ((0.0, -90.0), (0.0, 0.0), (90.0, -90.0))
FINGER_COLOURS = {
    "thumb": "tab:red",
    "index": "tab:orange",
    "middle": "tab:green",
    "ring": "tab:blue",
    "little": "tab:purple",
    "palm": "black",
}
# One compiled program: called eagerly, FK would compile each of its small ops.
_forward_kinematics = jax.jit(forward_kinematics)


def hand_world_meshes(
    hand: HandModel, q: np.ndarray, root_pos=None, root_quat=None
) -> list[np.ndarray]:
    """World-frame triangles of every collision primitive at joint pose `q` (root at the
    origin unless a root pose is given). Returns one (n_tris, 3, 3) array per primitive.
    """
    root_pos = jnp.zeros(3) if root_pos is None else jnp.asarray(root_pos, jnp.float32)
    root_quat = (
        jnp.array([1.0, 0, 0, 0]) if root_quat is None else jnp.asarray(root_quat, jnp.float32)
    )
    poses = _forward_kinematics(hand, root_pos, root_quat, jnp.asarray(q, jnp.float32))
    pos, rot = np.asarray(poses.pos), np.asarray(poses.rot)
    prims = hand.primitives
    out = []
    for i in range(prims.count):
        mesh = primitive_mesh(prims.kind[i], np.asarray(prims.size[i]))
        local = mesh.vertices @ np.asarray(prims.rot[i]).T + np.asarray(prims.pos[i])
        b = prims.body[i]
        world = local @ rot[b].T + pos[b]
        out.append(world[mesh.faces])
    return out


def render_hand(
    hand: HandModel,
    q: np.ndarray,
    path: str | Path,
    views: tuple[tuple[float, float], ...] = DEFAULT_VIEWS,
    title: str | None = None,
) -> Path:
    """Write a PNG of the hand's collision primitives and contact candidates (with normals)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tris = hand_world_meshes(hand, q)
    poses = _forward_kinematics(
        hand, jnp.zeros(3), jnp.array([1.0, 0, 0, 0]), jnp.asarray(q, jnp.float32)
    )
    c = hand.contacts
    cp = np.asarray(points_to_world(poses, c.body, c.points)) if c.count else np.zeros((0, 3))
    cn = np.asarray(vectors_to_world(poses, c.body, c.normals)) if c.count else np.zeros((0, 3))
    allpts = np.concatenate([t.reshape(-1, 3) for t in tris] + [cp])
    centre = 0.5 * (allpts.max(0) + allpts.min(0))
    half = 0.5 * float((allpts.max(0) - allpts.min(0)).max()) + 0.01

    fig = plt.figure(figsize=(5 * len(views), 5.4))
    for k, (elev, azim) in enumerate(views):
        ax = fig.add_subplot(1, len(views), k + 1, projection="3d")
        for t in tris:
            ax.add_collection3d(
                Poly3DCollection(t, facecolor=(0.55, 0.62, 0.72, 0.35), edgecolor="none")
            )
        for f in sorted(set(c.finger)):
            sel = [i for i, ff in enumerate(c.finger) if ff == f]
            ax.scatter(
                *cp[sel].T, color=FINGER_COLOURS.get(f, "k"), s=30, label=f, depthshade=False
            )
            ax.quiver(*cp[sel].T, *cn[sel].T, length=0.02, color=FINGER_COLOURS.get(f, "k"))
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_zlim(centre[2] - half, centre[2] + half)
        ax.set_box_aspect((1, 1, 1))
        ax.view_init(elev=elev, azim=azim)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_zlabel("z")
        if k == 0 and c.count:
            ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title or f"{hand.name}: collision primitives and contact candidates")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render_grasp(
    hand: HandModel,
    obj,
    root_pos,
    root_quat,
    q,
    path: str | Path,
    part: str | None = None,
    views: tuple[tuple[float, float], ...] = ((20.0, -60.0), (20.0, 30.0), (80.0, -90.0)),
    title: str | None = None,
    table_height: float | None = None,
) -> Path:
    """Write a PNG of one grasp: the object (target part in orange, other parts grey)
    and the hand's collision primitives (and the table plane, if given), from several
    views. Headless (Agg)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tris = hand_world_meshes(hand, q, root_pos, root_quat)
    v = np.asarray(obj.vertices)
    f = np.asarray(obj.faces)
    face_part = np.asarray(obj.face_part)
    target = None if part is None else obj.part_index(part)
    pts = np.concatenate([v] + [t.reshape(-1, 3) for t in tris])
    centre = 0.5 * (pts.max(0) + pts.min(0))
    half = 0.5 * float((pts.max(0) - pts.min(0)).max()) + 0.005
    fig = plt.figure(figsize=(4.5 * len(views), 4.8))
    for k, (elev, azim) in enumerate(views):
        ax = fig.add_subplot(1, len(views), k + 1, projection="3d")
        colours = np.where(
            (face_part == target)[:, None] if target is not None else np.zeros((len(f), 1), bool),
            np.array([[0.95, 0.55, 0.1, 0.55]]),
            np.array([[0.6, 0.6, 0.6, 0.35]]),
        )
        ax.add_collection3d(Poly3DCollection(v[f], facecolors=colours, edgecolor="none"))
        for t in tris:
            ax.add_collection3d(
                Poly3DCollection(t, facecolor=(0.25, 0.4, 0.75, 0.55), edgecolor="none")
            )
        if table_height is not None:
            x0, x1 = centre[0] - half, centre[0] + half
            y0, y1 = centre[1] - half, centre[1] + half
            corners = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
            square = np.array([[x, y, table_height] for x, y in corners])
            ax.add_collection3d(
                Poly3DCollection([square], facecolor=(0.45, 0.35, 0.25, 0.25), edgecolor="none")
            )
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_zlim(centre[2] - half, centre[2] + half)
        ax.set_box_aspect((1, 1, 1))
        ax.view_init(elev=elev, azim=azim)
        ax.set_axis_off()
    fig.suptitle(title or f"{hand.name} on {obj.name}" + (f" ({part})" if part else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
