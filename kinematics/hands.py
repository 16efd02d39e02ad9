"""Registry of named hands: `load_hand("shadow")`.

Adding a hand = write a `HandSpec` (see `kinematics/specs/shadow.py`) and register it,
either here or at run time with `register_hand`.
"""

from __future__ import annotations

from kinematics.hand_model import HandModel, HandModelError
from kinematics.spec import HandSpec
from kinematics.specs.adroit import ADROIT
from kinematics.specs.shadow import SHADOW

_REGISTRY: dict[str, HandSpec] = {spec.name: spec for spec in (SHADOW, ADROIT)}


def available_hands() -> tuple[str, ...]:
    """Names accepted by `load_hand`."""
    return tuple(sorted(_REGISTRY))


def register_hand(spec: HandSpec, *, overwrite: bool = False) -> None:
    """Make `spec` loadable by name."""
    if spec.name in _REGISTRY and not overwrite:
        raise HandModelError(f"a hand named '{spec.name}' is already registered")
    _REGISTRY[spec.name] = spec


def hand_spec(name: str) -> HandSpec:
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name.lower().endswith((".xml", ".urdf")) or "/" in name:
        # A file needs what the file does not say (root body, contact candidates, poses).
        raise HandModelError(
            f"'{name}' is a file path, but hands are loaded by registered name "
            f"({', '.join(available_hands())}); for a new hand file write a "
            "kinematics.HandSpec (model file, root body, contact candidates, poses; see "
            "kinematics/specs/shadow.py) and register_hand it, or build the bare model "
            "with HandModel.from_mjcf / from_urdf"
        )
    raise HandModelError(f"unknown hand '{name}'; available hands: {', '.join(available_hands())}")


def load_hand(name_or_spec: str | HandSpec, n_surface_points: int | None = None) -> HandModel:
    """Build the named (or given) hand with its contact candidates and poses."""
    spec = name_or_spec if isinstance(name_or_spec, HandSpec) else hand_spec(name_or_spec)
    try:
        path = spec.model_file()
    except FileNotFoundError as err:
        raise HandModelError(str(err)) from None
    build = HandModel.from_urdf if str(path).lower().endswith(".urdf") else HandModel.from_mjcf
    return build(
        path,
        spec.root_body,
        contacts=spec.contacts,
        n_surface_points=n_surface_points or spec.n_surface_points,
        name=spec.name,
        spec=spec,
    )
