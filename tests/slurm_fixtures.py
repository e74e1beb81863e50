"""A real single-node SLURM cluster for the runner tests: munged, slurmctld and slurmd on 127.0.0.1,
once per session, from Debian's `slurm-wlm` and `munge` packages.

Everything lives in one temporary folder: a generated munge key and munged's socket (the clients
find it through slurm.conf's `AuthInfo=socket=`, so the machine's own munged, if any, is not used),
slurm.conf with free ports, the controller's state and slurmd's spool. Clients reach this cluster
through `SLURM_CONF` (cluster.env). The daemons run in the foreground as children of the test
process and are stopped by their process ids, after the cluster's jobs are cancelled; nothing
else on the machine is touched. slurmd runs jobs as their submitting user, so it runs as root (the
tests do in CI); without root or without the binaries the fixture skips, saying why. Import into a
test module with `from slurm_fixtures import slurm_cluster`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from ray_fixtures import free_port

__all__ = ["SlurmCluster", "slurm_cluster", "slurm_daemons", "write_conf", "node_names", "BINARIES"]

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol")
NODE = "rrnode"


@dataclass(frozen=True)
class SlurmCluster:
    conf: Path  # its slurm.conf ($SLURM_CONF for the clients)
    root: Path
    env: dict[str, str]  # os.environ without the app's settings, plus SLURM_CONF


def node_names(nodes: int) -> list[str]:
    """The cluster's node names: NODE alone, or NODE1 … NODEn for a cluster of several."""
    return [NODE] if nodes == 1 else [f"{NODE}{index}" for index in range(1, nodes + 1)]


def write_conf(root: Path, controller_port: int, node_port: int, message_timeout: int = 10, nodes: int = 1) -> Path:
    """A slurm.conf under `root` (no accounting, no cgroups: a container has neither): one node,
    or `nodes` nodes on this machine — one slurmd each (`slurmd -N NAME`, which Debian's build
    allows), on its own loopback address 127.0.0.<i> and port, with its own spool, pid and log
    file (`%n`), one CPU each."""
    conf = root / "slurm.conf"
    settings = {
        "ClusterName": "reasonrank-test",
        "SlurmctldHost": "localhost(127.0.0.1)",
        "SlurmctldPort": controller_port,
        "SlurmdPort": node_port,
        "AuthType": "auth/munge",
        "AuthInfo": f"socket={root / 'munge.socket'}",
        "CredType": "cred/munge",
        "SlurmUser": "root",
        "SlurmdUser": "root",
        "StateSaveLocation": root / "state",
        "SlurmdSpoolDir": root / "spool",
        "SlurmctldPidFile": root / "slurmctld.pid",
        "SlurmdPidFile": root / "slurmd.pid",
        "SlurmctldLogFile": root / "slurmctld.log",
        "SlurmdLogFile": root / "slurmd.log",
        "PlugStackConfig": root / "plugstack.conf",
        "ProctrackType": "proctrack/linuxproc",
        "TaskPlugin": "task/none",
        "JobAcctGatherType": "jobacct_gather/none",
        "AccountingStorageType": "accounting_storage/none",
        "JobCompType": "jobcomp/none",
        "SchedulerType": "sched/builtin",
        "SelectType": "select/cons_tres",
        "SelectTypeParameters": "CR_Core",
        "ReturnToService": 2,
        "MpiDefault": "none",
        "SwitchType": "switch/none",
        "MinJobAge": 300,
        "MessageTimeout": message_timeout,
    }
    if nodes > 1:
        settings.update(
            SlurmdSpoolDir=root / "spool" / "%n",
            SlurmdPidFile=root / "slurmd-%n.pid",
            SlurmdLogFile=root / "slurmd-%n.log",
        )
    lines = [f"{key}={value}" for key, value in settings.items()]
    if nodes == 1:
        lines.append(f"NodeName={NODE} NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=2 State=UNKNOWN")
    for index, name in enumerate(node_names(nodes) if nodes > 1 else [], start=1):
        port = node_port if index == 1 else free_port()
        lines.append(
            f"NodeName={name} NodeAddr=127.0.0.{index} NodeHostname=localhost Port={port} CPUs=1 State=UNKNOWN"
        )
    lines.append(f"PartitionName=debug Nodes={','.join(node_names(nodes))} Default=YES MaxTime=INFINITE State=UP")
    conf.write_text("\n".join(lines) + "\n")
    return conf


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


