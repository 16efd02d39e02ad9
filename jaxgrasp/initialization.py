"""Part-aware initial hand poses (DexVLG App. C.2, DESIGN.md §7).

For a target part, grasp points are drawn from the part's allowed surface region
(`PreparedObject.allowed`) and the palm is placed retreated from each point along the
surface normal, its front face towards the object, oriented by the part's category:
- lid-like: palm facing the part along its principal direction, turned about it by one
  of 24 uniform angles;
- disk-like: palm facing the surface, fingers ("up") along the principal direction;
- L-shaped: palm facing the surface, fingers towards the part box's centre;
- shaft-like: palm facing the surface, the thumb side (purlicue) along the principal
  direction (random sign).
Then a small random sideways rotation. Without a part (whole-object mode) the grasp
points lie on the object's convex hull, inflated by the retreat (DexGraspNet).
With a table (tabletop mode), `TABLE_OVERSAMPLE` times as many poses are drawn and the
first ones whose hand stays `table_clearance` above the table are kept (the highest
ones fill up if too few do). Deterministic for a seed.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import trimesh
from scipy.spatial import cKDTree

from energies._checks import NON_NEGATIVE, check_fields, is_number
from energies.hand_state import hand_state
from kinematics import HandModel
from sim.grasps import mat_to_quat

LID_ANGLES = 24
# Tabletop mode: candidate poses drawn per kept pose.
TABLE_OVERSAMPLE = 4


@dataclasses.dataclass(frozen=True)
class InitConfig:
    """Initial pose sampling.

    Attributes:
        retreat: palm-origin distance from the grasp point, uniform in this range (m).
        jitter_deg: std of the random sideways rotation (degrees).
        position_jitter: std of a random offset of the palm origin (m).
        q_noise: std of the joint noise around the mode's hand-crafted pose (rad).
        table_clearance: tabletop mode: the initial hand's lowest surface sample stays
            this far above the table (m).
        part_margin: grasp points are drawn at least this far from every other part
            (m), so that the hand (about 8 cm wide) starts on the target part, not
            across its border; where no point of a part is that far, the farthest
            quarter of its points are used.
    """

    retreat: tuple[float, float] = (0.02, 0.045)
    jitter_deg: float = 10.0
    position_jitter: float = 0.005
    q_noise: float = 0.05
    table_clearance: float = 0.01
    part_margin: float = 0.03

    def __post_init__(self):
        check_fields(
            self,
            {
                "retreat": (_is_range, "(low, high) with 0 <= low <= high, in metres"),
                "jitter_deg": NON_NEGATIVE,
                "position_jitter": NON_NEGATIVE,
                "q_noise": NON_NEGATIVE,
                "table_clearance": NON_NEGATIVE,
                "part_margin": NON_NEGATIVE,
            },
        )


def _is_range(r) -> bool:
    return len(r) == 2 and all(map(is_number, r)) and 0 <= r[0] <= r[1]


def initial_poses(
    hand: HandModel,
    obj,
    part: int | None,
    mode: str,
    num: int,
    seed: int,
    config: InitConfig = InitConfig(),
    *,
    table_height: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(root_pos (num, 3), root_quat (num, 4) wxyz, q (num, n_q)) of initial hands;
    with `table_height`, hands above the table z = table_height (see module doc)."""
    if table_height is None:
        return _sample_poses(hand, obj, part, mode, num, seed, config)
    pos, quat, q = _sample_poses(hand, obj, part, mode, TABLE_OVERSAMPLE * num, seed, config)
    lowest = np.asarray(
        _lowest_surface_point(hand, *(jnp.asarray(x, jnp.float32) for x in (pos, quat, q)))
    )
    above = lowest >= table_height + config.table_clearance
    # The first `num` poses above the table, then (if too few) the highest others.
    order = np.concatenate(
        [np.flatnonzero(above), np.flatnonzero(~above)[np.argsort(-lowest[~above], kind="stable")]]
    )
    keep = order[:num]
    return pos[keep], quat[keep], q[keep]


@jax.jit
def _lowest_surface_point(hand: HandModel, pos, quat, q):
    def one(p, r, qq):
        return jnp.min(hand_state(hand, p, r, qq).surface_points[:, 2])

    return jax.vmap(one)(pos, quat, q)


