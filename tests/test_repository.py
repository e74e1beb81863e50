"""The repository stands on its own: nothing tracked points outside it, and the public library
API loads without the app's heavy dependencies."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Spelled in pieces so that this file does not match itself.
OUTSIDE = [
    "../" + "shared",
    "/work/" + "shared",
    "REASONRANK_" + "SHARED_DATA",
    "DESIGN" + ".md",
    "reasonrank-" + "spec",
    "toolchain-" + "ml.md",
    "toolchain-" + "ui.md",
    "anchors" + ".md",
    '"shared" / ' + '"data"',
]
HEAVY = ("gradio", "torch", "transformers", "sqlalchemy", "sqlmodel", "vllm", "trl", "peft")


def _tracked_text_files() -> list[Path]:
    names = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    )
    files = []
    for name in filter(None, names):
        path = REPO / name
        if path.is_file() and b"\0" not in path.read_bytes()[:8192]:
            files.append(path)
    return files


def test_no_tracked_file_refers_outside_the_repository():
    pattern = re.compile("|".join(re.escape(s) for s in OUTSIDE))
    found = []
    for path in _tracked_text_files():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:120]}")
    assert len(_tracked_text_files()) > 100  # the walk really saw the repository
    assert found == []


def test_public_api_loads_without_heavy_libraries():
    code = (
        "import sys, reasonrank\n"
        "values = [getattr(reasonrank, name) for name in reasonrank.__all__]\n"
        f"print(len(values), [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    count, heavy = out.stdout.split(" ", 1)
    assert int(count) >= 20 and heavy.strip() == "[]"


def test_public_api_names_resolve_to_their_definitions():
    import reasonrank
    from reasonrank.metrics import ndcg_at_k
    from reasonrank.window import rerank

    assert reasonrank.rerank is rerank and reasonrank.ndcg_at_k is ndcg_at_k
    assert "rerank" in dir(reasonrank)
    with pytest.raises(AttributeError, match="no_such_name"):
        reasonrank.no_such_name  # noqa: B018


def _readme_library_block() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Library\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_library_example_prints_what_its_comments_say():
    """Each `print(...)  # expected` line of the README's example prints the expected text."""
    code = _readme_library_block()
    expected = [
        re.split(r"[:…]", line.split("  # ", 1)[1])[0].strip()
        for line in code.splitlines()
        if line.startswith("print(") and "  # " in line
    ]
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    printed = out.stdout.splitlines()
    assert len(expected) == len(printed) >= 3
    for want, got in zip(expected, printed):
        assert got.startswith(want), (want, got)
