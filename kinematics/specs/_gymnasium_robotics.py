"""Locate model files shipped inside the gymnasium-robotics package (without importing it:
its import prints notices and pulls in gymnasium)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def asset_path(*parts: str) -> Path:
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the gymnasium-robotics package is not installed; it ships the Shadow and Adroit "
            "hand models (pip install gymnasium-robotics)"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    return root.joinpath("envs", "assets", *parts)
