"""Resolve the Space's requirements for ZeroGPU's interpreter without installing anything.

    python bench/space_resolve.py            # prints the figures, rewrites space/resolve-py310.txt

Runs `pip install --dry-run` for CPython 3.10 on manylinux x86_64 with binary wheels only,
against PyPI alone (--isolated: no local indexes, constraints or find-links from this machine's
pip config), and records every resolved distribution as name==version. tests/test_space_build.py
compares requirements-space.txt with that record without the network.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "requirements-space.txt"
RECORD = REPO / "space" / "resolve-py310.txt"
# torch 2.8's CUDA dependencies are manylinux_2_27/2_28 wheels; pip only takes the tags it is given
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux2014_x86_64"]


def command(report: Path, target: Path) -> list[str]:
    platforms = [arg for tag in PLATFORMS for arg in ("--platform", tag)]
    return [
        sys.executable, "-m", "pip", "--isolated", "install", "--dry-run", "--quiet",
        "--python-version", "3.10", "--only-binary=:all:", *platforms,
        "--index-url", "https://pypi.org/simple", "--target", str(target),
        "--report", str(report), "-r", str(REQUIREMENTS),
    ]  # fmt: skip


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report, target = Path(tmp) / "report.json", Path(tmp) / "target"
        argv = command(report, target)
        began = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True)
        seconds = time.perf_counter() - began
        if done.returncode != 0:
            print(done.stdout + done.stderr, file=sys.stderr)
            print(f"resolve FAILED after {seconds:.1f} s", file=sys.stderr)
            return 1
        installed = json.loads(report.read_text())["install"]
    pins = sorted(f"{item['metadata']['name']}=={item['metadata']['version']}" for item in installed)
    names = {str(report): "REPORT.json", str(target): "TARGET", str(REQUIREMENTS): REQUIREMENTS.name}
    shown = " ".join(names.get(part, part) for part in argv[1:])
    RECORD.write_text(
        "# Written by bench/space_resolve.py: pip's resolution of requirements-space.txt for ZeroGPU.\n"
        f"# python {shown}\n" + "\n".join(pins) + "\n",
        encoding="utf-8",
    )
    print(f"resolved {len(pins)} distributions for CPython 3.10 manylinux x86_64 in {seconds:.1f} s")
    keys = ("torch", "transformers", "peft", "trl", "gradio", "spaces", "huggingface_hub", "numpy")
    print("  " + "  ".join(pin for pin in pins if pin.split("==")[0].lower() in keys))
    print(f"recorded in {RECORD.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
