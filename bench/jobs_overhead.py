"""What a runner adds to a job: local subprocess vs a Ray job on a single-node head vs a SLURM batch
job on a single-node cluster (both on 127.0.0.1).

The same tiny SFT job (tests/tiny_model.py, 8 real DL19 windows, tiny-cpu preset, N steps) is
launched through db.jobs as the Train tab's Start does, and the job is polled as the panel polls
it (db.jobs.refresh_job), every --poll seconds instead of the panel's 1 s so that the figures
are the runner's, not the timer's. Printed per runner:

- start → first progress event: from the launch call to the first `progress` event in the view
  (includes importing torch/transformers and loading the model, which both runners pay);
- end event → "succeeded": from the time the job wrote its `end` to the view showing succeeded;
- delivery lag p50/p95: for every progress/metrics event, seen-in-view minus written-by-the-job.

Ray's own floor is printed too: no-op `python -c pass` jobs submitted with the Jobs SDK (no
runtime env), from submit to RUNNING and to SUCCEEDED, on the fresh head and then warm, and with
the runtime env this runner sends (a working dir and this package as py_modules). SLURM's too:
`sbatch --wrap=true` from submit to RUNNING and to COMPLETED in squeue (best of three), as is and
with `--export=NONE` as this runner submits (slurmd then fetches the user's login environment).
Goal: a runner adds ≤ 2 s at start over its cluster's own floor and ≤ 1 s of lag. The SLURM cluster needs
root and Debian's slurm-wlm and munge (tests/slurm_fixtures.py).

    .venv/bin/python bench/jobs_overhead.py [--steps 8] [--poll 0.1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))] if ordered else float("nan")


def measure(runner: str, model: Path, export: Path, out: Path, steps: int, poll: float) -> dict[str, float]:
    from db import jobs as db_jobs
    from db.engine import get_engine, init_db

    os.environ["REASONRANK_DATA"] = str(out / "data")
    out.mkdir(parents=True, exist_ok=True)  # the SQLite engine refuses a missing folder
    engine = get_engine(f"sqlite:///{out / 'app.db'}")
    init_db(engine)
    argv = ["train", "sft", "--preset", "tiny-cpu", "--model", str(model), "--data", str(export)]
    argv += ["--output-dir", str(out / "run"), "--max-steps", str(steps), "--no-register"]
    seen: dict[tuple, float] = {}
    clicked = time.time()
    job_id = db_jobs.launch_job(engine, "train", argv, {}, runner=runner)
    first_progress = None
    while True:
        view = db_jobs.refresh_job(engine, job_id)
        now = time.time()
        for event in view.metrics + ([view.progress] if view.progress else []):
            seen.setdefault((event["event"], event.get("step", event.get("done")), event["time"]), now)
        if first_progress is None and view.progress:
            first_progress = now
        if view.finished:
            break
        time.sleep(poll)
    if view.status != "succeeded":
        raise SystemExit(f"{runner}: job {view.status}: {view.message}\n{view.log_tail}")
    from reasonrank.jobs import read_events

    events, _ = read_events(db_jobs.job_dir(job_id) / "events.jsonl")
    end = next(e for e in events if e["event"] == "end")
    lags = [seen_at - key[2] for key, seen_at in seen.items()]
    engine.dispose()
    return {
        "start_to_first_progress_s": first_progress - clicked,
        "end_to_succeeded_s": now - end["time"],
        "lag_p50_s": statistics.median(lags),
        "lag_p95_s": _percentile(lags, 0.95),
        "events": len(lags),
    }


def ray_floor(address: str, runtime_env: dict | None = None) -> tuple[float, float]:
    """Seconds from submitting a no-op job to RUNNING and to SUCCEEDED."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(address)
    submitted = time.time()
    sid = client.submit_job(entrypoint="python -c pass", runtime_env=runtime_env)
    running = None
    while True:
        status = client.get_job_status(sid)
        if running is None and status != JobStatus.PENDING:
            running = time.time()
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            return running - submitted, time.time() - submitted
        time.sleep(0.02)


