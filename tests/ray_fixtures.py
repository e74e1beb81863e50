"""A real single-node Ray cluster for the runner tests: one head on 127.0.0.1, once per session.

The head is kept small for a shared 2-core machine: 1 CPU, no GPUs, every port chosen free (so
two sessions never collide) and every address on the loopback (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
makes Ray use 127.0.0.1 instead of the machine's outward address). The Jobs API needs the
dashboard (its JobHead) and the node's dashboard agent (which runs the job supervisor), so the
dashboard is on; its web UI is never opened. Import into a test module with
`from ray_fixtures import ray_cluster`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["RayCluster", "ray_cluster", "ray_head", "ray_worker_node", "free_port"]


@dataclass(frozen=True)
class RayCluster:
    address: str  # the Jobs API (dashboard) URL
    temp_dir: Path
    env: dict[str, str]
    gcs_address: str = ""  # host:port another node joins with (`ray start --address`)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ray_bin() -> str:
    return str(Path(sys.executable).parent / "ray")


@contextmanager
def ray_head(temp_dir: Path, node_ip: str = "127.0.0.1") -> Iterator[RayCluster]:
    """A single-node Ray head on 127.0.0.1 for the duration of the block (also used by bench/).

    Another loopback address as `node_ip` (127.0.0.2) makes a head that other nodes can join
    (ray_worker_node): Ray takes 127.0.0.1 for "a single-node cluster, on the loopback" and would
    otherwise move a joining node to the machine's outward address."""
    ports = [free_port() for _ in range(4)]
    venv_bin = str(Path(sys.executable).parent)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REASONRANK_", "PYTEST_")) and key != "PYTHONPATH"  # the worker gets neither
    }
    env.update(
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0" if node_ip == "127.0.0.1" else "1",
        RAY_USAGE_STATS_ENABLED="0",
        PATH=f"{venv_bin}:{env.get('PATH', '')}",  # `python` on the cluster: this venv's
    )
    command = [
        _ray_bin(),
        "start",
        "--head",
        f"--node-ip-address={node_ip}",
        f"--port={ports[0]}",
        "--num-cpus=1",
        "--num-gpus=0",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={ports[1]}",
        f"--dashboard-agent-listen-port={ports[2]}",
        f"--ray-client-server-port={ports[3]}",
        "--min-worker-port=0",
        "--max-worker-port=0",
        "--object-store-memory=100000000",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]
    # its own session: every daemon `ray start` leaves behind is in this process group
    starter = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    group = starter.pid
    try:
        output = starter.communicate(timeout=180)[0].decode(errors="replace")
        if starter.returncode != 0:
            raise RuntimeError(f"ray start failed:\n{output[-3000:]}")
        address = f"http://127.0.0.1:{ports[1]}"
        _wait_for_jobs_api(address)
        yield RayCluster(address, temp_dir, env, f"{node_ip}:{ports[0]}")
    finally:
        _stop_group(group)


@contextmanager
def ray_worker_node(cluster: RayCluster, node_ip: str, num_cpus: int = 1) -> Iterator[None]:
    """One more Ray node on this machine, joined to `cluster` (a head from ray_head with a node_ip
    other than 127.0.0.1) for the duration of the block: its own raylet, object store and agents on
    another loopback address (every port chosen free), so a STRICT_SPREAD placement group has two
    distinct nodes to spread over."""
    ports = [free_port() for _ in range(6)]
    command = [
        _ray_bin(),
        "start",
        f"--address={cluster.gcs_address}",
        f"--node-ip-address={node_ip}",
        f"--num-cpus={num_cpus}",
        "--num-gpus=0",
        f"--node-manager-port={ports[0]}",
        f"--object-manager-port={ports[1]}",
        f"--dashboard-agent-listen-port={ports[2]}",
        f"--dashboard-agent-grpc-port={ports[3]}",
        f"--runtime-env-agent-port={ports[4]}",
        f"--metrics-export-port={ports[5]}",
        "--min-worker-port=0",
        "--max-worker-port=0",
        "--object-store-memory=100000000",
        "--disable-usage-stats",
    ]
    starter = subprocess.Popen(
        command, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    group = starter.pid
    try:
        output = starter.communicate(timeout=180)[0].decode(errors="replace")
        if starter.returncode != 0:
            raise RuntimeError(f"ray start (worker node {node_ip}) failed:\n{output[-3000:]}")
        yield
    finally:
        _stop_group(group)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory) -> Iterator[RayCluster]:
    pytest.importorskip("ray.job_submission", reason="ray[default] is in requirements-dev.txt")
    temp_dir = Path(tmp_path_factory.mktemp("ray"))
    try:
        with ray_head(temp_dir) as cluster:
            yield cluster
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def _processes() -> dict[int, tuple[int, int]]:
    """pid → (parent pid, process group) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                table[int(entry.name)] = (int(fields[1]), int(fields[2]))
            except (OSError, IndexError, ValueError):
                continue
    return table


def _ours(group: int) -> set[int]:
    """The head's processes (its process group) and all their descendants (workers, jobs)."""
    table = _processes()
    found = {pid for pid, (_, pgid) in table.items() if pgid == group}
    grew = True
    while grew:
        children = {pid for pid, (ppid, _) in table.items() if ppid in found} - found
        found |= children
        grew = bool(children)
    return found


def _stop_group(group: int, grace: float = 10.0) -> None:
    """Stop this head only, by process id (never `ray stop`, which ends every Ray on the machine)."""
    pids = _ours(group)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
            time.sleep(0.2)
        pids = {pid for pid in pids if Path(f"/proc/{pid}").exists()}
        if not pids:
            return


def _wait_for_jobs_api(address: str, timeout: float = 120.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{address}/api/jobs/", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Ray Jobs API at {address} did not come up in {timeout:.0f} s")
        time.sleep(0.5)
