"""The Space folder: `make space`'s build step, its front matter as huggingface_hub reads it, its
requirements checked against the recorded Python 3.10 resolve (bench/space_resolve.py does the
live one), and its code compiled by a real CPython 3.10 when the machine has one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import build_space  # noqa: E402

#: ZeroGPU's listed PyTorch versions (hub-docs, spaces-zerogpu.md)
ZEROGPU_TORCH = ("2.1.0", "2.1.1", "2.1.2", "2.2.0", "2.2.2", "2.4.0", "2.5.1", "2.6.0", "2.7.1", "2.8.0")
PIN = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", re.MULTILINE)


def pins(path: Path) -> dict[str, str]:
    return {name.lower().replace("_", "-"): version for name, version in PIN.findall(path.read_text(encoding="utf-8"))}


@pytest.fixture(scope="module")
def space(tmp_path_factory) -> Path:
    return build_space.build(tmp_path_factory.mktemp("space") / "space")


def test_folder_holds_the_app_and_its_packages(space):
    for path in ("app.py", "reasonrank/arena.py", "reasonrank/backends/zerogpu.py", "ui/arena.py", "db/engine.py"):
        assert (space / path).is_file(), path
    assert (space / "db/migrations").is_dir() and any((space / "db/sample").iterdir())
    assert not list(space.rglob("__pycache__")) and not list(space.rglob("*.db"))
    assert (space / "requirements.txt").read_text() == (REPO / "requirements-space.txt").read_text()


def test_front_matter_parses_with_huggingface_hub(space):
    from huggingface_hub import RepoCard

    card = RepoCard.load(space / "README.md", repo_type="space")
    data = card.data.to_dict()
    assert data["sdk"] == "gradio" and data["app_file"] == "app.py"
    assert data["python_version"] == "3.10"  # a string: YAML would read 3.10 as the float 3.1
    assert data["hf_oauth"] is True and data["suggested_hardware"] == "zero-a10g"
    assert data["sdk_version"] == pins(space / "requirements.txt")["gradio"]
    declared = {entry["model"] for entry in build_space.json.loads((space / "rerankers.json").read_text())}
    assert set(data["models"]) == declared == set(data["preload_from_hub"]) and "liuwenhan/reasonrank-7B" in declared
    assert "# ReasonRank Studio" in card.text


def test_space_pins_match_the_recorded_python_310_resolve():
    wanted = pins(REPO / "requirements-space.txt")
    resolved = pins(REPO / "space" / "resolve-py310.txt")
    assert len(resolved) > 50, "the record holds the whole resolve, dependencies included"
    assert {name: resolved.get(name) for name in wanted} == wanted
    assert wanted["torch"] in ZEROGPU_TORCH
    assert "--python-version 3.10" in (REPO / "space" / "resolve-py310.txt").read_text()
    assert pins(REPO / "requirements.txt")["torch"] == "2.13.0"  # the CPU development pins stay


def _python310() -> tuple[str, dict[str, str]] | None:
    """A runnable CPython 3.10 and its environment (a pyenv shim needs PYENV_VERSION), or None."""
    found = shutil.which("python3.10")
    if found is None:
        return None
    env = dict(os.environ)
    if shutil.which("pyenv"):
        bare = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True).stdout.split()
        env["PYENV_VERSION"] = next((v for v in bare if v.startswith("3.10.")), env.get("PYENV_VERSION", ""))
    probe = subprocess.run(
        [found, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, env=env
    )
    return (found, env) if probe.stdout.strip() == "(3, 10)" else None


def test_space_code_compiles_on_python_310(space):
    python310 = _python310()
    if python310 is None:
        pytest.skip("no runnable python3.10 here (vermin in `make lint` still checks the 3.10 floor)")
    done = subprocess.run(
        [python310[0], "-m", "compileall", "-q", str(space)], capture_output=True, text=True, env=python310[1]
    )
    assert done.returncode == 0, done.stdout + done.stderr
