"""Shared helpers for benchmark scripts: environment record, timing, JSON output."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def environment() -> dict[str, Any]:
    """Versions and hardware, stored with every result file."""
    import jax
    import mujoco

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "mujoco": mujoco.__version__,
    }
    for mod in ("jaxlib", "numpy", "optax", "flax", "trimesh"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - optional
            pass
    return {
        "versions": versions,
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        # e.g. "NVIDIA H100 80GB HBM3" (str(device) only says "cuda:0").
        "jax_device_kind": jax.devices()[0].device_kind,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def compile_seconds(jitted, *args) -> tuple[Callable, float]:
    """Compile `jitted` for `args` (lower + compile) and return (executable, seconds)."""
    t0 = time.perf_counter()
    exe = jitted.lower(*args).compile()
    return exe, time.perf_counter() - t0


def wall_seconds(fn: Callable[[], Any], repeats: int = 20, warmup: int = 2) -> dict[str, float]:
    """Median and fastest wall time of `fn()` (which must block until its result is
    ready). On a shared VM the median can carry stretches where the host takes a core
    away; the fastest run is the machine's speed, the median what a user sees."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median": statistics.median(times), "min": min(times)}


def median_seconds(fn: Callable[[], Any], repeats: int = 20, warmup: int = 2) -> float:
    """Median wall time of `fn()` (which must block until its result is ready)."""
    return wall_seconds(fn, repeats, warmup)["median"]


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """Atomically write `benchmarks/results/{name}.json`."""
    from jaxgrasp._io import write_json_atomic

    path = RESULTS / f"{name}.json"
    write_json_atomic(path, payload)
    return path
