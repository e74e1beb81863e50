"""Multi-node launches without a cluster: which runner may start `--nodes N` (check_launch, also
before a job is recorded), the command each node runs, and how the nodes' output becomes the job's
log and outcome (RankFollower). The launches themselves run on real clusters in
tests/test_runner_ray_multinode.py and tests/test_runner_slurm_multinode.py."""

from __future__ import annotations

import io
import json

import pytest

from db import jobs as db_jobs
from db.engine import get_engine, init_db
from reasonrank.cli import parse_command
from reasonrank.cli.train import check_launch
from reasonrank.io import InputError
from reasonrank.jobs import EVENT_TAG, EVENTS_ENV
from reasonrank.launch import child_argv, without_flags
from reasonrank.runners import split_log
from reasonrank.runners.multinode import RANK_FLAGS, RankFollower, follow_srun, launch_shape, rank_argv

TRAIN = ["train", "sft", "--preset", "tiny-cpu", "--model", "m", "--data", "inputs/0-x.jsonl"]


def _config(*flags: str):
    return parse_command([*TRAIN, *flags])


def test_only_an_orchestrating_runner_may_start_a_multi_node_job_without_an_address():
    with pytest.raises(InputError, match="2 nodes need --main-address.*ray, slurm"):
        check_launch(_config("--nodes", "2"), "local")
    check_launch(_config("--nodes", "2", "--main-address", "10.0.0.1:29500"), "local")  # typed on each node
    for runner in ("ray", "slurm"):
        check_launch(_config("--nodes", "2"), runner)
        with pytest.raises(InputError, match=f"the {runner} runner starts a 2-node job .* leave out --node-rank"):
            check_launch(_config("--nodes", "2", "--main-address", "h:1"), runner)
    with pytest.raises(InputError, match="at least 1"):
        check_launch(_config("--nodes", "0"), "ray")


def test_a_multi_node_job_the_runner_cannot_start_is_refused_before_it_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONRANK_DATA", str(tmp_path / "data"))
    engine = get_engine(f"sqlite:///{tmp_path / 'app.db'}")
    init_db(engine)
    with pytest.raises(InputError, match="2 nodes need --main-address"):
        db_jobs.launch_job(engine, "train", [*TRAIN, "--nodes", "2"], {}, runner="local")
    with pytest.raises(InputError, match="leave out --node-rank and --main-address"):
        db_jobs.launch_job(engine, "train", [*TRAIN, "--nodes", "2", "--node-rank", "1"], {}, runner="slurm")
    assert db_jobs.list_jobs(engine) == []
    engine.dispose()


def test_each_node_runs_the_job_command_with_its_rank_and_node_0s_address():
    argv = [*TRAIN, "--nodes", "2", "--processes-per-node", "3"]
    assert launch_shape(argv).nodes == 2 and launch_shape(argv).processes_per_node == 3
    assert launch_shape(TRAIN) is None and launch_shape([*TRAIN, "--nodes=1"]) is None
    assert launch_shape(["eval", "--nodes", "2"]) is None
    assert launch_shape(["train", "--nodes", "2"]) is None  # no stage: the command itself refuses it
    assert rank_argv([*argv, "--node-rank=5", "--main-address", "x"], 1, "10.0.0.1:2") == [
        *argv,
        "--node-rank",
        "1",
        "--main-address",
        "10.0.0.1:2",
    ]


def _event(**fields) -> str:
    return EVENT_TAG + json.dumps({"event": "end", "outputs": {}, **fields})


def test_node_0s_output_is_the_log_and_the_first_failing_node_names_the_failure(monkeypatch):
    monkeypatch.setenv(EVENTS_ENV, "-")
    out = io.BytesIO()
    follower = RankFollower(2, out)
    follower.line(0, EVENT_TAG + json.dumps({"event": "metrics", "step": 1}))
    follower.line(1, "error: CUDA out of memory on node 1")
    follower.line(1, "traceback line")
    follower.failed(1, "exited with status 1")
    follower.line(0, _event(status="cancelled", message="cancelled"))  # stopped after node 1 failed
    follower.failed(0, "exited with status 130")
    assert follower.finish() == 1
    lines, events = split_log(out.getvalue().decode())
    assert [e["event"] for e in events] == ["metrics", "end"]  # node 0's own `end` held back
    assert events[1]["status"] == "failed"
    assert events[1]["message"] == (
        "node rank 1 of 2 exited with status 1; its last lines:\nerror: CUDA out of memory on node 1\ntraceback line"
    )
    assert "[node 1] error: CUDA out of memory on node 1" in lines


def test_node_0_failing_first_keeps_its_own_end_and_success_passes_through(monkeypatch):
    monkeypatch.setenv(EVENTS_ENV, "-")
    out = io.BytesIO()
    follower = RankFollower(2, out)
    follower.line(0, _event(status="failed", message="a training process failed; last lines: boom"))
    follower.failed(0, "exited with status 1")
    follower.failed(1, "was killed by SIGTERM")
    assert follower.finish() == 1
    assert [e["message"] for e in split_log(out.getvalue().decode())[1]] == [
        "a training process failed; last lines: boom"
    ]
    out = io.BytesIO()
    follower = RankFollower(2, out)
    follower.line(0, _event(status="succeeded", message="done"))
    assert follower.finish() == 0
    assert [e["status"] for e in split_log(out.getvalue().decode())[1]] == ["succeeded"]


def test_srun_labelled_output_is_split_by_node_and_its_task_errors_name_the_rank(tmp_path, monkeypatch, capfd):
    """The format of `srun --label` and of its report of a failed task (the real srun runs in
    tests/test_runner_slurm_multinode.py); here a script prints what srun prints."""
    monkeypatch.setenv(EVENTS_ENV, "-")
    script = tmp_path / "srun"
    script.write_text(
        "#!/bin/bash\n"
        f"echo '0: {_event(status='cancelled', message='x')}'\n"
        "echo '1: error: data file missing on this node'\n"
        "echo 'srun: error: node2: task 1: Exited with exit code 2'\n"
        "exit 2\n"
    )
    script.chmod(0o755)
    out = io.BytesIO()
    assert follow_srun([str(script)], 2, out) == 1
    lines, events = split_log(out.getvalue().decode())
    assert events[-1]["message"].startswith("node rank 1 of 2 exited with exit code 2; its last lines:\nerror: data")
    assert "[node 1] error: data file missing on this node" in lines


def test_flags_with_one_value_are_dropped_in_either_spelling():
    argv = ["train", "sft", "--node-rank", "1", "--nodes", "2", "--main-address=10.0.0.1:2900", "--data", "x.jsonl"]
    assert without_flags(argv, RANK_FLAGS) == ["train", "sft", "--nodes", "2", "--data", "x.jsonl"]
    # the child of `accelerate launch` gets none of the launch flags, which are the launcher's
    launched = ["train", "sft", "--nodes", "2", "--processes-per-node=4", "--strategy", "ddp", "--data", "x"]
    assert child_argv(launched) == ["train", "sft", "--data", "x"]
