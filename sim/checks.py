"""Exact geometric checks of grasps (DESIGN.md §8): penetration, self-penetration, part
alignment, finger contacts, Q1 and captions.

"Exact" means measured against the object's triangle mesh (libigl's AABB distance with
winding-number sign) and the hand's analytic collision primitives (MuJoCo's own
`mj_geomDistance` between primitives), never against the SDF grid the optimizer uses:
- hand-in-object depth: dense samples on the hand primitives' surfaces (about 2 mm
  apart), signed distance to the mesh (exact for samples within 1.5 cm of the surface;
  the SDF grid only decides which samples are that near and, on a closed mesh, signs
  a sample nearer to a grid node than to the surface: no surface lies between them, so
  the sign is the winding number's);
- object-in-hand depth: the mesh vertices and surface samples inside the primitives
  (analytic primitive SDF);
- self-penetration: MuJoCo distance between hand collision geoms on non-adjacent links;
- distances of a hand link to the object / to each part: its dense samples' distance
  (to a part: exact up to `NEAR`, a lower bound beyond, see `_part_distances`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import igl
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import trimesh

from energies import length_scale
from energies.metrics import q1_metric
from jaxgrasp.sdf import SDFGrid, mesh_signed_distance, sdf_query
from kinematics import HandModel, forward_kinematics
from kinematics.geometry import primitive_mesh, primitive_sdf_np
from sim.disturbance import initial_qpos
from sim.grasps import GraspPoses
from sim.scene import Scene

# Spacing of the dense hand samples used by the exact checks (m).
HAND_SAMPLE_SPACING = 0.002
# Grasps per jitted block of the checks.
CHECK_BLOCK = 32
# Samples farther than this from the surface (by the SDF grid) skip the exact distance.
NEAR = 0.015
# PTA / PGA: a finger counts for the target part within this distance of it (DESIGN §8).
PART_FINGER_DISTANCE = 0.01


class GeometryChecks(NamedTuple):
    """Per-grasp exact measurements.

    Fields:
        penetration: deepest hand-object interpenetration (m, >= 0). Shape: (B,).
        self_penetration: deepest overlap of non-adjacent hand links (m). Shape: (B,).
        link_distance: distance of each hand body to the object (m). Shape: (B, n_bodies).
        link_part_distance: distance of each hand body to each part (m); exact up to
            `NEAR` (1.5 cm), beyond it a lower bound of at least `NEAR` (every decision
            reads distances of at most 1 cm). Shape: (B, n_bodies, n_parts).
        finger_distance: distance of each finger's contact link to the object (m);
            fingers in `HandModel.contacts.finger` order. Shape: (B, n_fingers).
        in_contact: finger within `config.contact_distance`. Shape: (B, n_fingers).
        aligned: every link within `part_alignment_distance` of the object is closer to
            the target part than to any other (True without a target). Shape: (B,).
        pta / pga: >= 1 / >= 3 fingers (palm excluded) within 1 cm of the target part
            and closer to it than to any other. Shape: (B,).
        q1: epsilon-metric of the fingers in contact (mu = config.friction). Shape: (B,).
        table_penetration: depth of the hand below the scene's table plane (m, >= 0;
            0 without a table). Shape: (B,).
    """

    penetration: np.ndarray
    self_penetration: np.ndarray
    link_distance: np.ndarray
    link_part_distance: np.ndarray
    finger_distance: np.ndarray
    in_contact: np.ndarray
    aligned: np.ndarray
    pta: np.ndarray
    pga: np.ndarray
    q1: np.ndarray
    table_penetration: np.ndarray


def check_grasps(
    scene: Scene,
    hand: HandModel,
    obj,
    grasps: GraspPoses,
    part: int | None,
    *,
    nthread: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> GeometryChecks:
    """Exact checks of `grasps` at their grasp joints against `obj` (see module doc).

    Grasps go in blocks of `CHECK_BLOCK` (the last one padded) so the jitted pieces
    compile once per process, whatever the batch size. The blocks run on `nthread`
    threads (default: all cores); the results do not depend on it. `progress(grasps
    done, grasps total)` after each block, in order.
    """
    if grasps.count == 0:  # as the disturbance test: empty results of the right shapes
        return _no_checks(hand, obj)
    grid = jax.device_put(obj.grid.bucketed())  # padded once: one compilation for all objects
    # A closed mesh's own grid signs the samples away from the surface (the same signs as
    # the winding number; without it, the checks' largest cost). On the host, once.
    sign_grid = jax.tree.map(np.asarray, obj.grid) if obj.watertight else None
    _dense_hand_samples(hand)  # cached: built once, before the threads would race for it

    def check(start: int) -> GeometryChecks:
        idx = np.arange(start, start + CHECK_BLOCK)
        block = grasps.take(np.minimum(idx, grasps.count - 1))
        keep = min(CHECK_BLOCK, grasps.count - start)
        out = _check_block(scene, hand, obj, grid, sign_grid, block, part)
        return GeometryChecks(*(np.asarray(x)[:keep] for x in out))

    starts = range(0, grasps.count, CHECK_BLOCK)
    # Part of a block's work runs without the GIL (NumPy's products, libigl's own
    # parallel loops): on a 16-core host the checks went from 68-70 to 88-97 grasps/s,
    # and on one thread they, not the simulation, bounded validation (README).
    workers = max(1, min(nthread or os.cpu_count() or 1, len(starts)))
    blocks = []
    with ThreadPoolExecutor(workers) as pool:
        for block in pool.map(check, starts):
            blocks.append(block)
            if progress is not None:
                progress(min(len(blocks) * CHECK_BLOCK, grasps.count), grasps.count)
    return GeometryChecks(*(np.concatenate(parts) for parts in zip(*blocks, strict=True)))


def _no_checks(hand: HandModel, obj) -> GeometryChecks:
    n_bodies, n_fingers = hand.n_bodies, len(hand.contacts.finger)
    empty, none = np.zeros(0), np.zeros(0, dtype=bool)
    return GeometryChecks(
        penetration=empty,
        self_penetration=empty,
        link_distance=np.zeros((0, n_bodies)),
        link_part_distance=np.zeros((0, n_bodies, obj.n_parts)),
        finger_distance=np.zeros((0, n_fingers)),
        in_contact=np.zeros((0, n_fingers), dtype=bool),
        aligned=none,
        pta=none,
        pga=none,
        q1=empty,
        table_penetration=empty,
    )


def _check_block(
    scene: Scene,
    hand: HandModel,
    obj,
    grid: SDFGrid,
    sign_grid: SDFGrid | None,
    grasps: GraspPoses,
    part: int | None,
) -> GeometryChecks:
    cfg = scene.config
    samples = _dense_hand_samples(hand)
    poses = _fk(
        hand,
        *(jnp.asarray(x, jnp.float32) for x in grasps[:2]),
        jnp.asarray(grasps.q_grasp, jnp.float32),
    )
    pos, rot = (np.asarray(x, dtype=np.float64) for x in poses)
    body = samples.body
    # matmul rather than einsum: several times faster for these 3 x 3 products.
    world = pos[:, body] + (rot[:, body] @ samples.points[:, :, None])[..., 0]
    n, m = world.shape[:2]
    flat = world.reshape(-1, 3)
    v = np.asarray(obj.vertices, dtype=np.float64)
    f = np.asarray(obj.faces, dtype=np.int64)
    # Exact distances where they decide anything (within NEAR of the surface, judged by
    # the SDF grid, whose error there is < 1 mm); farther samples keep the grid value.
    sd = np.asarray(_grid_sdf(grid, jnp.asarray(flat, jnp.float32)), dtype=np.float64)
    near = np.abs(sd) < NEAR
    face: np.ndarray = np.zeros(len(flat), dtype=np.int64)
    closest = flat.copy()
    part_d = np.repeat(np.abs(sd)[:, None], obj.n_parts, axis=1)
    if near.any():
        sd[near], face[near], closest[near] = mesh_signed_distance(flat[near], v, f, sign_grid)
        part_d[near] = _part_distances(
            flat[near], v, f, np.asarray(obj.face_part), obj.n_parts, face[near], np.abs(sd[near])
        )
    sd, face, closest = sd.reshape(n, m), face.reshape(n, m), closest.reshape(n, m, 3)

    hand_in_object = np.maximum(-sd.min(axis=1), 0.0)
    object_in_hand = _object_in_primitives(hand, obj, pos, rot)
    penetration = np.maximum(hand_in_object, object_in_hand)

    n_bodies = hand.n_bodies
    part_d = part_d.reshape(n, m, -1)
    link_distance = np.full((n, n_bodies), np.inf)
    link_part = np.full((n, n_bodies, obj.n_parts), np.inf)
    for b in np.unique(body):
        on_link = body == b
        link_distance[:, b] = sd[:, on_link].min(axis=1)
        link_part[:, b] = part_d[:, on_link].min(axis=1)

    fingers = hand.contacts.finger
    finger_body = np.asarray(hand.contacts.body)
    finger_distance = link_distance[:, finger_body]
    in_contact = finger_distance <= cfg.contact_distance

    if part is None:
        aligned = np.ones(n, dtype=bool)
        pta = pga = np.zeros(n, dtype=bool)
    else:
        others = (
            np.delete(link_part, part, axis=2).min(axis=2)
            if obj.n_parts > 1
            else np.full((n, n_bodies), np.inf)
        )
        closer = link_part[:, :, part] <= others
        near = link_distance <= cfg.part_alignment_distance
        aligned = np.all(closer | ~near, axis=1)
        is_finger = np.array([fg != "palm" for fg in fingers])
        fb = finger_body[is_finger]
        on_part = (link_part[:, fb, part] <= PART_FINGER_DISTANCE) & closer[:, fb]
        pta = on_part.sum(axis=1) >= 1
        pga = on_part.sum(axis=1) >= 3

    q1 = _q1(hand, obj, samples, sd, face, closest, in_contact, cfg.friction)
    # The hand is carried by a mocap body, which MuJoCo does not collide with the (static)
    # table, so the simulation cannot notice a hand pushed through it: measure it here.
    if scene.table_height is None:
        table_penetration = np.zeros(n)
    else:
        table_penetration = np.maximum(scene.table_height - world[..., 2].min(axis=1), 0.0)
    return GeometryChecks(
        penetration=penetration,
        self_penetration=_self_penetration(scene, hand, grasps),
        link_distance=link_distance,
        link_part_distance=link_part,
        finger_distance=finger_distance,
        in_contact=in_contact,
        aligned=aligned,
        pta=pta,
        pga=pga,
        q1=q1,
        table_penetration=table_penetration,
    )


def caption(object_name: str, part_name: str | None, fingers: list[str]) -> str:
    """`Grasp the {part} of the {object} object, with contacts on {fingers}` (DESIGN §8);
    without a part: `Grasp the {object} object, ...`."""
    what = (
        f"the {part_name} of the {object_name} object" if part_name else f"the {object_name} object"
    )
    touching = ", ".join(fingers) if fingers else "no fingers"
    return f"Grasp {what}, with contacts on {touching}"


class _HandSamples(NamedTuple):
    points: np.ndarray  # (m, 3) in body frames
    body: np.ndarray  # (m,)


@functools.cache
def _dense_samples_cached(key, prims_pos, prims_rot, prims_size, kinds, bodies) -> _HandSamples:
    pts, body = [], []
    for pos, rot, size, kind, b in zip(
        prims_pos, prims_rot, prims_size, kinds, bodies, strict=True
    ):
        mesh = primitive_mesh(kind, np.asarray(size))
        count = max(16, int(mesh.area / HAND_SAMPLE_SPACING**2))
        local, _ = trimesh.sample.sample_surface_even(mesh, count, seed=0)
        pts.append(np.asarray(local) @ np.asarray(rot).T + np.asarray(pos))
        body += [b] * len(local)
    return _HandSamples(np.concatenate(pts), np.asarray(body, dtype=np.int64))


def _dense_hand_samples(hand: HandModel) -> _HandSamples:
    p = hand.primitives
    return _dense_samples_cached(
        (hand.name, hand.source),
        tuple(map(tuple, np.asarray(p.pos).round(9))),
        tuple(tuple(map(tuple, r)) for r in np.asarray(p.rot).round(9)),
        tuple(map(tuple, np.asarray(p.size).round(9))),
        tuple(p.kind),
        tuple(p.body),
    )


_fk = jax.jit(jax.vmap(forward_kinematics, in_axes=(None, 0, 0, 0)))


@jax.jit
def _grid_sdf(grid: SDFGrid, points):
    return sdf_query(grid, points)[0]


def _part_distances(points, v, f, face_part, n_parts, face, distance) -> np.ndarray:
    """Unsigned distance of each point to each part's faces, exact up to `NEAR`; beyond
    it a lower bound of at least `NEAR`. Shape: (n, n_parts).

    `face`, `distance`: each point's nearest face of the whole mesh and its unsigned
    distance. The distance to that face's part is already known, and a part whose
    bounding box lies `NEAR` or more away is at least that far: only the rest is
    queried (on the procedural library 2-12 % of the point-part pairs).
    """
    nearest_part = np.asarray(face_part)[face]
    out = np.empty((len(points), n_parts))
    for p in range(n_parts):
        faces_p = f[face_part == p]
        if len(faces_p) == 0:
            out[:, p] = np.inf
            continue
        corners = v[faces_p.ravel()]
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        to_box = np.linalg.norm(np.maximum(np.maximum(lo - points, points - hi), 0.0), axis=1)
        out[:, p] = np.where(nearest_part == p, distance, np.maximum(distance, to_box))
        query = (nearest_part != p) & (to_box < NEAR)
        if query.any():
            d2 = igl.point_mesh_squared_distance(np.ascontiguousarray(points[query]), v, faces_p)[0]
            out[query, p] = np.sqrt(np.maximum(np.asarray(d2), 0.0))
    return out


def _object_in_primitives(hand: HandModel, obj, pos, rot) -> np.ndarray:
    """Deepest object vertex / surface sample inside any hand primitive. Shape: (B,)."""
    pts = np.concatenate([np.asarray(obj.vertices), np.asarray(obj.points)]).astype(np.float64)
    prims = hand.primitives
    deepest = np.zeros(len(pos))
    for k in range(prims.count):
        b = prims.body[k]
        r = rot[:, b] @ np.asarray(prims.rot[k], dtype=np.float64)  # (B, 3, 3)
        c = pos[:, b] + rot[:, b] @ np.asarray(prims.pos[k], dtype=np.float64)
        local = (pts[None] - c[:, None]) @ r  # r^T (p - c), for every grasp b
        d = primitive_sdf_np(prims.kind[k], np.asarray(prims.size[k]), local.reshape(-1, 3))
        deepest = np.maximum(deepest, np.maximum(-d.reshape(len(pos), -1).min(axis=1), 0.0))
    return deepest


def _self_penetration(scene: Scene, hand: HandModel, grasps: GraspPoses) -> np.ndarray:
    """Deepest overlap between hand collision geoms on links that may collide (the hand's
    self-collision pairs: different, non-adjacent links), by MuJoCo's geom distance."""
    m = scene.model
    d = mujoco.MjData(m)
    pairs = _geom_pairs(scene, hand)
    qpos = initial_qpos(scene, hand, grasps.q_grasp)
    mpos, mquat = scene.mocap_pose(grasps.root_pos, grasps.root_quat)
    out = np.zeros(grasps.count)
    for i in range(grasps.count):
        d.qpos[:] = qpos[i]
        d.mocap_pos[scene.mocap], d.mocap_quat[scene.mocap] = mpos[i], mquat[i]
        mujoco.mj_kinematics(m, d)
        deepest = 0.0
        for g1, g2 in pairs:
            deepest = max(deepest, -mujoco.mj_geomDistance(m, d, g1, g2, 0.01, None))
        out[i] = deepest
    return out