def _sample_poses(hand, obj, part, mode, num, seed, config):
    rng = np.random.default_rng(seed)
    palm = hand.spec.palm if hand.spec is not None else None
    if palm is None:
        raise ValueError(f"hand '{hand.name}' has no palm frame in its HandSpec")
    if part is None:
        points, normals = _hull_samples(obj, num, rng)
        frames = [_face_on(n, None, rng) for n in normals]
        push = normals
    else:
        points, normals, push, frames = _part_frames(obj, part, num, rng, config.part_margin)
    retreat = rng.uniform(*config.retreat, size=(num, 1))
    origin_world = points + push * retreat + rng.normal(0, config.position_jitter, (num, 3))
    palm_in_root = np.stack(
        [np.asarray(palm.thumb), np.asarray(palm.normal), np.asarray(palm.up)], axis=1
    )
    rots = []
    for frame in frames:
        jitter = _random_rotation(rng, np.radians(config.jitter_deg))
        rots.append(jitter @ frame @ palm_in_root.T)  # root axes in the world
    rot = np.stack(rots)
    root_pos = origin_world - np.einsum("bij,j->bi", rot, np.asarray(palm.origin))
    root_quat = mat_to_quat(rot)
    lo, hi = np.asarray(hand.q_range).T
    q0 = np.asarray(hand.init_q(mode))
    q = np.clip(q0 + rng.normal(0, config.q_noise, (num, hand.n_q)), lo, hi)
    return root_pos, root_quat, q


def _part_frames(obj, part, num, rng, margin):
    pts = np.asarray(obj.points)
    nrm = np.asarray(obj.normals)
    on_part = np.asarray(obj.point_part) == part
    mask = on_part & np.asarray(obj.allowed)
    if not mask.any():
        mask = on_part
    if not on_part.all():  # keep the hand away from the other parts
        cand = np.flatnonzero(mask)
        gap, _ = cKDTree(pts[~on_part]).query(pts[cand])
        far = gap >= margin
        if not far.any():
            far = gap >= np.quantile(gap, 0.75)
        mask = np.zeros_like(mask)
        mask[cand[far]] = True
    idx = rng.choice(np.flatnonzero(mask), size=num)
    category = obj.part_categories[part]
    principal = np.asarray(obj.part_principal[part])
    centre = np.asarray(obj.part_center[part])
    points, normals = pts[idx], nrm[idx]
    frames, push = [], []
    for k in range(num):
        n = normals[k]
        if category == "lid-like":
            angle = 2 * np.pi * rng.integers(LID_ANGLES) / LID_ANGLES
            frames.append(_face_on(principal, _perpendicular(principal, angle), rng))
            push.append(principal)
            continue
        if category == "disk-like":
            up = principal
        elif category == "L-shaped":
            up = centre - points[k]
        else:  # shaft-like: thumb side along the principal direction
            up = None
        frame = _face_on(n, up, rng)
        if up is None:
            thumb = principal * rng.choice([-1.0, 1.0])
            frame = _frame_from(n, thumb=thumb) if _valid(thumb, n) else frame
        frames.append(frame)
        push.append(n)
    return points, normals, np.stack(push), frames


def _face_on(n, up, rng):
    """World palm axes [thumb, normal, up] with the palm normal = -n (facing the surface)."""
    normal = -np.asarray(n) / max(float(np.linalg.norm(n)), 1e-12)
    if up is None or not _valid(up, normal):
        up = _perpendicular(normal, rng.uniform(0, 2 * np.pi))
    up = np.asarray(up) - (np.asarray(up) @ normal) * normal
    up /= np.linalg.norm(up)
    thumb = np.cross(up, normal)  # the palm frame's handedness: thumb = up x normal
    return np.stack([thumb, normal, up], axis=1)


def _frame_from(n, thumb):
    normal = -np.asarray(n) / max(np.linalg.norm(n), 1e-12)
    thumb = thumb - (thumb @ normal) * normal
    thumb /= np.linalg.norm(thumb)
    up = np.cross(normal, thumb)
    return np.stack([thumb, normal, up], axis=1)


def _valid(v, normal) -> bool:
    v = np.asarray(v, dtype=np.float64)
    return bool(
        np.linalg.norm(v - (v @ normal) * normal) > 1e-6 * max(float(np.linalg.norm(v)), 1e-12)
    )


def _perpendicular(axis, angle):
    axis = np.asarray(axis) / np.linalg.norm(axis)
    helper = np.eye(3)[np.argmin(np.abs(axis))]
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    return np.cos(angle) * e1 + np.sin(angle) * e2


def _random_rotation(rng, sigma):
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = rng.normal(0, sigma)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _hull_samples(obj, num, rng):
    hull = trimesh.Trimesh(np.asarray(obj.vertices), np.asarray(obj.faces)).convex_hull
    points, face = trimesh.sample.sample_surface(hull, num, seed=int(rng.integers(2**31)))
    return np.asarray(points), np.asarray(hull.face_normals[face])
