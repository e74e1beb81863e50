"""Multi-node training on a real two-node Ray cluster (a head on 127.0.0.2 and a second node on
127.0.0.3, both on this machine, see ray_fixtures): a `train sft --nodes 2 --processes-per-node 1`
job submitted with runner `ray` is run once on each node (reasonrank.runners.ray_multinode: a
STRICT_SPREAD placement group of two bundles), the two ranks train together over gloo, node 0's
curves reach the job and its model is registered once; a node whose command dies fails the job
with that node's rank and last lines, and the other node's command is stopped."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from ray_fixtures import RayCluster, ray_head, ray_worker_node
from runner_helpers import (
    app_store,
    eventually,
    ray_settings,
    record_sft_export,
    train_argv,
    two_node_train_argv,
    wait_job,
)

from db import jobs as db_jobs
from db.registry import list_rerankers
from reasonrank.runners import ray as ray_runner

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]
HEAD_IP, NODE_IP = "127.0.0.2", "127.0.0.3"


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory) -> Iterator[RayCluster]:
    pytest.importorskip("ray.job_submission", reason="ray[default] is in requirements-dev.txt")
    temp_dir = Path(tmp_path_factory.mktemp("ray2"))
    try:
        with ray_head(temp_dir, HEAD_IP) as cluster, ray_worker_node(cluster, NODE_IP):
            yield cluster
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def app(tmp_path, monkeypatch, two_nodes):
    with app_store(tmp_path, monkeypatch, ray_settings(two_nodes.address, tmp_path)) as engine:
        yield engine


def _node_commands(out: Path) -> dict[int, int]:
    """pid → node rank of every running `reasonrank train` node command that writes to `out`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "reasonrank" in words and "--node-rank" in words and str(out) in words:
            found[int(entry.name)] = int(words[words.index("--node-rank") + 1])
    return found


def test_a_two_node_sft_job_runs_once_per_node_and_registers_once(app, tiny_model_dir, dl19, tmp_path):
    export_id = record_sft_export(app, dl19, tmp_path, "ray-2n")
    argv = two_node_train_argv(tiny_model_dir, export_id, tmp_path / "data" / "runs" / "two", steps=3)
    job_id = db_jobs.launch_job(app, "train", argv, {}, runner="ray", lineage={"export_id": export_id})
    view = wait_job(app, job_id, lambda v: v.finished, timeout=600)
    assert view.status == "succeeded", (view.message, view.log_tail)
    assert [m["step"] for m in view.metrics] == [1, 2, 3]  # node 0's rank 0 alone reports
    assert view.argv == argv and "reasonrank.runners.ray_multinode" in view.config["runner"]["entrypoint"]
    log = (db_jobs.job_dir(job_id) / "log.txt").read_text()
    # one command per node, each with its rank, node 0's address for both, on two distinct nodes
    started = [line for line in log.splitlines() if line.startswith("starting node ")]
    assert len(started) == 2, log[-3000:]
    hosts = [line.split(" on ", 1)[1].split(":", 1)[0] for line in started]
    assert sorted(hosts) == [HEAD_IP, NODE_IP]  # STRICT_SPREAD: each bundle on its own node (either order)
    assert started[0].startswith("starting node 0 on ") and "--node-rank 0" in started[0]
    assert started[1].startswith("starting node 1 on ") and "--node-rank 1" in started[1]
    address = started[0].split("--main-address ")[1].split()[0]
    assert address.startswith(f"{hosts[0]}:") and started[1].endswith(f"--main-address {address}")
    assert "@@reasonrank-event" not in log
    model_dir = tmp_path / "cluster" / "runs" / "two" / "final"
    assert (model_dir / "model.safetensors").is_file()
    registered = [r for r in list_rerankers(app) if r.job_id == job_id]
    assert len(registered) == 1 and registered[0].model == str(model_dir)
    assert registered[0].lineage["runner"] == "ray"
    assert db_jobs.refresh_job(app, job_id).outputs["reranker_id"] == registered[0].id  # not registered twice
    # node 0 reports its end before its processes exit: the driver then ends with the job, and both
    # nodes' commands are gone
    sid = view.config["runner"]["submission_id"]
    settings = ray_runner.RaySettings.from_env()
    assert eventually(lambda: ray_runner.status(settings, sid).state == "succeeded")
    assert eventually(lambda: _node_commands(tmp_path / "cluster" / "runs" / "two") == {})


