"""The `slurm` runner: a job's command submitted with `sbatch` and followed with `squeue`.

The batch script runs the same `python -m reasonrank <argv…>` a local job runs (`exec`, so
`scancel`'s SIGTERM reaches the command and it still writes its `cancelled` end), with the job's
environment set in the script (events to stdout as tagged lines, see reasonrank.runners). It is
submitted with `--export=NONE`: the worker gets its login environment on the node, never the app's
(database URL, data directory, secrets).

`sbatch` uploads nothing, so each job has a folder `<work root>/<job name>/` on a work root that
the submit host (where the app runs) and the nodes share — on a real cluster a shared scratch or
home filesystem, as every SLURM user's jobs assume; on a single-node cluster any local folder. The
app writes the batch script, the inputs (`inputs/`) and, unless REASONRANK_SLURM_SHIP_CODE=0, a
copy of this package (`code/`, first on PYTHONPATH) there; the job runs with that folder as its
working directory (`--chdir`) and its stdout and stderr go to `slurm.log` in it (`--output`),
which the app reads to follow the job. The work root may not be the app's data directory or
inside it: the worker never reads or writes that.

Commands used, and why: `sbatch --parsable` to submit; `squeue --states=all --name=…` for the
state, because it answers for pending, running and recently finished jobs alike (the controller
keeps a finished job for MinJobAge seconds, 300 by default); `scancel --name=…` to cancel. Not
`sacct`: it needs the accounting daemon (slurmdbd), which many clusters and a single-node test
cluster do not run. A job the controller no longer knows is "lost" — unless its log already holds
the `end` event, which the app reads first, so a job that finished while the app was down keeps
its real outcome. The job name (`reasonrank-<job id>-<random>`) is chosen and recorded before
submitting, so an app restarted between the two still finds the job.

Cluster settings (partition, account, time limit, extra sbatch arguments, the cluster's python)
come from the environment (SlurmSettings), never from the database; which cluster is SLURM's own
choice: $SLURM_CONF, else its default configuration.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reasonrank.jobs import EVENTS_ENV, EVENTS_TO_STDOUT, JOB_ID_ENV
from reasonrank.runners import INPUTS_DIR, REGISTER_BY_APP_ENV, RemoteStatus, RunnerError
from reasonrank.runners.multinode import launch_shape, without_rank_flags

WORK_ROOT_ENV = "REASONRANK_SLURM_WORK_ROOT"
OUTPUT_ROOT_ENV = "REASONRANK_SLURM_OUTPUT_ROOT"
PYTHON_ENV = "REASONRANK_SLURM_PYTHON"
PARTITION_ENV = "REASONRANK_SLURM_PARTITION"
ACCOUNT_ENV = "REASONRANK_SLURM_ACCOUNT"
TIME_ENV = "REASONRANK_SLURM_TIME"
ARGS_ENV = "REASONRANK_SLURM_ARGS"  # more sbatch arguments, shell-quoted (e.g. "--gres=gpu:1 --mem=32G")
SHIP_CODE_ENV = "REASONRANK_SLURM_SHIP_CODE"
LOST_AFTER_ENV = "REASONRANK_SLURM_LOST_AFTER"
LABEL = "SLURM"
#: the configuration SLURM's clients read when $SLURM_CONF is not set (Debian's slurm-wlm)
DEFAULT_CONF = "/etc/slurm/slurm.conf"
SCRIPT_NAME = "job.sh"
NODE_SCRIPT = "node.sh"  # a multi-node job's per-node part (see node_script)
#: node 0's rendezvous port of a multi-node job: BASE + the SLURM job id modulo SPAN
MAIN_PORT_BASE = 20000
MAIN_PORT_SPAN = 20000
LOG_NAME = "slurm.log"
CODE_DIR = "code"
#: SLURM job states (squeue %T) → ours; any other state is taken as running until it ends
_STATES = {
    "PENDING": "pending",
    "CONFIGURING": "pending",
    "REQUEUED": "pending",
    "REQUEUE_HOLD": "pending",
    "REQUEUE_FED": "pending",
    "RESV_DEL_HOLD": "pending",
    "COMPLETED": "succeeded",
    "CANCELLED": "stopped",
    "FAILED": "failed",
    "TIMEOUT": "failed",
    "NODE_FAIL": "failed",
    "PREEMPTED": "failed",
    "BOOT_FAIL": "failed",
    "DEADLINE": "failed",
    "OUT_OF_MEMORY": "failed",
}


@dataclass(frozen=True)
class SlurmSettings:
    """How to submit to the cluster; read from the environment, never stored (but for the two
    fields a recorded job keeps, see STORED)."""

    work_root: str  # shared by the submit host and the nodes; holds one folder per job
    address: str = DEFAULT_CONF  # the slurm.conf the clients read: which cluster
    output_root: str = ""  # cluster folder for outputs the form left in the app's data dir (default: work_root)
    python: str = "python"  # the interpreter on the nodes that has this package's dependencies
    partition: str = ""
    account: str = ""
    time_limit: str = ""  # sbatch --time, e.g. "2:00:00"
    extra_args: tuple[str, ...] = ()
    ship_code: bool = True
    lost_after: float = 60.0  # seconds without an answer before a running job is given up
    timeout: float = 10.0  # per client command

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SlurmSettings:
        env = os.environ if environ is None else environ
        work_root = env.get(WORK_ROOT_ENV, "").strip()
        if not work_root:
            raise RunnerError(
                f"the slurm runner needs a folder shared by this host and the cluster's nodes in ${WORK_ROOT_ENV}"
            )
        try:
            lost_after = float(env.get(LOST_AFTER_ENV) or 60)
            extra = tuple(shlex.split(env.get(ARGS_ENV, "")))
        except ValueError as exc:
            raise RunnerError(f"${LOST_AFTER_ENV} or ${ARGS_ENV}: {exc}") from exc
        return cls(
            work_root=work_root,
            address=env.get("SLURM_CONF") or DEFAULT_CONF,
            output_root=env.get(OUTPUT_ROOT_ENV) or work_root,
            python=env.get(PYTHON_ENV) or cls.python,
            partition=env.get(PARTITION_ENV, "").strip(),
            account=env.get(ACCOUNT_ENV, "").strip(),
            time_limit=env.get(TIME_ENV, "").strip(),
            extra_args=extra,
            ship_code=env.get(SHIP_CODE_ENV, "1") != "0",
            lost_after=lost_after,
        )


#: the settings a recorded job keeps (its cluster and its folder), over those of the environment
STORED = ("address", "work_root")


def where(settings: SlurmSettings) -> str:
    """The cluster, as messages name it."""
    return f"the SLURM cluster of {settings.address}"


def submission_id(job_id: int) -> str:
    """The SLURM job name, also the job's folder under the work root."""
    return f"reasonrank-{job_id}-{uuid.uuid4().hex[:8]}"


