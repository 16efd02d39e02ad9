"""Opening a generated grasp out of the object's cloud (`jaxgrasp._open_to_clear`,
`generate(..., open_to_clear=True)`): which finger each body and joint belongs to, and
the least palm back-off and finger openings that clear a sphere's cloud."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from conftest import random_q, random_quat
from test_hand_depth import sphere_cloud

from jaxgrasp._hand_depth import cloud_sdf
from jaxgrasp._open_to_clear import (
    FINGER_CLEARANCE,
    FINGER_OPEN_STEPS,
    PALM_BACK_STEPS,
    PALM_CLEARANCE,
    TIE,
    FingerGroups,
    open_to_clear,
)
from jaxgrasp.sdf import sdf_query
from kinematics import forward_kinematics, points_to_world
from sim.grasps import back_off, rotate


def test_finger_groups_follow_each_finger_from_its_tip_to_the_palm(shadow):
    groups = FingerGroups.of(shadow)
    assert groups.names == ("thumb", "index", "middle", "ring", "little")
    finger_of_body = {
        name: (groups.names[g] if g >= 0 else "palm")
        for name, g in zip(shadow.body_names, groups.body, strict=True)
    }
    assert finger_of_body["robot0:palm"] == "palm"
    assert finger_of_body["robot0:ffknuckle"] == finger_of_body["robot0:ffdistal"] == "index"
    assert finger_of_body["robot0:lfmetacarpal"] == "little"
    assert finger_of_body["robot0:thbase"] == finger_of_body["robot0:thdistal"] == "thumb"
    finger_of_q = dict(zip(shadow.q_names, groups.q, strict=True))
    assert groups.names[finger_of_q["robot0:FFJ3"]] == "index"
    assert groups.names[finger_of_q["robot0:THJ4"]] == "thumb"
    assert groups.names[finger_of_q["robot0:LFJ4"]] == "little"
    # The Shadow Hand's wrist is held still: every independent joint is a finger's.
    assert np.all(groups.q >= 0) and groups.q.shape == (shadow.n_q,)


@jax.jit
def _surface_heights(shadow, grid, pos, quat, q):
    """Every surface sample's height above the cloud, per pose. Shape: (n, n_surface)."""

    def one(p, r, qq):
        poses = forward_kinematics(shadow, p, r, qq)
        surface = points_to_world(poses, shadow.surface.body, jnp.asarray(shadow.surface.points))
        return sdf_query(grid, surface)[0]

    return jax.vmap(one)(pos, quat, q)


def _expected_step(shadow, grid, groups, pos, quat, q, group, clearance):
    """The first of the candidate poses whose group clears `clearance`, else the first
    within TIE of the highest (the rule, computed pose by pose)."""
    k = len(pos)
    height = np.asarray(
        _surface_heights(
            shadow,
            grid,
            jnp.asarray(pos, jnp.float32),
            jnp.asarray(np.broadcast_to(quat, (k, 4)), jnp.float32),
            jnp.asarray(q, jnp.float32),
        )
    )
    member = groups.body[np.asarray(shadow.surface.body)] == group
    lowest = height[:, member].min(axis=1)
    clear = np.flatnonzero(lowest >= clearance)
    if len(clear):
        return int(clear[0])
    return int(np.flatnonzero(lowest >= lowest.max() - TIE)[0])


def test_open_to_clear_takes_the_least_steps_that_clear_the_cloud(shadow):
    cloud, normals = sphere_cloud()
    grid = jax.tree.map(jnp.asarray, cloud_sdf(cloud, normals).bucketed())
    groups = FingerGroups.of(shadow)
    rng = np.random.default_rng(5)
    n = 8
    quat = random_quat(rng, n)
    # Palms 0-6 cm from a 5 cm ball's centre, facing it: hands in and around the ball.
    palm_normal = rotate(quat, np.asarray(shadow.spec.palm.normal))
    pos = -palm_normal * rng.uniform(0.0, 0.06, size=(n, 1)) - 0.03 * rng.normal(size=(n, 3))
    q = random_q(shadow, rng, n)
    pos[-1] = (0.5, 0.5, 0.5)  # far outside the cloud (and its grid): left as it is
    new_pos, new_q, back, opening = open_to_clear(shadow, grid, pos, quat, q)
    assert new_pos.shape == (n, 3) and new_q.shape == q.shape
    assert back.shape == (n,) and opening.shape == (n, len(groups.names))
    assert back.max() > 0 and opening.max() > 0 and (opening == 0).any()  # the test bites
    # The palm moved back along its normal only; joints only towards the open pose.
    np.testing.assert_allclose(new_pos, pos - back[:, None] * palm_normal, atol=1e-12)
    open_q = np.asarray(shadow.init_q("open"))
    assert np.all(np.abs(new_q - open_q) <= np.abs(q - open_q) + 1e-12)
    np.testing.assert_array_equal(new_pos[-1], pos[-1])
    np.testing.assert_array_equal(new_q[-1], q[-1])
    assert back[-1] == 0 and np.all(opening[-1] == 0)
    for i in range(n):
        # The palm first, with the joints as given ...
        backed = pos[i] - PALM_BACK_STEPS[:, None] * palm_normal[i]
        qs = np.broadcast_to(q[i], (len(PALM_BACK_STEPS), shadow.n_q))
        palm = _expected_step(shadow, grid, groups, backed, quat[i], qs, -1, PALM_CLEARANCE)
        assert back[i] == PALM_BACK_STEPS[palm]
        # ... then each finger from where the palm went, each joint of the finger
        # backed off by the finger's opening.
        opened = back_off(shadow, np.broadcast_to(q[i], qs.shape), FINGER_OPEN_STEPS[:, None])
        there = np.broadcast_to(new_pos[i], backed.shape)
        for f in range(len(groups.names)):
            step = _expected_step(shadow, grid, groups, there, quat[i], opened, f, FINGER_CLEARANCE)
            assert opening[i, f] == FINGER_OPEN_STEPS[step], (i, groups.names[f])
            np.testing.assert_array_equal(new_q[i, groups.q == f], opened[step, groups.q == f])
