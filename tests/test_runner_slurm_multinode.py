"""Multi-node training on a real two-node SLURM cluster (munged, slurmctld and one slurmd per node,
rrnode1 on 127.0.0.1 and rrnode2 on 127.0.0.2, all on this machine, see slurm_fixtures): a `train
sft --nodes 2 --processes-per-node 1` job submitted with runner `slurm` asks sbatch for two nodes
and srun runs it once on each, with the node rank from $SLURM_NODEID and node 0's address from
$SLURM_JOB_NODELIST; the two ranks train together over gloo, node 0's curves reach the job and
its model is registered once. A node whose command dies fails the job naming that node. The
per-node script's rank and address logic also runs on its own, against this cluster's scontrol."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_helpers import app_store, eventually, record_sft_export, slurm_settings, two_node_train_argv, wait_job
from slurm_fixtures import BINARIES, SlurmCluster, slurm_daemons

from db import jobs as db_jobs
from db.registry import list_rerankers
from reasonrank.runners import slurm as slurm_runner

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[SlurmCluster]:
    missing = [name for name in (*BINARIES, "srun") if shutil.which(name) is None]
    if missing:
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} not on PATH; Debian: slurm-wlm munge)")
    if os.geteuid() != 0:
        pytest.skip("a SLURM test cluster needs slurmd to run as root (it starts jobs as their user)")
    with slurm_daemons(nodes=2) as cluster:
        yield cluster


@pytest.fixture
def app(tmp_path, monkeypatch, two_nodes):
    with app_store(tmp_path, monkeypatch, slurm_settings(two_nodes.conf, tmp_path)) as engine:
        yield engine


def _processes() -> dict[int, tuple[int, list[str]]]:
    """pid → (parent pid, command line words) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                words = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except (OSError, IndexError, ValueError):
                continue
            table[int(entry.name)] = (ppid, words)
    return table


def _node_commands(out: Path) -> dict[int, int]:
    """pid → node rank of every running `reasonrank train` node command that writes to `out`."""
    return {
        pid: int(words[words.index("--node-rank") + 1])
        for pid, (_, words) in _processes().items()
        if "reasonrank" in words and "--node-rank" in words and str(out) in words
    }