def job_folder(settings: SlurmSettings, sid: str) -> Path:
    return Path(settings.work_root) / sid


def entrypoint(settings: SlurmSettings, argv: Sequence[str]) -> str:
    """The command line the batch script runs: the same command a local job runs."""
    return shlex.join([settings.python, "-m", "reasonrank", *argv])


def sbatch_argv(settings: SlurmSettings, sid: str, nodes: int = 1) -> list[str]:
    folder = job_folder(settings, sid)
    argv = ["sbatch", "--parsable", f"--job-name={sid}", f"--chdir={folder}", f"--output={folder / LOG_NAME}"]
    argv.append("--export=NONE")
    argv += [f"--nodes={nodes}", "--ntasks-per-node=1"] if nodes > 1 else []
    argv += [f"--partition={settings.partition}"] if settings.partition else []
    argv += [f"--account={settings.account}"] if settings.account else []
    argv += [f"--time={settings.time_limit}"] if settings.time_limit else []
    return [*argv, *settings.extra_args, str(folder / SCRIPT_NAME)]


def batch_script(settings: SlurmSettings, sid: str, job_id: int, argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The batch script: the command itself, or for a multi-node training job (`--nodes N`) the
    follower around `srun` that runs NODE_SCRIPT once on each node (see node_script)."""
    variables = {
        **env,
        EVENTS_ENV: EVENTS_TO_STDOUT,
        JOB_ID_ENV: str(job_id),
        REGISTER_BY_APP_ENV: "1",
        "PYTHONUNBUFFERED": "1",
    }
    shape = launch_shape(argv)
    nodes = shape.nodes if shape else 1
    lines = ["#!/bin/bash", f"# reasonrank job {job_id}, written by the app (reasonrank.runners.slurm); submitted with"]
    lines.append(f"# {shlex.join(sbatch_argv(settings, sid, nodes))}")
    lines += [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]
    if settings.ship_code:
        code = shlex.quote(str(job_folder(settings, sid) / CODE_DIR))
        lines.append(f'export PYTHONPATH={code}"${{PYTHONPATH:+:$PYTHONPATH}}"')
    if shape is None:
        lines.append(f"exec {entrypoint(settings, argv)}")
        return "\n".join(lines) + "\n"
    # one task per node, each running NODE_SCRIPT; srun's --export=ALL: the step gets this script's
    # environment (sbatch --export=NONE would otherwise reach srun as SLURM_EXPORT_ENV=NONE)
    srun = ["srun", "--export=ALL", f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1"]
    srun += ["--kill-on-bad-exit=1", "--label", "/bin/bash", str(job_folder(settings, sid) / NODE_SCRIPT)]
    lines.append(f"exec {shlex.join([settings.python, '-m', 'reasonrank.runners.multinode', str(nodes), *srun])}")
    return "\n".join(lines) + "\n"


def node_script(settings: SlurmSettings, job_id: int, argv: Sequence[str]) -> str:
    """What each node of a multi-node job runs (srun starts it once per node): the command with
    `--node-rank $SLURM_NODEID` and `--main-address` node 0's address (the first host of
    $SLURM_JOB_NODELIST, as its NodeAddr when the controller answers) and a port from the job id.
    Only node 0 reports: the others run without the events variable."""
    line = entrypoint(settings, without_rank_flags(argv))
    lines = [
        "#!/bin/bash",
        f"# one node's part of reasonrank job {job_id} (reasonrank.runners.slurm): srun runs it on every node",
        f'[ "$SLURM_NODEID" = 0 ] || unset {EVENTS_ENV}',
        'main_host=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)',
        "main_addr=$(scontrol show node \"$main_host\" 2>/dev/null | sed -n 's/.*NodeAddr=\\([^ ]*\\).*/\\1/p' | head -n1)",
        f"main_port=$(({MAIN_PORT_BASE} + SLURM_JOB_ID % {MAIN_PORT_SPAN}))",
        'rank_flags=(--node-rank "$SLURM_NODEID" --main-address "${main_addr:-$main_host}:$main_port")',
        'echo "starting node $SLURM_NODEID on ${SLURMD_NODENAME:-$(hostname)}: ${rank_flags[*]}"',
        f'exec {line} "${{rank_flags[@]}}"',
    ]
    return "\n".join(lines) + "\n"


def _package_dir() -> Path:
    return Path(__file__).resolve().parent.parent


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _run(settings: SlurmSettings, argv: list[str]) -> subprocess.CompletedProcess:
    """Run a SLURM client command against the settings' cluster; RunnerError when it is missing
    or does not answer in time (a non-zero exit is the caller's to read)."""
    env = dict(os.environ)
    if settings.address != DEFAULT_CONF:
        env["SLURM_CONF"] = settings.address
    else:
        env.pop("SLURM_CONF", None)
    try:
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=settings.timeout)
    except FileNotFoundError as exc:
        raise RunnerError(
            f"the slurm runner needs SLURM's client commands: {argv[0]} is not on PATH (Debian: slurm-client)"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise RunnerError(f"{where(settings)} did not answer {argv[0]} in {settings.timeout:.0f} s") from exc


def submit(
    settings: SlurmSettings,
    sid: str,
    job_id: int,
    argv: Sequence[str],
    inputs: Mapping[str, str | Path],
    env: Mapping[str, str] | None = None,
) -> None:
    """Write the job's folder (script, `inputs/`, the code) and submit it as job name `sid`;
    `argv` must name the inputs as `inputs/<name>`."""
    folder = job_folder(settings, sid)
    try:
        folder.mkdir(parents=True, mode=0o700)  # the script may hold the job's environment
        (folder / INPUTS_DIR).mkdir()
        for name, path in inputs.items():
            shutil.copyfile(path, folder / INPUTS_DIR / name)
        if settings.ship_code:
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(_package_dir(), folder / CODE_DIR / _package_dir().name, ignore=ignore)
        script = folder / SCRIPT_NAME
        script.write_text(batch_script(settings, sid, job_id, argv, env or {}))
        shape = launch_shape(argv)
        if shape is not None:
            (folder / NODE_SCRIPT).write_text(node_script(settings, job_id, argv))
    except OSError as exc:
        raise RunnerError(f"could not write the SLURM job's folder {folder}: {exc}") from exc
    done = _run(settings, sbatch_argv(settings, sid, shape.nodes if shape else 1))
    if done.returncode != 0:
        raise RunnerError(f"could not submit to {where(settings)}: {_one_line(done.stderr or done.stdout)}")


def status(settings: SlurmSettings, sid: str) -> RemoteStatus:
    """The job's state as `squeue` reports it (never raises)."""
    try:
        done = _run(settings, ["squeue", "--noheader", "--states=all", f"--name={sid}", "--format=%i|%T|%r"])
    except RunnerError as exc:
        return RemoteStatus("unreachable", str(exc))
    if done.returncode != 0:
        return RemoteStatus("unreachable", f"cannot reach {where(settings)}: {_one_line(done.stderr or done.stdout)}")
    rows = [line.split("|") for line in done.stdout.splitlines() if line.count("|") == 2]
    if not rows:
        return RemoteStatus(
            "lost",
            f"{where(settings)} has no job {sid} any more (it ended more than MinJobAge seconds ago without "
            "its log saying how, or it was never queued)",
        )
    slurm_id, state, reason = rows[-1]
    # a job past its time limit is COMPLETING (reason TimeLimit) while its command handles SIGTERM
    mapped = "failed" if reason == "TimeLimit" else _STATES.get(state, "running")
    detail = f"SLURM job {slurm_id} {state}" + (f" ({reason})" if reason and reason != "None" else "")
    return RemoteStatus(mapped, detail)


def logs(settings: SlurmSettings, sid: str) -> str | None:
    """The job's whole log so far (its `--output` file; None before it exists)."""
    try:
        return (job_folder(settings, sid) / LOG_NAME).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def stop(settings: SlurmSettings, sid: str) -> None:
    """`scancel` the job: SLURM sends SIGTERM, then SIGKILL after the cluster's KillWait."""
    done = _run(settings, ["scancel", f"--name={sid}"])
    if done.returncode != 0:
        raise RunnerError(f"could not stop job {sid} on {where(settings)}: {_one_line(done.stderr or done.stdout)}")
