"""Turn a compiled `mujoco.MjModel` into a `HandModel` (structure, couplings, geometry)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, cast

import jax
import mujoco
import numpy as np
import trimesh

from kinematics.geometry import (
    BOX,
    CAPSULE,
    SPHERE,
    CollisionPrimitives,
    CollisionSpheres,
    ContactCandidates,
    SurfacePoints,
    farthest_point_sampling,
    primitive_mesh,
    primitive_sdf_np,
    primitive_spheres,
)
from kinematics.hand_model import COUPLING_DEGREE, HINGE, SLIDE, HandModelError

if TYPE_CHECKING:
    from kinematics.hand_model import HandModel
    from kinematics.spec import ContactSpec, HandSpec

# A limited two-joint fixed tendon is read as a coupling when it leaves the follower less
# than this much play (radians or metres); wider ranges are ordinary limits (e.g. Shadow's
# T_FFJ1u/d tendons), not couplings.
COUPLING_MAX_PLAY = 0.35
# Collision geoms whose bounding sphere is smaller than this are placeholders (the Shadow
# Hand's 1 mm thbase/thhub boxes) and carry no useful geometry.
MIN_GEOM_RADIUS = 2e-3
# Range used for unlimited joints (hinge: radians, slide: metres).
UNLIMITED_HINGE = np.pi
UNLIMITED_SLIDE = 1.0
# Minimum surface samples on any body that has collision geometry.
MIN_POINTS_PER_BODY = 4


def build_hand(
    cls: type[HandModel],
    m: mujoco.MjModel,
    source: str,
    root_body: str | None,
    contacts: tuple[ContactSpec, ...],
    n_surface_points: int,
    name: str,
    spec: HandSpec | None,
) -> HandModel:
    root = _resolve_root(m, root_body, source)
    bodies = [b for b in range(m.nbody) if _is_descendant(m, b, root)]
    hand_index = {b: k for k, b in enumerate(bodies)}
    parents = [-1] + [hand_index[int(m.body_parentid[b])] for b in bodies[1:]]

    body_rot = np.stack([_quat2mat(m.body_quat[b]) for b in bodies])
    body_pos = np.array(m.body_pos[bodies], dtype=np.float64)
    body_pos[0] = 0.0
    body_rot[0] = np.eye(3)

    joints: list[int] = []
    for b in bodies[1:]:
        for j in range(m.body_jntadr[b], m.body_jntadr[b] + m.body_jntnum[b]):
            if m.jnt_type[j] not in (HINGE, SLIDE):
                kind = mujoco.mjtJoint(m.jnt_type[j]).name
                raise HandModelError(
                    f"{source}: joint '{m.joint(j).name}' is a {kind} joint; a hand may only "
                    f"have hinge and slide joints below its root body '{m.body(root).name}'"
                )
            joints.append(j)
    if not joints:
        raise HandModelError(
            f"{source}: no hinge or slide joints below body '{m.body(root).name}': "
            "nothing to articulate (is this a hand model, and is the root body right?)"
        )

    couplings = _find_couplings(m, joints, source)
    q_joints = [j for j in joints if j not in couplings]
    q_of = {j: i for i, j in enumerate(q_joints)}

    n = len(joints)
    x0 = np.zeros(n)
    y0 = np.zeros(n)
    poly = np.zeros((n, COUPLING_DEGREE + 1))
    source_idx = []
    for k, j in enumerate(joints):
        if j in couplings:
            driver, cx0, cy0, cpoly = couplings[j]
            if driver not in q_of:
                raise HandModelError(
                    f"{source}: joint '{m.joint(j).name}' is coupled to "
                    f"'{m.joint(driver).name}', which is itself coupled or outside the hand; "
                    "chained couplings are not supported"
                )
            source_idx.append(q_of[driver])
            x0[k], y0[k], poly[k] = cx0, cy0, cpoly
        else:
            source_idx.append(q_of[j])
            poly[k, 1] = 1.0

    joint_range = np.array([_joint_range(m, j) for j in joints])
    q_range = joint_range[[joints.index(j) for j in q_joints]].copy()
    for k, j in enumerate(joints):
        if j in couplings:
            q_range[source_idx[k]] = _narrow_driver_range(
                q_range[source_idx[k]], x0[k], y0[k], poly[k], joint_range[k], m, j, source
            )

    primitives, meshes = _collision_primitives(m, bodies, hand_index)
    surface = _sample_surface(primitives, meshes, n_surface_points)
    contact_set = _contact_candidates(contacts, bodies, hand_index, m, source)

    hand = cls(
        body_pos=body_pos,
        body_rot=body_rot,
        joint_axis=np.array(m.jnt_axis[joints], dtype=np.float64),
        joint_anchor=np.array(m.jnt_pos[joints], dtype=np.float64),
        joint_ref=np.array(m.qpos0[m.jnt_qposadr[joints]], dtype=np.float64),
        joint_range=joint_range,
        coupling_x0=x0,
        coupling_y0=y0,
        coupling_poly=poly,
        q_range=q_range,
        primitives=primitives,
        surface=surface,
        contacts=contact_set,
        spheres=_sphere_filling(primitives),
        name=name,
        source=source,
        body_names=tuple(m.body(b).name for b in bodies),
        body_parent=tuple(parents),
        joint_names=tuple(m.joint(j).name for j in joints),
        joint_type=tuple(int(m.jnt_type[j]) for j in joints),
        joint_body=tuple(hand_index[int(m.jnt_bodyid[j])] for j in joints),
        joint_source=tuple(source_idx),
        q_names=tuple(m.joint(j).name for j in q_joints),
        spec=spec,
    )
    return dataclasses.replace(hand, spheres=_self_collision_pairs(hand))


# --------------------------------------------------------------------------- structure
def _is_descendant(m: mujoco.MjModel, body: int, root: int) -> bool:
    while body != root:
        if body == 0:
            return False
        body = int(m.body_parentid[body])
    return True


def _depth(m: mujoco.MjModel, body: int) -> int:
    d = 0
    while body != 0:
        body = int(m.body_parentid[body])
        d += 1
    return d


def _resolve_root(m: mujoco.MjModel, root_body: str | None, source: str) -> int:
    if root_body is not None:
        bid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, root_body)
        if bid < 0:
            names = ", ".join(m.body(b).name for b in range(1, m.nbody))
            raise HandModelError(f"{source}: no body named '{root_body}'; bodies: {names}")
        return bid
    # Default: the deepest common ancestor of every articulated body, ignoring free bodies
    # (objects in a scene file) and their subtrees.
    free_roots = {int(m.jnt_bodyid[j]) for j in range(m.njnt) if m.jnt_type[j] == 0}
    movable = [
        int(m.jnt_bodyid[j])
        for j in range(m.njnt)
        if m.jnt_type[j] in (HINGE, SLIDE)
        and not any(_is_descendant(m, int(m.jnt_bodyid[j]), f) for f in free_roots)
    ]
    if not movable:
        raise HandModelError(
            f"{source}: the model has no hinge or slide joints: nothing to articulate"
        )
    chain = _ancestors(m, movable[0])
    for b in movable[1:]:
        anc = set(_ancestors(m, b))
        chain = [c for c in chain if c in anc]
    # chain is ordered from the body up to the world; the first entry is the deepest one.
    root = chain[0]
    # The root's own joints would be held fixed; step up one body so none is dropped
    # (a single finger chain keeps its first joint).
    if root in movable and m.body_parentid[root] != 0:
        root = int(m.body_parentid[root])
    if root == 0:
        raise HandModelError(
            f"{source}: the articulated bodies share no common ancestor below the world; "
            "pass root_body= to say which body is the hand's root"
        )
    return root


def _ancestors(m: mujoco.MjModel, body: int) -> list[int]:
    out = [body]
    while body != 0:
        body = int(m.body_parentid[body])
        out.append(body)
    return out


def _joint_range(m: mujoco.MjModel, j: int) -> tuple[float, float]:
    if m.jnt_limited[j]:
        lo, hi = m.jnt_range[j]
        return float(lo), float(hi)
    half = UNLIMITED_HINGE if m.jnt_type[j] == HINGE else UNLIMITED_SLIDE
    ref = float(m.qpos0[m.jnt_qposadr[j]])
    return ref - half, ref + half


def _actuated_joints(m: mujoco.MjModel) -> set[int]:
    return {
        int(m.actuator_trnid[a, 0])
        for a in range(m.nu)
        if m.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT
    }


def _find_couplings(
    m: mujoco.MjModel, joints: list[int], source: str
) -> dict[int, tuple[int, float, float, np.ndarray]]:
    """follower joint -> (driver joint, x0, y0, polynomial a0..a4)."""
    in_hand = set(joints)
    out: dict[int, tuple[int, float, float, np.ndarray]] = {}

    def add(follower: int, entry):
        if follower in out:
            raise HandModelError(
                f"{source}: joint '{m.joint(follower).name}' is coupled twice; "
                "over-constrained couplings are not supported"
            )
        out[follower] = entry

    # Joint equalities: y - y0 = a0 + a1 (x - x0) + ... + a4 (x - x0)^4, y0/x0 = qpos0.
    for e in range(m.neq):
        if m.eq_type[e] != mujoco.mjtEq.mjEQ_JOINT or not m.eq_active0[e]:
            continue
        follower, driver = int(m.eq_obj1id[e]), int(m.eq_obj2id[e])
        if follower not in in_hand:
            continue
        coeffs = np.array(m.eq_data[e, : COUPLING_DEGREE + 1], dtype=np.float64)
        y0 = float(m.qpos0[m.jnt_qposadr[follower]])
        if driver < 0:
            raise HandModelError(
                f"{source}: joint '{m.joint(follower).name}' is pinned by an equality; "
                "remove the joint or the equality"
            )
        x0 = float(m.qpos0[m.jnt_qposadr[driver]])
        add(follower, (driver, x0, y0, coeffs))

    # Narrow two-joint fixed tendons (Shadow/Adroit distal couplings).
    actuated = _actuated_joints(m)
    tendon_actuated = {
        int(m.actuator_trnid[a, 0])
        for a in range(m.nu)
        if m.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_TENDON
    }
    for t in range(m.ntendon):
        adr, num = int(m.tendon_adr[t]), int(m.tendon_num[t])
        if num != 2 or not m.tendon_limited[t] or t in tendon_actuated:
            continue
        if any(m.wrap_type[adr + i] != mujoco.mjtWrap.mjWRAP_JOINT for i in range(2)):
            continue
        ja, jb = int(m.wrap_objid[adr]), int(m.wrap_objid[adr + 1])
        if ja not in in_hand or jb not in in_hand:
            continue
        ca, cb = float(m.wrap_prm[adr]), float(m.wrap_prm[adr + 1])
        # Follower: the unactuated joint; if that does not decide, the one deeper in the tree.
        if (ja in actuated) != (jb in actuated):
            follower = jb if ja in actuated else ja
        else:
            deeper_b = _depth(m, int(m.jnt_bodyid[jb])) >= _depth(m, int(m.jnt_bodyid[ja]))
            follower = jb if deeper_b else ja
        driver = ja if follower == jb else jb
        cf, cd = (cb, ca) if follower == jb else (ca, cb)
        lo, hi = m.tendon_range[t]
        if abs(cf) < 1e-12 or (hi - lo) / abs(cf) > COUPLING_MAX_PLAY:
            continue
        mid = 0.5 * (lo + hi)
        coeffs = np.zeros(COUPLING_DEGREE + 1)
        coeffs[0] = mid / cf
        coeffs[1] = -cd / cf
        add(follower, (driver, 0.0, 0.0, coeffs))
    return out


def _narrow_driver_range(
    driver_range, x0, y0, poly, follower_range, m, follower, source
) -> np.ndarray:
    """Largest driver interval keeping the coupled joint inside its own limits."""
    xs = np.linspace(driver_range[0], driver_range[1], 4001)
    ys = y0 + np.polyval(poly[::-1], xs - x0)
    ok = (ys >= follower_range[0] - 1e-9) & (ys <= follower_range[1] + 1e-9)
    if not ok.any():
        raise HandModelError(
            f"{source}: coupled joint '{m.joint(follower).name}' cannot reach its limits "
            "for any value of its driver; check the coupling"
        )
    idx = np.flatnonzero(ok)
    lo, hi = xs[idx[0]], xs[idx[-1]]

    # Refine the cut ends by bisection so the limits are exact to ~1e-12.
    def bisect(a, b):  # a inside, b outside
        for _ in range(60):
            c = 0.5 * (a + b)
            yc = y0 + np.polyval(poly[::-1], c - x0)
            inside = follower_range[0] - 1e-12 <= yc <= follower_range[1] + 1e-12
            a, b = (c, b) if inside else (a, c)
        return a

    if idx[0] > 0:
        lo = bisect(xs[idx[0]], xs[idx[0] - 1])
    if idx[-1] < len(xs) - 1:
        hi = bisect(xs[idx[-1]], xs[idx[-1] + 1])
    return np.array([lo, hi])


# --------------------------------------------------------------------------- geometry
def _sphere_filling(prims: CollisionPrimitives) -> CollisionSpheres:
    """Spheres inside every primitive, in body frames (pairs filled in later)."""
    centers, radii, body = [], [], []
    for i in range(prims.count):
        c, r = primitive_spheres(int(prims.kind[i]), np.asarray(prims.size[i]))
        centers.append(c @ np.asarray(prims.rot[i]).T + np.asarray(prims.pos[i]))
        radii.append(r)
        body += [prims.body[i]] * len(r)
    return CollisionSpheres(
        centers=np.concatenate(centers).reshape(-1, 3),
        radii=np.concatenate(radii),
        body=tuple(body),
        pair_i=(),
        pair_j=(),
    )


def _self_collision_pairs(hand: HandModel) -> CollisionSpheres:
    """Sphere pairs on different links that are not kinematic neighbours (through links
    without geometry) and do not already overlap in the reference pose (q at 0, clipped)."""
    from kinematics.fk import forward_kinematics

    s = hand.spheres
    with_geometry = set(s.body)

    def geometric_parent(b: int) -> int:
        p = hand.body_parent[b]
        while p > 0 and p not in with_geometry:
            p = hand.body_parent[p]
        return max(p, 0)

    lo, hi = np.asarray(hand.q_range).T
    # One compiled call: eager FK would compile each of its ~200 small ops separately.
    poses = jax.jit(forward_kinematics)(
        hand, np.zeros(3), np.array([1.0, 0, 0, 0]), np.clip(0.0, lo, hi)
    )
    pos, rot = np.asarray(poses.pos), np.asarray(poses.rot)
    body = np.asarray(s.body)
    world = pos[body] + np.einsum("nij,nj->ni", rot[body], np.asarray(s.centers))
    radii = np.asarray(s.radii)
    gap = np.linalg.norm(world[:, None] - world[None], axis=-1) - radii[:, None] - radii[None]
    touching = {(int(body[a]), int(body[b])) for a, b in zip(*np.nonzero(gap < 0), strict=True)}
    pair_i, pair_j = [], []
    for a in range(len(body)):
        for b in range(a + 1, len(body)):
            ba, bb = int(body[a]), int(body[b])
            if ba == bb or geometric_parent(ba) == bb or geometric_parent(bb) == ba:
                continue
            if (ba, bb) in touching:
                continue
            pair_i.append(a)
            pair_j.append(b)
    return dataclasses.replace(s, pair_i=tuple(pair_i), pair_j=tuple(pair_j))


def _quat2mat(quat) -> np.ndarray:
    out = np.zeros(9)
    mujoco.mju_quat2Mat(out, np.asarray(quat, dtype=np.float64))
    return out.reshape(3, 3)


def _collision_primitives(m: mujoco.MjModel, bodies: list[int], hand_index: dict[int, int]):
    """One analytic primitive per collision geom, plus a surface mesh for sampling."""
    pos, rot, size, body, kind, names, meshes = [], [], [], [], [], [], []
    gt = {
        k: int(getattr(mujoco.mjtGeom, f"mjGEOM_{k}"))
        for k in ("SPHERE", "CAPSULE", "CYLINDER", "BOX", "ELLIPSOID", "MESH")
    }
    for g in range(m.ngeom):
        b = int(m.geom_bodyid[g])
        if b not in hand_index or not (m.geom_contype[g] or m.geom_conaffinity[g]):
            continue
        if m.geom_rbound[g] < MIN_GEOM_RADIUS:
            continue
        t = int(m.geom_type[g])
        gpos = np.array(m.geom_pos[g], dtype=np.float64)
        grot = _quat2mat(m.geom_quat[g])
        s = np.array(m.geom_size[g], dtype=np.float64)
        if t == gt["SPHERE"]:
            k, sz = SPHERE, [s[0], 0, 0]
            mesh = primitive_mesh(k, np.asarray(sz))
        elif t in (gt["CAPSULE"], gt["CYLINDER"]):
            # A cylinder is approximated by the capsule that encloses it.
            k, sz = CAPSULE, [s[0], s[1], 0]
            mesh = primitive_mesh(k, np.asarray(sz))
        elif t == gt["BOX"]:
            k, sz = BOX, list(s)
            mesh = primitive_mesh(k, s)
        elif t == gt["ELLIPSOID"]:
            k, sz = BOX, list(s)
            mesh = trimesh.creation.icosphere(3, 1.0)
            mesh.apply_transform(np.diag([s[0], s[1], s[2], 1.0]))
        elif t == gt["MESH"]:
            # Mesh geoms: primitive = the geom-frame bounding box MuJoCo computed; samples
            # come from the mesh's convex hull (what MuJoCo collides with).
            centre, half = m.geom_aabb[g, :3], m.geom_aabb[g, 3:]
            k, sz = BOX, list(half)
            did = int(m.geom_dataid[g])
            va, vn = int(m.mesh_vertadr[did]), int(m.mesh_vertnum[did])
            verts = np.array(m.mesh_vert[va : va + vn], dtype=np.float64)
            mesh = trimesh.Trimesh(verts).convex_hull
            mesh.apply_translation(-centre)
            gpos = gpos + grot @ centre
        else:
            continue  # planes, height fields, SDF geoms are not hand links
        tf = np.eye(4)
        tf[:3, :3], tf[:3, 3] = grot, gpos
        mesh.apply_transform(tf)
        pos.append(gpos)
        rot.append(grot)
        size.append(np.asarray(sz, dtype=np.float64))
        body.append(hand_index[b])
        kind.append(k)
        names.append(m.geom(g).name or f"geom{g}")
        meshes.append(mesh)
    prims = CollisionPrimitives(
        pos=np.array(pos).reshape(-1, 3),
        rot=np.array(rot).reshape(-1, 3, 3),
        size=np.array(size).reshape(-1, 3),
        body=tuple(body),
        kind=tuple(kind),
        names=tuple(names),
    )
    return prims, meshes


def _sample_surface(
    prims: CollisionPrimitives, meshes: list[trimesh.Trimesh], n_total: int
) -> SurfacePoints:
    """Evenly spread samples: area-proportional per body, farthest-point thinned."""
    if n_total <= 0:
        raise HandModelError(f"n_surface_points must be positive, got {n_total}")
    per_body: dict[int, list[int]] = {}
    for i, b in enumerate(prims.body):
        per_body.setdefault(b, []).append(i)
    if not per_body:
        raise HandModelError("the hand has no collision geoms to sample surface points from")
    area = {b: sum(meshes[i].area for i in idx) for b, idx in per_body.items()}
    counts = _allocate(area, n_total)

    pts_all, nrm_all, body_all = [], [], []
    for b in sorted(per_body):
        idx = per_body[b]
        want = counts[b]
        if want == 0:
            continue
        body_mesh = cast(trimesh.Trimesh, trimesh.util.concatenate([meshes[i] for i in idx]))
        cand, face = trimesh.sample.sample_surface(body_mesh, max(40 * want, 400), seed=b)
        nrm = body_mesh.face_normals[face]
        # Drop samples buried inside another primitive of the same link.
        keep = np.ones(len(cand), dtype=bool)
        for i in idx:
            local = (cand - prims.pos[i]) @ prims.rot[i]
            keep &= primitive_sdf_np(int(prims.kind[i]), np.asarray(prims.size[i]), local) > -1e-4
        if keep.sum() >= want:
            cand, nrm = cand[keep], nrm[keep]
        chosen = farthest_point_sampling(cand, want)
        pts_all.append(cand[chosen])
        nrm_all.append(nrm[chosen])
        body_all += [b] * want
    return SurfacePoints(
        points=np.concatenate(pts_all),
        normals=np.concatenate(nrm_all),
        body=tuple(body_all),
    )


def _allocate(area: dict[int, float], n_total: int) -> dict[int, int]:
    """Split n_total over bodies by area (largest remainder), at least a few per body."""
    bodies = sorted(area)
    floor_n = min(MIN_POINTS_PER_BODY, n_total // len(bodies))
    rest = n_total - floor_n * len(bodies)
    total = sum(area.values())
    share = {b: rest * area[b] / total for b in bodies}
    counts = {b: floor_n + int(np.floor(share[b])) for b in bodies}
    left = n_total - sum(counts.values())
    for b in sorted(bodies, key=lambda b: share[b] - np.floor(share[b]), reverse=True)[:left]:
        counts[b] += 1
    return counts


def _contact_candidates(
    contacts: tuple[ContactSpec, ...],
    bodies: list[int],
    hand_index: dict[int, int],
    m: mujoco.MjModel,
    source: str,
) -> ContactCandidates:
    from kinematics.geometry import FINGER_NAMES

    points, normals, body, finger = [], [], [], []
    for c in contacts:
        if c.finger not in FINGER_NAMES:
            raise HandModelError(
                f"contact candidate finger '{c.finger}' is not one of {FINGER_NAMES}"
            )
        bid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, c.body)
        if bid < 0 or bid not in hand_index:
            raise HandModelError(
                f"{source}: contact candidate body '{c.body}' is not a body of the hand"
            )
        n = np.asarray(c.normal, dtype=np.float64)
        norm = np.linalg.norm(n)
        if not np.isfinite(norm) or norm < 1e-9:
            raise HandModelError(f"contact candidate on '{c.body}' has a zero normal")
        points.append(np.asarray(c.pos, dtype=np.float64))
        normals.append(n / norm)
        body.append(hand_index[bid])
        finger.append(c.finger)
    return ContactCandidates(
        points=np.array(points).reshape(-1, 3),
        normals=np.array(normals).reshape(-1, 3),
        body=tuple(body),
        finger=tuple(finger),
    )
