"""The README's library example runs as written."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_library_example_runs():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"## Library example\n\n```python\n(.*?)```", text, re.S).group(1)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["q"].shape == (18,)
    assert scope["poses"].pos.shape == (23, 3)
    assert scope["tips"].shape == (6, 3)
