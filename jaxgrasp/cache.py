"""Where jaxgrasp keeps what it can rebuild: convex decompositions and compiled programs.

Everything lives under `$JAXGRASP_CACHE` (default `~/.cache/jaxgrasp`); deleting the
folder costs only the time to rebuild it.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

# Compiled programs kept on disk, least recently used evicted beyond this.
COMPILATION_CACHE_BYTES = 2 << 30


def cache_dir() -> Path:
    """The cache root: `$JAXGRASP_CACHE`, or `~/.cache/jaxgrasp`."""
    return Path(os.environ.get("JAXGRASP_CACHE", Path.home() / ".cache" / "jaxgrasp"))


def enable_compilation_cache(path: str | Path | None = None) -> Path | None:
    """Keep XLA's compiled programs on disk (JAX's persistent compilation cache), so a
    later process that runs the same programs loads them instead of compiling again:
    the synthesis optimizer takes 10-15 s to compile on a 2-core CPU and 40-70 s on a
    GPU, and every `jaxgrasp` command, resumed dataset run or script repeats it.

    `path` defaults to `cache_dir() / "xla"`. A cache the caller already chose wins
    (`JAX_COMPILATION_CACHE_DIR`, or `jax_compilation_cache_dir` set in this process), and
    `JAX_ENABLE_COMPILATION_CACHE=false` turns caching off (JAX's own switch). Programs
    that compiled in under a second are not stored (JAX's default threshold). Returns the
    folder in use, or None when caching is off or the folder cannot be created.
    Call it before the first compilation; the `jaxgrasp` command line does.
    """
    # getattr: the flags are attributes JAX sets at run time, which its type stubs omit.
    if not getattr(jax.config, "jax_enable_compilation_cache"):  # noqa: B009
        return None
    chosen = getattr(jax.config, "jax_compilation_cache_dir")  # noqa: B009
    if chosen:
        return Path(chosen)
    folder = Path(path) if path is not None else cache_dir() / "xla"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home: run uncached rather than fail
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_compilation_cache_max_size", COMPILATION_CACHE_BYTES)
    return folder
