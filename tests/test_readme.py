"""The README's library example runs as written."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_library_examples_run(tmp_path, monkeypatch):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Library example", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), scope)
    assert scope["q"].shape == (18,)
    assert scope["poses"].pos.shape == (23, 3)
    assert scope["tips"].shape == (6, 3)
    assert scope["mug"].part_categories == ("shaft-like", "L-shaped")
    assert scope["d"].shape == (2,) and float(scope["d"][0]) < 0 < float(scope["d"][1])
    assert set(scope["obj"].part_names) == {"body", "handle"}
