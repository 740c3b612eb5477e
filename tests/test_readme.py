"""Every ```python block of README.md runs as written, in order, in one namespace, in an empty folder.

A block whose first line starts with ``# needs:`` names hardware it cannot have here (a GPU and a built TensorRT
engine); it is compiled (so a syntax error still fails) but not run. Only such blocks may be left out.
"""
from __future__ import annotations

import os
import re

import pytest
import torch

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
NEEDS = "# needs:"


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python fenced blocks of a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_python_blocks_are_found():
    blocks = python_blocks("x\n```python\na = 1\n```\n```bash\nls\n```\n```python\nb = 2\n```\n")
    assert blocks == ["a = 1\n", "b = 2\n"]


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    with open(README, encoding="utf-8") as f:
        blocks = python_blocks(f.read())
    assert blocks, "README.md has no ```python block"
    monkeypatch.chdir(tmp_path)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    namespace: dict = {"__name__": "__readme__"}
    ran, left_out = 0, []
    try:
        for i, code in enumerate(blocks):
            compiled = compile(code, f"README.md python block {i + 1}", "exec")
            if code.startswith(NEEDS):
                left_out.append(code.splitlines()[0])
                continue
            exec(compiled, namespace)  # noqa: S102 - the README's own code
            ran += 1
    finally:
        torch.set_num_threads(before)
    assert ran >= 1 and len(left_out) <= 1, (ran, left_out)
    # the first block really ran: its outputs exist with the shapes it promises
    assert tuple(namespace["out"].logits.shape) == (1, 174) and len(namespace["out"].masks) == 10
    assert (tmp_path / "my_model.pth").is_file()