def _kill_tree(pid: int) -> None:
    table = _processes()
    tree, grew = {pid}, True
    while grew:
        children = {child for child, (ppid, _) in table.items() if ppid in tree} - tree
        tree |= children
        grew = bool(children)
    for member in tree:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_two_node_sft_job_runs_once_per_node_and_registers_once(app, two_nodes, tiny_model_dir, dl19, tmp_path):
    export_id = record_sft_export(app, dl19, tmp_path, "slurm-2n")
    argv = two_node_train_argv(tiny_model_dir, export_id, tmp_path / "data" / "runs" / "two", steps=3)
    job_id = db_jobs.launch_job(app, "train", argv, {}, runner="slurm", lineage={"export_id": export_id})
    view = wait_job(app, job_id, lambda v: v.finished, timeout=600)
    assert view.status == "succeeded", (view.message, view.log_tail)
    assert [m["step"] for m in view.metrics] == [1, 2, 3]  # node 0's rank 0 alone reports
    sid = view.config["runner"]["submission_id"]
    folder = tmp_path / "cluster" / sid
    assert "--nodes=2 --ntasks-per-node=1" in (folder / slurm_runner.SCRIPT_NAME).read_text()
    nodelist = subprocess.run(
        ["squeue", "--noheader", "--states=all", f"--name={sid}", "--format=%N"],
        env=two_nodes.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert nodelist == ["rrnode[1-2]"]
    log = (db_jobs.job_dir(job_id) / "log.txt").read_text()
    started = sorted(line for line in log.splitlines() if "starting node " in line)
    assert len(started) == 2, log[-3000:]
    assert started[0].startswith("[node 1] starting node 1 on rrnode2: --node-rank 1 --main-address 127.0.0.1:")
    assert started[1].startswith("starting node 0 on rrnode1: --node-rank 0 --main-address 127.0.0.1:")
    assert started[0].split("--main-address ")[1] == started[1].split("--main-address ")[1]  # one node 0
    model_dir = tmp_path / "cluster" / "runs" / "two" / "final"
    assert (model_dir / "model.safetensors").is_file()
    registered = [r for r in list_rerankers(app) if r.job_id == job_id]
    assert len(registered) == 1 and registered[0].model == str(model_dir)
    assert registered[0].lineage["runner"] == "slurm"
    assert db_jobs.refresh_job(app, job_id).outputs["reranker_id"] == registered[0].id  # not registered twice


def test_a_node_that_dies_fails_the_job_naming_it(app, tiny_model_dir, dl19, tmp_path):
    export_id = record_sft_export(app, dl19, tmp_path, "slurm-2n-kill")
    out = tmp_path / "cluster" / "long"
    argv = two_node_train_argv(tiny_model_dir, export_id, out, 2000)
    job_id = db_jobs.launch_job(app, "train", argv, {}, runner="slurm")
    view = wait_job(app, job_id, lambda v: v.finished or len(v.metrics) >= 2, timeout=600)
    assert view.status == "running" and len(view.metrics) >= 2, (view.message, view.log_tail)
    nodes = _node_commands(out)
    assert sorted(nodes.values()) == [0, 1], nodes
    _kill_tree(next(pid for pid, rank in nodes.items() if rank == 1))
    view = wait_job(app, job_id, lambda v: v.finished, timeout=180)
    assert view.status == "failed", (view.message, view.log_tail)
    assert view.message.startswith("node rank 1 of 2 killed; its last lines:"), view.message
    assert [r for r in list_rerankers(app) if r.job_id == job_id] == []
    assert eventually(lambda: _node_commands(out) == {}), _node_commands(out)  # srun stopped node 0's


def test_the_node_script_takes_its_rank_and_node_0s_address_from_slurm(two_nodes, tmp_path):
    """node.sh as srun runs it, with SLURM's variables set by hand and this cluster's scontrol:
    the rank is $SLURM_NODEID, node 0 is the first host of $SLURM_JOB_NODELIST (as its NodeAddr
    when the controller knows it, else by name), the port comes from the job id, and only node 0
    keeps the events variable. `python` here prints what it was given."""
    python = tmp_path / "python"
    python.write_text('#!/bin/bash\necho "ARGS $*"\necho "EVENTS ${REASONRANK_JOB_EVENTS-unset}"\n')
    python.chmod(0o755)
    settings = slurm_runner.SlurmSettings(str(tmp_path), python=str(python))
    script = tmp_path / slurm_runner.NODE_SCRIPT
    script.write_text(slurm_runner.node_script(settings, 7, ["train", "sft", "--model", "m", "--nodes", "2"]))

    def run(node_id: str, nodelist: str) -> list[str]:
        env = {**two_nodes.env, "SLURM_NODEID": node_id, "SLURM_JOB_NODELIST": nodelist, "SLURM_JOB_ID": "777"}
        env["REASONRANK_JOB_EVENTS"] = "-"
        done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    port = slurm_runner.MAIN_PORT_BASE + 777
    args = "-m reasonrank train sft --model m --nodes 2 --node-rank {} --main-address {}"
    assert run("1", "rrnode[1-2]")[1:] == [f"ARGS {args.format(1, f'127.0.0.1:{port}')}", "EVENTS unset"]
    assert run("0", "rrnode[1-2]")[1:] == [f"ARGS {args.format(0, f'127.0.0.1:{port}')}", "EVENTS -"]
    assert run("1", "rrnode[2-3]")[1] == f"ARGS {args.format(1, f'127.0.0.2:{port}')}"
    assert run("1", "gpu[07-08]")[1] == f"ARGS {args.format(1, f'gpu07:{port}')}"  # not in this cluster


def test_cancelling_a_two_node_job_stops_every_node(app, tiny_model_dir, dl19, tmp_path):
    export_id = record_sft_export(app, dl19, tmp_path, "slurm-2n-cancel")
    out = tmp_path / "cluster" / "cancelled"
    argv = two_node_train_argv(tiny_model_dir, export_id, out, 2000)
    job_id = db_jobs.launch_job(app, "train", argv, {}, runner="slurm")
    view = wait_job(app, job_id, lambda v: v.finished or len(v.metrics) >= 1, timeout=600)
    assert view.status == "running" and sorted(_node_commands(out).values()) == [0, 1], view.log_tail
    view = db_jobs.cancel_job(app, job_id)
    assert view.status == "cancelled", (view.message, view.log_tail)
    assert eventually(lambda: _node_commands(out) == {}), _node_commands(out)
