"""Procedural, part-labelled household objects with randomised realistic proportions.

Every generator takes a numpy Generator and returns {part name: closed mesh}; parts may
overlap where they join (the loader unions them). Metres, z up, resting on z = 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import trimesh

from jaxgrasp.objects._shapes import (
    box,
    concatenate,
    cylinder,
    frustum,
    revolve,
    rotate,
    tube_arc,
)

Parts = dict[str, trimesh.Trimesh]


def _side_handle(r_body: float, z_mid: float, major: float, minor: float, side: float = 1.0):
    """A C-shaped handle on the +x (side=1) or -x (side=-1) of a vertical body."""
    arc = tube_arc(major, minor, np.pi, -np.pi / 2)  # in xy-plane, bulging to +x
    arc = rotate(arc, np.pi / 2, [1, 0, 0])  # into the xz-plane
    if side < 0:
        arc = rotate(arc, np.pi, [0, 0, 1])
    # Ends sink 3 mm into the body wall so the union is solid.
    arc.apply_translation([side * (r_body - 0.003), 0.0, z_mid])
    return arc


def mug(rng: np.random.Generator) -> Parts:
    r = rng.uniform(0.035, 0.048)
    h = rng.uniform(0.085, 0.115)
    body = cylinder(r, h, center=(0, 0, h / 2))
    major = rng.uniform(0.26, 0.34) * h
    handle = _side_handle(r, h / 2, major, rng.uniform(0.0055, 0.007))
    return {"body": body, "handle": handle}


def hammer(rng: np.random.Generator) -> Parts:
    length = rng.uniform(0.25, 0.32)
    r = rng.uniform(0.012, 0.016)
    handle = cylinder(r, length, center=(0, 0, length / 2))
    hx, hy, hz = rng.uniform(0.09, 0.13), rng.uniform(0.024, 0.032), rng.uniform(0.028, 0.038)
    head = box((hx, hy, hz), center=(rng.uniform(-0.015, 0.015), 0, length - 0.4 * hz))
    return {"handle": handle, "head": head}


def bottle(rng: np.random.Generator) -> Parts:
    r = rng.uniform(0.03, 0.042)
    h = rng.uniform(0.13, 0.18)
    shoulder = rng.uniform(0.025, 0.04)
    rn = rng.uniform(0.012, 0.015)
    profile = [(0, 0), (r, 0), (r, h - shoulder), (rn + 0.002, h), (0, h)]
    body = revolve(profile)
    hn = rng.uniform(0.025, 0.04)
    neck = cylinder(rn, hn + 0.004, center=(0, 0, h + hn / 2 - 0.002))
    hc = rng.uniform(0.010, 0.014)
    # A screw cap sunk 4 mm onto the neck; narrow enough that its lower corners sit inside
    # the neck's box whatever that box's rotation about the axis.
    cap = cylinder(0.68 * rn, hc, center=(0, 0, h + hn - 0.004 + hc / 2))
    return {"body": body, "neck": neck, "cap": cap}


def knife(rng: np.random.Generator) -> Parts:
    lh = rng.uniform(0.09, 0.12)
    handle = box(
        (lh, rng.uniform(0.022, 0.028), rng.uniform(0.016, 0.02)), center=(lh / 2, 0, 0.01)
    )
    lb = rng.uniform(0.12, 0.18)
    wb = rng.uniform(0.028, 0.04)
    blade = box((lb + 0.01, wb, 0.005), center=(lh + lb / 2 - 0.005, 0.0, 0.01))
    return {"handle": handle, "blade": blade}


def pan(rng: np.random.Generator) -> Parts:
    r = rng.uniform(0.1, 0.125)
    h = rng.uniform(0.04, 0.055)
    wall = 0.006
    profile = [(0, 0), (r, 0), (r, h), (r - wall, h), (r - wall, wall), (0, wall)]
    dish = revolve(profile)
    lh = rng.uniform(0.15, 0.19)
    handle = box(
        (lh + 0.01, rng.uniform(0.022, 0.03), 0.016), center=(r + lh / 2 - 0.005, 0, h - 0.012)
    )
    return {"pan": dish, "handle": handle}


def kettle(rng: np.random.Generator) -> Parts:
    r = rng.uniform(0.07, 0.085)
    h = rng.uniform(0.13, 0.17)
    profile = [(0, 0), (r, 0), (r, 0.75 * h), (0.7 * r, h), (0, h)]
    body = revolve(profile)
    lid = cylinder(0.55 * r, 0.016, center=(0, 0, h + 0.004))
    handle = _side_handle(r, 0.5 * h, rng.uniform(0.045, 0.055), rng.uniform(0.007, 0.009), -1)
    spout_len = rng.uniform(0.07, 0.09)
    spout = frustum(0.018, 0.009, spout_len)
    spout = rotate(spout, np.deg2rad(rng.uniform(40, 55)), [0, 1, 0])
    spout.apply_translation([r - 0.012, 0, 0.3 * h])
    return {"body": body, "lid": lid, "handle": handle, "spout": spout}


def spray_bottle(rng: np.random.Generator) -> Parts:
    r = rng.uniform(0.03, 0.036)
    h = rng.uniform(0.15, 0.18)
    body = cylinder(r, h, center=(0, 0, h / 2))
    hl = rng.uniform(0.075, 0.09)
    head = box((hl, 0.034, 0.04), center=(hl / 2 - r + 0.01, 0, h + 0.018))
    tip = cylinder(0.008, 0.02, center=(hl - r + 0.018, 0, h + 0.02), axis=(1, 0, 0))
    nozzle = concatenate(head, tip)
    trigger = box(
        (0.014, 0.02, 0.045),
        center=(hl - r - 0.008, 0, h - 0.012),
        rotation=trimesh.transformations.rotation_matrix(0.25, [0, 1, 0])[:3, :3],
    )
    return {"body": body, "trigger": trigger, "nozzle": nozzle}


def screwdriver(rng: np.random.Generator) -> Parts:
    lh = rng.uniform(0.09, 0.12)
    rh = rng.uniform(0.014, 0.018)
    handle = cylinder(rh, lh, center=(0, 0, lh / 2))
    ls = rng.uniform(0.08, 0.14)
    shaft = cylinder(rng.uniform(0.0035, 0.0045), ls + 0.01, center=(0, 0, lh + ls / 2 - 0.005))
    return {"handle": handle, "shaft": shaft}


def lamp(rng: np.random.Generator) -> Parts:
    rb = rng.uniform(0.07, 0.09)
    hb = rng.uniform(0.015, 0.022)
    base = cylinder(rb, hb, center=(0, 0, hb / 2))
    hp = rng.uniform(0.2, 0.25)
    pole = cylinder(rng.uniform(0.008, 0.011), hp + 0.01, center=(0, 0, hb + hp / 2 - 0.005))
    hs = rng.uniform(0.08, 0.1)
    shade = frustum(rng.uniform(0.075, 0.09), rng.uniform(0.04, 0.05), hs)
    shade.apply_translation([0, 0, hb + hp - 0.02])
    return {"base": base, "pole": pole, "shade": shade}


def drill(rng: np.random.Generator) -> Parts:
    lb = rng.uniform(0.16, 0.2)
    rb = rng.uniform(0.03, 0.035)
    hg = rng.uniform(0.1, 0.12)
    zb = 0.04 + hg
    body = cylinder(rb, lb, center=(0.02, 0, zb), axis=(1, 0, 0))
    tilt = trimesh.transformations.rotation_matrix(-0.2, [0, 1, 0])[:3, :3]
    grip = box((0.036, 0.03, hg + 0.02), center=(-0.01, 0, 0.04 + hg / 2), rotation=tilt)
    battery = box((0.075, 0.06, 0.042), center=(-0.01, 0, 0.021))
    return {"grip": grip, "body": body, "battery": battery}


def headphones(rng: np.random.Generator) -> Parts:
    major = rng.uniform(0.075, 0.088)
    band = tube_arc(major, rng.uniform(0.008, 0.01), np.pi, 0.0)  # upper half, xy-plane
    band = rotate(band, np.pi / 2, [1, 0, 0])  # arch in the xz-plane, opening down
    rc = rng.uniform(0.035, 0.042)
    t = 0.03
    cups = concatenate(
        cylinder(rc, t, center=(-major, 0, -0.02), axis=(1, 0, 0)),
        cylinder(rc, t, center=(major, 0, -0.02), axis=(1, 0, 0)),
    )
    band.apply_translation([0, 0, 0.0])
    return {"band": band, "cups": cups}


def bowl(rng: np.random.Generator) -> Parts:
    r = rng.uniform(0.06, 0.085)
    h = rng.uniform(0.05, 0.07)
    wall = 0.006
    k = np.linspace(0, np.pi / 2, 12)
    outer = [(r * np.sin(a), h * (1 - np.cos(a))) for a in k]
    inner = [((r - wall) * np.sin(a), wall + (h - wall) * (1 - np.cos(a))) for a in k[::-1]]
    profile = [(0, 0)] + outer[1:] + inner[:-1] + [(0, wall)]
    return {"bowl": revolve(profile)}


def lidded_box(rng: np.random.Generator) -> Parts:
    x, y, z = rng.uniform(0.1, 0.16), rng.uniform(0.08, 0.12), rng.uniform(0.05, 0.09)
    body = box((x, y, z), center=(0, 0, z / 2))
    lid = box((0.97 * x, 0.97 * y, 0.016), center=(0, 0, z + 0.003))
    return {"box": body, "lid": lid}


CATEGORIES: dict[str, Callable[[np.random.Generator], Parts]] = {
    "mug": mug,
    "hammer": hammer,
    "bottle": bottle,
    "knife": knife,
    "pan": pan,
    "kettle": kettle,
    "spray_bottle": spray_bottle,
    "screwdriver": screwdriver,
    "lamp": lamp,
    "drill": drill,
    "headphones": headphones,
    "bowl": bowl,
    "lidded_box": lidded_box,
}
