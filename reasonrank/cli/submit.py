"""`reasonrank submit --runner ray|slurm --cmd "train sft …"`: run a command as a job, on a runner.

The shell's way to what the Synthesize, Train and Eval tabs' Start does: the job is recorded in
the label store (so the app's job panel and history show it), started on the chosen runner
(reasonrank.runners; the cluster address comes from the environment) and followed here: its log
is printed as it arrives and the exit status is 0 only if the job succeeded. `--detach` returns
right after submitting, printing the job id. As the composition root this command uses db/.
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass

from reasonrank.cli.common import Command, open_store
from reasonrank.flags import Flag, FlagTable
from reasonrank.io import InputError
from reasonrank.runners import RUNNERS

#: the job kind each command runs as (db.jobs.JOB_KINDS)
JOB_KIND = {"train": "train", "synth": "synth", "eval": "eval", "rerank": "eval"}
POLL_S = 1.0


@dataclass
class SubmitConfig:
    """`reasonrank submit`: which command, on which runner."""

    cmd: str = ""
    runner: str = "local"
    detach: bool = False
    db: str | None = None


SUBMIT_FLAGS = FlagTable(
    [
        Flag(
            "--cmd",
            "cmd",
            'the reasonrank command line to run, quoted (e.g. "train sft --preset tiny-cpu …")',
            required=True,
        ),
        Flag(
            "--runner",
            "runner",
            "where it runs: local, ray ($REASONRANK_RAY_ADDRESS) or slurm ($REASONRANK_SLURM_WORK_ROOT)",
            choices=RUNNERS,
        ),
        Flag("--detach", "detach", "return after submitting (print the job id)", kind="switch"),
        Flag("--db", "db", "database URL (default: $REASONRANK_DB or SQLite in $REASONRANK_DATA)"),
    ]
)


def _submit_command(config: SubmitConfig) -> int:
    from db.jobs import job_dir, launch_job, refresh_job
    from reasonrank.cli import parse_command

    argv = shlex.split(config.cmd)
    if argv and argv[0] == "reasonrank":
        argv = argv[1:]
    if not argv or argv[0] not in JOB_KIND:
        raise InputError(f"--cmd: runs as a job only {', '.join(JOB_KIND)} (got {argv[0] if argv else 'nothing'!r})")
    parse_command(argv)  # refused here, before anything is recorded, if it does not parse
    engine = open_store(config.db)
    job_id = launch_job(engine, JOB_KIND[argv[0]], argv, {}, runner=config.runner)
    print(f"job {job_id} on {config.runner}")
    if config.detach:
        return 0
    log, offset = job_dir(job_id) / "log.txt", 0
    while True:
        view = refresh_job(engine, job_id)
        if log.exists():  # the same file for every runner (a remote job's is mirrored)
            with open(log, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
            offset += len(data)
            sys.stdout.write(data.decode("utf-8", errors="replace"))
        if view.finished:
            break
        time.sleep(POLL_S)
    print(f"job {job_id} {view.status}" + (f": {view.message}" if view.message and view.message != "done" else ""))
    sys.stdout.flush()
    return 0 if view.status == "succeeded" else 1


SUBMIT_COMMANDS = [
    Command(
        "submit",
        "run a command as a recorded job on a runner (local, ray or slurm)",
        SUBMIT_FLAGS,
        SubmitConfig,
        _submit_command,
    )
]