@contextmanager
def slurm_daemons(nodes: int = 1) -> Iterator[SlurmCluster]:
    """munged, slurmctld and slurmd on 127.0.0.1 for the duration of the block (also used by bench/);
    with `nodes` > 1, one slurmd per node (see write_conf)."""
    # not under pytest's private temporary folder: munged wants every folder above its socket
    # searchable by all
    root = Path(tempfile.mkdtemp(prefix="reasonrank-slurm-"))
    root.chmod(0o755)
    for folder in ("state", "spool"):
        (root / folder).mkdir()
    (root / "plugstack.conf").write_text("")
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    conf = write_conf(root, free_port(), free_port(), nodes=nodes)
    env = {name: value for name, value in os.environ.items() if not name.startswith(("REASONRANK_", "PYTEST_"))}
    env["SLURM_CONF"] = str(conf)
    munge = [
        "munged",
        "--foreground",
        f"--socket={root / 'munge.socket'}",
        f"--key-file={key}",
        f"--pid-file={root / 'munged.pid'}",
        f"--log-file={root / 'munged.log'}",
        f"--seed-file={root / 'munged.seed'}",
    ]
    daemons = [_start(munge, env, root / "munged.out")]
    try:
        _wait_for(lambda: (root / "munge.socket").exists(), "munged's socket", root, daemons)
        daemons.append(_start(["slurmctld", "-D", "-f", str(conf)], env, root / "slurmctld.out"))
        for name in node_names(nodes):
            log = root / ("slurmd.out" if nodes == 1 else f"slurmd-{name}.out")
            daemons.append(_start(["slurmd", "-D", "-f", str(conf), "-N", name], env, log))
        cluster = SlurmCluster(conf, root, env)
        names = ",".join(node_names(nodes))
        _wait_for(lambda: _node_idle(cluster, names), f"node {names} idle in sinfo", root, daemons)
        yield cluster
    finally:
        if len(daemons) == 2 + nodes:
            _cancel_all(SlurmCluster(conf, root, env))
        for daemon in reversed(daemons):
            _stop(daemon)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    missing = [name for name in BINARIES if shutil.which(name) is None]
    if missing:
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} not on PATH; Debian: slurm-wlm munge)")
    if os.geteuid() != 0:
        pytest.skip("a single-node SLURM needs slurmd to run as root (it starts jobs as their user)")
    with slurm_daemons() as cluster:
        yield cluster


def _node_idle(cluster: SlurmCluster, names: str = NODE) -> bool:
    done = subprocess.run(
        ["sinfo", "--noheader", "--format=%T", f"--nodes={names}"], env=cluster.env, capture_output=True, text=True
    )
    return done.returncode == 0 and done.stdout.split() == ["idle"]


def _wait_for(ready, what: str, root: Path, daemons: list[subprocess.Popen], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        exited = [daemon.args[0] for daemon in daemons if daemon.poll() is not None]
        if exited or time.monotonic() > deadline:
            logs = "\n".join(
                f"--- {path.name}\n{path.read_text(errors='replace')[-1500:]}"
                for path in sorted([*root.glob("*.log"), *root.glob("*.out")])
            )
            why = f"{', '.join(exited)} exited" if exited else f"not after {timeout:.0f} s"
            raise RuntimeError(f"SLURM test cluster: no {what} ({why})\n{logs}")
        time.sleep(0.2)


def _cancel_all(cluster: SlurmCluster, timeout: float = 30.0) -> None:
    """Cancel this cluster's jobs and wait until none runs (their processes belong to slurmstepd,
    which outlives slurmd)."""
    subprocess.run(["scancel", "--user=root"], env=cluster.env, capture_output=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run(["squeue", "--noheader"], env=cluster.env, capture_output=True, text=True)
        if done.returncode != 0 or not done.stdout.strip():
            return
        time.sleep(0.5)


def _stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
