"""The built Space folder on CPython 3.10 with the Space's own pins: starts, serves the Arena, refuses
anonymous reviews. What the ZeroGPU Space runs, minus the GPU libraries (torch, trl, peft and
accelerate are only imported when a model runs, and torch 2.8's CUDA wheels are gigabytes).

    python bench/space_py310_smoke.py      # needs python3.10 on the PATH and PyPI; prints figures

The 3.10 environment is build/venv-space310 (made once, reused); the app runs from build/space
(`make space`) with a Space's variables set and its own data folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
VENV = REPO / "build" / "venv-space310"
LEFT_OUT = ("torch", "trl", "peft", "accelerate")


def venv_python() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        base = shutil.which("python3.10")
        if base is None:
            raise SystemExit("error: python3.10 is not on the PATH")
        subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    lines = (REPO / "requirements-space.txt").read_text().splitlines()
    wanted = [
        line for line in lines if line.strip() and not line.startswith("#") and line.split("=")[0] not in LEFT_OUT
    ]
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # this checkout is no package there
    subprocess.run([str(python), "-m", "pip", "install", "-q", *wanted], check=True, env=clean)
    return python


def main() -> int:
    import build_space
    from gradio_client import Client

    from ui.arena_queries import SAMPLES, query_choices

    python = venv_python()
    version = subprocess.run([str(python), "--version"], capture_output=True, text=True).stdout.strip()
    folder = build_space.build(REPO / "build" / "space")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = Path(tempfile.mkdtemp(prefix="space310-"))
    env = {
        **os.environ,
        "SYSTEM": "spaces",
        "SPACE_ID": "someone/reasonrank-studio",
        "SPACE_AUTHOR_NAME": "someone",
        "SPACE_HOST": f"127.0.0.1:{port}",
        "OAUTH_CLIENT_ID": "smoke",
        "OAUTH_CLIENT_SECRET": "smoke",
        "OAUTH_SCOPES": "openid profile",
        "OPENID_PROVIDER_URL": "https://huggingface.co",  # fetched at sign-in only
        "REASONRANK_DATA": str(data),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    env.pop("PYTHONPATH", None)
    began = time.perf_counter()
    log = data / "app.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(python), "app.py"], cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        import httpx

        while True:
            if process.poll() is not None:
                print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
                return 1
            try:
                if httpx.get(f"http://127.0.0.1:{port}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        served = time.perf_counter() - began
        client = Client(f"http://127.0.0.1:{port}", verbose=False)
        source = next(iter(SAMPLES))
        qid = query_choices(source)[0][1]
        _, results, message, _ = client.predict(
            source, qid, "", "", "", ["BM25", "stored labels"], 20, 20, 10, 100, api_name="/arena_run"
        )
        review = client.predict("", "pending", "", 0, 1, api_name="/next_item")[8]
        figures = ", ".join(
            f"{lane['name']} {lane['status']} nDCG@10 {lane['metrics'].get('ndcg@10', 0):.3f}"
            for lane in results["lanes"]
        )
        print(f"{version} with requirements-space.txt (without {', '.join(LEFT_OUT)}): served in {served:.1f} s")
        print(f"arena: {message} {figures}")
        print(f"anonymous review: {review}")
        ok = message.startswith("Done") and "not logged in" in review
        return 0 if ok else 1
    finally:
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