def _geom_pairs(scene: Scene, hand: HandModel) -> list[tuple[int, int]]:
    s = hand.spheres
    body_pairs = {
        (min(s.body[i], s.body[j]), max(s.body[i], s.body[j]))
        for i, j in zip(s.pair_i, s.pair_j, strict=True)
    }
    geoms = np.flatnonzero(scene.hand_geom_body >= 0)
    gb = scene.hand_geom_body
    return [
        (int(a), int(b))
        for ai, a in enumerate(geoms)
        for b in geoms[ai + 1 :]
        if (min(gb[a], gb[b]), max(gb[a], gb[b])) in body_pairs
    ]


def _q1(hand, obj, samples, sd, face, closest, in_contact, mu) -> np.ndarray:
    """Q1 from the fingers in contact: each contributes the object point nearest its
    contact link, with the mesh's inward face normal there."""
    n = sd.shape[0]
    finger_body = np.asarray(hand.contacts.body)
    pts = np.zeros((n, len(finger_body), 3))
    tri = np.zeros((n, len(finger_body)), dtype=np.int64)
    for k, b in enumerate(finger_body):
        idx = np.flatnonzero(samples.body == b)
        nearest = idx[np.argmin(sd[:, idx], axis=1)]
        pts[:, k] = closest[np.arange(n), nearest]
        tri[:, k] = face[np.arange(n), nearest]
    v = np.asarray(obj.vertices, dtype=np.float64)
    f = np.asarray(obj.faces, dtype=np.int64)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-12)
    normals_in = -fn[tri]
    length = length_scale(obj)
    q1 = _q1_batch(
        jnp.asarray(pts, jnp.float32),
        jnp.asarray(normals_in, jnp.float32),
        jnp.asarray(in_contact),
        jnp.asarray(obj.com, jnp.float32),
        jnp.float32(length),
        mu,
    )
    return np.asarray(q1, dtype=np.float64)


@functools.partial(jax.jit, static_argnames=("mu",))
def _q1_batch(points, normals_in, active, center, length, mu):
    return jax.vmap(lambda p, c, a: q1_metric(p, c, a, center, length, mu))(
        points, normals_in, active
    )