def test_a_node_that_dies_fails_the_job_with_its_rank_and_stops_the_other(app, tiny_model_dir, dl19, tmp_path):
    export_id = record_sft_export(app, dl19, tmp_path, "ray-2n-kill")
    out = tmp_path / "cluster" / "long"
    job_id = db_jobs.launch_job(
        app, "train", two_node_train_argv(tiny_model_dir, export_id, out, 2000), {}, runner="ray"
    )
    view = wait_job(app, job_id, lambda v: v.finished or len(v.metrics) >= 2, timeout=600)
    assert view.status == "running" and len(view.metrics) >= 2, (view.message, view.log_tail)
    nodes = _node_commands(out)
    assert sorted(nodes.values()) == [0, 1], nodes
    node_1 = next(pid for pid, rank in nodes.items() if rank == 1)
    os.killpg(node_1, signal.SIGKILL)  # node 1's command, its launcher and its training process
    view = wait_job(app, job_id, lambda v: v.finished, timeout=180)
    assert view.status == "failed", (view.message, view.log_tail)
    assert view.message.startswith("node rank 1 of 2 was killed by SIGKILL; its last lines:"), view.message
    assert [r for r in list_rerankers(app) if r.job_id == job_id] == []
    assert eventually(lambda: _node_commands(out) == {}), _node_commands(out)  # node 0's was stopped too
    settings = ray_runner.RaySettings.from_env()
    assert eventually(lambda: ray_runner.status(settings, view.config["runner"]["submission_id"]).state == "failed")


def test_cancelling_a_two_node_job_stops_every_node(app, tiny_model_dir, dl19, tmp_path):
    export_id = record_sft_export(app, dl19, tmp_path, "ray-2n-cancel")
    out = tmp_path / "cluster" / "cancelled"
    job_id = db_jobs.launch_job(
        app, "train", two_node_train_argv(tiny_model_dir, export_id, out, 2000), {}, runner="ray"
    )
    view = wait_job(app, job_id, lambda v: v.finished or len(v.metrics) >= 1, timeout=600)
    assert view.status == "running" and sorted(_node_commands(out).values()) == [0, 1], view.log_tail
    view = db_jobs.cancel_job(app, job_id)
    assert view.status == "cancelled", (view.message, view.log_tail)
    assert eventually(lambda: _node_commands(out) == {}), _node_commands(out)
    settings = ray_runner.RaySettings.from_env()
    assert ray_runner.status(settings, view.config["runner"]["submission_id"]).state == "stopped"


def test_more_nodes_than_the_cluster_has_fail_the_job_saying_so(app, monkeypatch, tiny_model_dir, dl19, tmp_path):
    monkeypatch.setenv(ray_runner.PLACEMENT_TIMEOUT_ENV, "5")
    export_id = record_sft_export(app, dl19, tmp_path, "ray-3n")
    argv = [*train_argv(tiny_model_dir, export_id, tmp_path / "cluster" / "three", 1), "--nodes", "3"]
    job_id = db_jobs.launch_job(app, "train", argv, {}, runner="ray")
    assert "--placement-timeout 5 " in db_jobs.refresh_job(app, job_id).config["runner"]["entrypoint"]
    view = wait_job(app, job_id, lambda v: v.finished, timeout=180)
    assert view.status == "failed", (view.message, view.log_tail)
    assert view.message.startswith("the Ray cluster did not offer 3 distinct nodes with {'CPU': 1.0} each in 5 s")
    assert _node_commands(tmp_path / "cluster" / "three") == {}
