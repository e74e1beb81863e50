"""Multi-process training: `reasonrank train … --processes-per-node N --nodes M --strategy S` runs
itself again under `accelerate launch`.

The command a user types (and a job runs, locally or on Ray) stays one `reasonrank train …`; when
it asks for more than one process it becomes the launcher's parent: it starts
`python -m accelerate.commands.launch <launcher flags> -m reasonrank train <the same flags minus
these>` and waits. Strategies are the shipped accelerate configs (`zero3`, `fsdp` in
configs/accelerate/) or plain DDP (`ddp`, no file; gloo on CPU, NCCL on GPUs); a path to another
accelerate YAML works too. The command-line counts override the file's.

Reporting: only rank 0 writes events (reasonrank.jobs.EventLog). A rank-0 child that succeeds
writes the job's `end` with its outputs (the parent then writes none); a failing child writes no
`end` — the parent does, failed, with the launcher's last lines (torchrun names the failed rank
and its error there), so a failure on any rank fails the job with that rank's lines. Multi-node
runs start this command once per node with `--node-rank` and `--main-address`.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from collections.abc import Collection, Sequence
from pathlib import Path

from reasonrank.io import InputError

STRATEGIES = ("ddp", "zero3", "fsdp")
LAUNCHED_ENV = "REASONRANK_LAUNCHED"  # set in the children: they are ranks of a launch
#: the flags that describe the launch itself (dropped from the children's command line)
LAUNCH_FLAGS = ("--processes-per-node", "--nodes", "--strategy", "--node-rank", "--main-address")
MAIN_PORT = 29500
TAIL_LINES = 12


def configs_dir() -> Path:
    """configs/accelerate of the checkout this package runs from."""
    return Path(__file__).resolve().parent.parent / "configs" / "accelerate"


def strategy_file(strategy: str) -> Path | None:
    """The accelerate YAML of a strategy (None for plain DDP); refused when it does not exist."""
    if strategy == "ddp":
        return None
    path = configs_dir() / f"{strategy}.yaml" if strategy in STRATEGIES else Path(strategy)
    if not path.is_file():
        raise InputError(f"strategy {strategy!r}: no accelerate config at {path} (choose {', '.join(STRATEGIES)})")
    return path


def is_launched_child() -> bool:
    return os.environ.get(LAUNCHED_ENV) == "1"


def launcher_argv(
    processes_per_node: int,
    nodes: int,
    strategy: str,
    device: str,
    node_rank: int = 0,
    main_address: str | None = None,
) -> list[str]:
    """`python -m accelerate.commands.launch …` up to (not including) the training module."""
    if processes_per_node < 1 or nodes < 1:
        raise InputError("processes-per-node and nodes must be at least 1")
    if nodes > 1 and not main_address:
        raise InputError("a multi-node launch needs --main-address (host[:port] of node 0)")
    config = strategy_file(strategy)
    argv = [sys.executable, "-m", "accelerate.commands.launch"]
    argv += ["--config_file", str(config)] if config else ["--multi_gpu"]
    if config is None or device == "cpu":  # no mixed precision on CPU; DDP takes it from the run config
        argv += ["--mixed_precision", "no"]
    argv += ["--dynamo_backend", "no", "--num_processes", str(processes_per_node * nodes)]
    argv += ["--num_machines", str(nodes), "--machine_rank", str(node_rank)]
    if main_address:
        host, _, port = main_address.partition(":")
        argv += ["--main_process_ip", host, "--main_process_port", port or str(MAIN_PORT)]
    return argv


def child_argv(argv: Sequence[str]) -> list[str]:
    """The command line without the launch flags."""
    return without_flags(argv, LAUNCH_FLAGS)


def without_flags(argv: Sequence[str], flags: Collection[str]) -> list[str]:
    """The command line without `flags`, each of which takes one value (`--flag V` or `--flag=V`)."""
    out, skip = [], False
    for word in argv:
        if skip:
            skip = False
            continue
        name = word.split("=", 1)[0]
        if name in flags:
            skip = "=" not in word
            continue
        out.append(word)
    return out


def run_launch(launcher: Sequence[str], argv: Sequence[str]) -> tuple[int, str]:
    """Run `launcher -m reasonrank <argv>`, passing its output through; returns (exit code, the
    ranks' `error:` lines then the last lines). The children inherit this environment (so the
    job's events destination)."""
    command = [*launcher, "-m", "reasonrank", *argv]
    env = {**os.environ, LAUNCHED_ENV: "1", "PYTHONUNBUFFERED": "1"}
    last: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    errors: list[str] = []  # the ranks' own one-line errors, which the launcher's traceback buries
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for raw in process.stdout:  # whole lines, so a tagged event line is passed on unsplit
            sys.stdout.buffer.write(raw)
            sys.stdout.buffer.flush()
            text = raw.decode(errors="replace").rstrip().rsplit("\r", 1)[-1]
            if text.startswith("error: ") and text not in errors:
                errors.append(text)
            if text.strip():
                last.append(text)
        code = process.wait()
    except KeyboardInterrupt:  # cancelled: the ranks got the same signal (one process group)
        process.terminate()
        process.wait()
        raise
    return code, "\n".join([*errors, *(line for line in last if line not in errors)])
