"""Assemble the folder a Hugging Face Space is pushed from (`make space` → build/space).

    python scripts/build_space.py [OUT]      # then: cd build/space && git push to the Space repo

The folder holds the app (app.py, reasonrank/, ui/, db/ with its migrations and bundled samples),
the rerankers it offers (space/rerankers.json → rerankers.json, read by reasonrank.declared),
requirements.txt (requirements-space.txt: ZeroGPU's Python 3.10 and a supported torch), and a
README whose front matter asks for a Gradio Space on ZeroGPU with HF sign-in and names the models
it uses, so the Hub links them and fetches their weights at build time.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("reasonrank", "ui", "db")
FILES = ("app.py",)
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.db", "*.db-wal", "*.db-shm")
LOCAL_BACKENDS = ("zerogpu", "transformers")

BODY = """
# ReasonRank Studio

Reasoning listwise rerankers side by side: each model thinks inside `<think>…</think>`, then
ranks a window of passages (ReasonRank, arXiv 2508.07050). Anyone can use the **Arena** (one
window of 20 passages by default; the full top-100 sweep on request, with its GPU-time estimate
shown first). Sign in with Hugging Face to review labels; the Space owner and the names in the
`REASONRANK_ADMINS` variable are admins.

Settings (Space variables and secrets): `REASONRANK_ADMINS`, `REASONRANK_RERANKERS` (replaces
`rerankers.json`), `REASONRANK_SNAPSHOT_MINUTES` / `REASONRANK_SNAPSHOT_KEEP`,
`REASONRANK_BACKUP_REPO` and the secret `HF_TOKEN` for pushing backups to a private dataset.
Enable persistent storage so the label store lives in `/data`.
"""


def pinned(requirements: str, name: str) -> str:
    match = re.search(rf"^{re.escape(name)}(?:\[[^\]]*\])?==(\S+)", requirements, re.MULTILINE | re.IGNORECASE)
    if not match:
        raise SystemExit(f"error: requirements-space.txt does not pin {name}")
    return match.group(1)


def front_matter(requirements: str, rerankers: list[dict]) -> dict:
    models = sorted({entry["model"] for entry in rerankers if entry.get("backend") in LOCAL_BACKENDS})
    return {
        "title": "ReasonRank Studio",
        "emoji": "🔎",
        "colorFrom": "blue",
        "colorTo": "gray",
        "sdk": "gradio",
        "sdk_version": pinned(requirements, "gradio"),
        "python_version": "3.10",
        "app_file": "app.py",
        "suggested_hardware": "zero-a10g",
        "hf_oauth": True,
        "models": models,
        "preload_from_hub": list(models),  # a copy: the same list twice would be written as a YAML alias
        "pinned": False,
        "short_description": "Watch reasoning rerankers think and rank side by side",
    }


def build(out: Path) -> Path:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for package in PACKAGES:
        shutil.copytree(REPO / package, out / package, ignore=IGNORE)
    for name in FILES:
        shutil.copy2(REPO / name, out / name)
    requirements = (REPO / "requirements-space.txt").read_text(encoding="utf-8")
    (out / "requirements.txt").write_text(requirements, encoding="utf-8")
    rerankers_text = (REPO / "space" / "rerankers.json").read_text(encoding="utf-8")
    (out / "rerankers.json").write_text(rerankers_text, encoding="utf-8")
    meta = yaml.safe_dump(front_matter(requirements, json.loads(rerankers_text)), sort_keys=False, allow_unicode=True)
    (out / "README.md").write_text(f"---\n{meta}---\n{BODY}", encoding="utf-8")
    return out


if __name__ == "__main__":
    folder = build(Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "build" / "space"))
    print(f"Space folder ready: {folder}")
