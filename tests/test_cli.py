"""The `jaxgrasp` command line, run as a user would (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "jaxgrasp.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_hand_command_writes_png_and_json(tmp_path):
    res = _run("hand", "shadow", "--out", str(tmp_path), "--pose", "wrap")
    assert res.returncode == 0, res.stderr
    png = tmp_path / "shadow_wrap.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000
    info = json.loads((tmp_path / "shadow.json").read_text())
    assert info["n_q"] == 18 and info["n_joints"] == 22
    assert {c["finger"] for c in info["contact_candidates"]} == {
        "thumb",
        "index",
        "middle",
        "ring",
        "little",
        "palm",
    }
    assert len(info["pose"]["q"]) == 18
    coupled = [j for j in info["joints"] if "coupled_to" in j]
    assert {j["name"] for j in coupled} == {f"robot0:{f}J0" for f in ("FF", "MF", "RF", "LF")}


@pytest.mark.parametrize(
    "args, message",
    [
        (("hand", "allegro"), "unknown hand 'allegro'"),
        (("hand", "shadow", "--pose", "fist"), "has no initial pose 'fist'"),
    ],
)
def test_hand_command_bad_input(tmp_path, args, message):
    res = _run(*args, "--out", str(tmp_path))
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_objects_list_and_export(tmp_path):
    res = _run("objects", "list")
    assert res.returncode == 0, res.stderr
    assert len([line for line in res.stdout.splitlines() if line.strip()]) >= 12
    assert "mug" in res.stdout and "handle" in res.stdout
    out = tmp_path / "mug.glb"
    res = _run("objects", "export", "mug", "--seed", "3", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert out.read_bytes()[:4] == b"glTF"
    res = _run("object", str(out), "--json", str(tmp_path / "mug.json"))
    assert res.returncode == 0, res.stderr
    info = json.loads((tmp_path / "mug.json").read_text())
    assert {p["name"]: p["category"] for p in info["parts"]}["handle"] == "L-shaped"


@pytest.mark.parametrize(
    "args, message",
    [
        (("objects", "export", "teapot", "--out", "x.glb"), "unknown object category 'teapot'"),
        (("object", "missing.stl"), "object mesh not found"),
        (("object", "README.md"), "unsupported format"),
    ],
)
def test_object_commands_bad_input(tmp_path, args, message):
    (tmp_path / "README.md").write_text("not a mesh")
    res = _run(*args, cwd=tmp_path)
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_run_summary_says_what_was_not_measured(tmp_path, capsys):
    from jaxgrasp.cli import _print_run

    _print_run({"num_grasps": 4, "grasps_per_s": 0.5, "pictures": []}, tmp_path)
    unvalidated = capsys.readouterr().out
    assert "not run (add --validate" in unvalidated and "None" not in unvalidated
    whole = {"num_grasps": 4, "num_valid": 1, "valid_fraction": 0.25, "pta": None}
    _print_run({**whole, "pga": None, "grasps_per_s": 0.5, "pictures": []}, tmp_path)
    validated = capsys.readouterr().out
    assert "pta                — (no target part)" in validated and "None" not in validated
    assert "valid_fraction     0.25" in validated and "not run" not in validated


_CACHE_PROBE = """
import sys
import jax
import jaxgrasp.cli

jaxgrasp.cli.main(["hands"])
jax.jit(lambda x: x * 2 + 1)(jax.numpy.ones(3)).block_until_ready()
print("cache:", jax.config.jax_compilation_cache_dir)
"""


@pytest.mark.parametrize("setting", ["default", "off", "caller"])
def test_cli_keeps_compiled_programs_in_the_jaxgrasp_cache(tmp_path, setting):
    """The command line turns on JAX's persistent compilation cache under
    $JAXGRASP_CACHE/xla, so a second run loads the optimizer instead of compiling it; a
    cache the caller set wins, and JAX's own switch turns it off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env["JAXGRASP_CACHE"] = str(tmp_path / "cache")
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # store even this tiny program
    if setting == "off":
        env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    if setting == "caller":
        env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path / "mine")
    res = subprocess.run(
        [sys.executable, "-c", _CACHE_PROBE], capture_output=True, text=True, env=env, timeout=300
    )
    assert res.returncode == 0, res.stderr
    xla = tmp_path / "cache" / "xla"
    if setting == "default":
        assert f"cache: {xla}" in res.stdout
        assert any(xla.iterdir()), "no compiled program was stored"
    elif setting == "off":
        assert "cache: None" in res.stdout
        assert not xla.exists()
    else:
        assert f"cache: {tmp_path / 'mine'}" in res.stdout
        assert any((tmp_path / "mine").iterdir()) and not xla.exists()
