"""What the runner tests (tests/test_runner_ray.py, tests/test_runner_slurm.py) do alike: record
an SFT export in the app's data dir, build a tiny training command, wait on a job, list files."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from train_fixtures import dl19_windows, write_sft_export

from db import jobs as db_jobs
from db.engine import get_engine, init_db
from db.exports import ExportFilter, record_export
from reasonrank.export_files import ExportFile
from reasonrank.runners import ray as ray_runner
from reasonrank.runners import slurm as slurm_runner


@contextmanager
def app_store(tmp_path: Path, monkeypatch, settings: Mapping[str, str]) -> Iterator:
    """An app's store and data directory under `tmp_path`, with a runner's settings in its
    environment (the cluster's address or configuration: never the database)."""
    monkeypatch.setenv("REASONRANK_DATA", str(tmp_path / "data"))
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    engine = get_engine(f"sqlite:///{tmp_path / 'app.db'}")
    init_db(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def ray_settings(address: str, tmp_path: Path) -> dict[str, str]:
    """The ray runner's settings for a cluster at `address`; outputs under tmp_path/cluster."""
    return {ray_runner.ADDRESS_ENV: address, ray_runner.OUTPUT_ROOT_ENV: str(tmp_path / "cluster")}


def slurm_settings(conf: Path, tmp_path: Path) -> dict[str, str]:
    """The slurm runner's settings for the cluster of `conf`; its work root is tmp_path/cluster."""
    return {
        "SLURM_CONF": str(conf),
        slurm_runner.WORK_ROOT_ENV: str(tmp_path / "cluster"),
        slurm_runner.PYTHON_ENV: sys.executable,
    }


def eventually(check, timeout: float = 60.0) -> bool:
    """Whether `check()` comes true within `timeout` seconds (polled every 0.5 s)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def wait_job(engine, job_id: int, until, timeout: float = 300.0) -> db_jobs.JobView:
    """The job's view once `until(view)` holds, or at the timeout (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    while True:
        view = db_jobs.refresh_job(engine, job_id)
        if until(view) or time.monotonic() > deadline:
            return view
        time.sleep(0.3)


def record_sft_export(engine, dl19, tmp_path: Path, name: str) -> int:
    """Six DL19 windows as an SFT export under <tmp_path>/data/exports, recorded; its id."""
    path = write_sft_export(dl19_windows(dl19, 6), tmp_path / "data" / "exports", name)
    count = len(path.read_bytes().splitlines())
    return record_export(engine, path.stem, "sft", ExportFilter(), ExportFile(path, count, "0" * 64)).id


def train_argv(model: Path, export_id: int, out: Path, steps: int) -> list[str]:
    """`reasonrank train sft` of the tiny preset on an export, for `steps` steps."""
    return ["train", "sft", "--preset", "tiny-cpu", "--model", str(model), "--data", f"export:{export_id}"] + [
        "--output-dir",
        str(out),
        "--max-steps",
        str(steps),
    ]


def two_node_train_argv(model: Path, export_id: int, out: Path, steps: int) -> list[str]:
    """train_argv on two nodes of one process each (the runner adds each node's rank and node 0)."""
    return [*train_argv(model, export_id, out, steps), "--nodes", "2", "--processes-per-node", "1"]


def follow_across_a_restart(app, tiny_model_dir, dl19, tmp_path: Path, runner: str, forget=lambda: None):
    """Start a long tiny SFT job on `runner`, let it report, then "restart the app" (dispose the
    engine, drop the folded job states and whatever `forget` clears) and follow it from a new
    engine. Returns (the new engine, the job id, its view): running, with no step mirrored twice."""
    from db.engine import get_engine
    from reasonrank import jobs

    export_id = record_sft_export(app, dl19, tmp_path, f"{runner}-sft")
    argv = train_argv(tiny_model_dir, export_id, tmp_path / "cluster" / "long", steps=2000)
    job_id = db_jobs.launch_job(app, "train", argv, {}, runner=runner)
    view = wait_job(app, job_id, lambda v: v.finished or len(v.metrics) >= 2)
    assert view.status == "running" and len(view.metrics) >= 2, (view.message, view.log_tail)
    url = app.url
    app.dispose()
    jobs._FOLDED.clear()
    forget()
    restarted = get_engine(url)
    seen = len(view.metrics)
    view = wait_job(restarted, job_id, lambda v: v.finished or len(v.metrics) > seen + 1)
    assert view.status == "running" and len(view.metrics) > seen + 1
    steps = [m["step"] for m in view.metrics]
    assert steps == sorted(set(steps))  # nothing mirrored twice across the restart
    return restarted, job_id, view


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
