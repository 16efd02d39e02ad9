"""Atomic file writes: a reader, or a run killed mid-write, never sees a partial file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def write_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed to a temporary name in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]  # stub: **arrays vs allow_pickle
    os.replace(tmp, path)


def write_json_atomic(path: Path, data) -> None:
    """JSON (numpy scalars and arrays converted) to a temporary name, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serializable: {type(x)}")