def slurm_floor(env: dict[str, str], *flags: str) -> tuple[float, float]:
    """Seconds from `sbatch` of a no-op batch job to RUNNING and to COMPLETED in squeue."""
    import subprocess

    submitted = time.time()
    command = ["sbatch", "--parsable", "--wrap=true", "--output=/dev/null", "--chdir=/tmp", *flags]
    slurm_id = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout.strip()
    running = None
    while True:
        state = subprocess.run(
            ["squeue", "--noheader", "--states=all", f"--jobs={slurm_id}", "--format=%T"],
            env=env,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if running is None and state not in ("PENDING", "CONFIGURING"):
            running = time.time()
        if state in ("COMPLETED", "FAILED", "CANCELLED"):
            return running - submitted, time.time() - submitted
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--poll", type=float, default=0.1)
    args = parser.parse_args()
    from ray_fixtures import ray_head
    from slurm_fixtures import slurm_daemons
    from tiny_model import build_tiny_qwen2
    from train_fixtures import dl19_windows, write_sft_export

    from reasonrank.io import read_qrels, read_rank_llm_json
    from reasonrank.runners import ray as ray_runner
    from reasonrank.runners import slurm as slurm_runner

    data = REPO / "tests" / "data" / "trec-dl19"
    dl19 = read_rank_llm_json(data / "bm25_top100_with_text.json", read_qrels(data / "qrels.txt"))
    with tempfile.TemporaryDirectory(prefix="jobs-overhead-") as folder:
        root = Path(folder)
        model = build_tiny_qwen2(root / "model")
        export = write_sft_export(dl19_windows(dl19, 8), root, "sft")
        # every runner measured while both clusters run (the same CPU load)
        with ray_head(root / "ray") as cluster, slurm_daemons() as slurm:
            os.environ[ray_runner.ADDRESS_ENV] = cluster.address
            os.environ["SLURM_CONF"] = str(slurm.conf)
            os.environ[slurm_runner.WORK_ROOT_ENV] = str(root / "slurm-work")
            os.environ[slurm_runner.PYTHON_ENV] = sys.executable
            os.environ[ray_runner.OUTPUT_ROOT_ENV] = str(root / "cluster")
            floors = [ray_floor(cluster.address) for _ in range(3)]  # the first on a fresh head is cold
            (root / "wd").mkdir()
            ours = {"working_dir": str(root / "wd"), "py_modules": [str(REPO / "reasonrank")]}
            env_floor = [ray_floor(cluster.address, ours) for _ in range(2)]  # uploads, then cached
            results = {"local": measure("local", model, export, root / "local", args.steps, args.poll)}
            results["ray"] = measure("ray", model, export, root / "ray-app", args.steps, args.poll)
            slurm_floors = [slurm_floor(slurm.env) for _ in range(3)]
            export_none = [slurm_floor(slurm.env, "--export=NONE") for _ in range(3)]
            results["slurm"] = measure("slurm", model, export, root / "slurm-app", args.steps, args.poll)
    print(f"tiny SFT, {args.steps} steps, polled every {args.poll} s")
    print(f"{'runner':8} {'start→1st progress':>19} {'end→succeeded':>14} {'lag p50':>8} {'lag p95':>8} {'events':>7}")
    for runner, r in results.items():
        print(
            f"{runner:8} {r['start_to_first_progress_s']:18.2f}s {r['end_to_succeeded_s']:13.2f}s "
            f"{r['lag_p50_s']:7.2f}s {r['lag_p95_s']:7.2f}s {r['events']:7d}"
        )
    for runner in ("ray", "slurm"):
        added = results[runner]["start_to_first_progress_s"] - results["local"]["start_to_first_progress_s"]
        print(f"{runner} adds {added:.2f} s at start over local")
    cold, warm = floors[0], sorted(floors[1:])[0]
    print(f"Ray's own floor, a no-op job from submit: RUNNING {cold[0]:.2f} s / SUCCEEDED {cold[1]:.2f} s on the fresh")
    print(f"head, then RUNNING {warm[0]:.2f} s / SUCCEEDED {warm[1]:.2f} s (best of the next two)")
    print(
        f"with this runner's runtime env (working dir + py_modules): SUCCEEDED {env_floor[0][1]:.2f} s "
        f"(uploading), {env_floor[1][1]:.2f} s (cached)"
    )
    for label, floors in (("SLURM's own floor, a no-op batch job", slurm_floors), ("with --export=NONE", export_none)):
        best = min(floors, key=lambda floor: floor[1])
        print(f"{label} from sbatch: RUNNING {best[0]:.2f} s / COMPLETED {best[1]:.2f} s (best of 3)")


if __name__ == "__main__":
    main()
