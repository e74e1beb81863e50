"""Multi-node training jobs on an orchestrating runner (`ray`, `slurm`): one command, once per node.

A `reasonrank train … --nodes N` (N > 1) job names no `--node-rank` or `--main-address`: the
runner starts the command once on each of N nodes with `--node-rank <i> --main-address <node 0's
host:port>` appended (rank_argv), and each copy runs `accelerate launch` for its node's processes
(reasonrank.launch). How the nodes are reserved differs — SLURM: `sbatch --nodes N
--ntasks-per-node 1` and `srun` (reasonrank.runners.slurm, whose batch script runs this module's
`main` around srun); Ray: a STRICT_SPREAD placement group of N bundles (reasonrank.runners.ray_multinode)
— what happens to the ranks' output is the same, and is RankFollower:

- node 0's output goes to the job's log unchanged (its tagged event lines are the job's events:
  only global rank 0 reports, see reasonrank.jobs.EventLog; the other nodes run without
  REASONRANK_JOB_EVENTS), the other nodes' lines prefixed `[node <i>] `;
- the first node whose command fails fails the job, with that node's last lines: node 0's own
  `end` of a failure (which would only name its broken connections) is held back and replaced,
  unless node 0 was the first to fail.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from reasonrank.jobs import EVENT_TAG, EVENTS_ENV, EVENTS_TO_STDOUT
from reasonrank.launch import without_flags

#: the runners that start a multi-node job's command on every node themselves
ORCHESTRATING_RUNNERS = ("ray", "slurm")
#: the flags a runner appends for each node (a job's own command may not give them)
RANK_FLAGS = ("--node-rank", "--main-address")
TAIL_LINES = 12
#: srun --label's prefix: the task id, right-aligned to the widest id, then ": "
_LABEL = re.compile(r"^ *(\d+): ?(.*)$", re.S)
#: srun's report of a task that failed, e.g. "srun: error: node2: task 1: Exited with exit code 3"
_SRUN_TASK = re.compile(r"^srun: error: \S+: tasks? (\d+)(?:-\d+)?: (.*)$")


@dataclass(frozen=True)
class Shape:
    """How a training command spreads: nodes, processes per node, and the device it asked for."""

    nodes: int
    processes_per_node: int
    device: str = "auto"


def launch_shape(argv: Sequence[str]) -> Shape | None:
    """The shape of a `train` command line that asks for more than one node (else None)."""
    if not argv or argv[0] != "train" or not any(word.split("=", 1)[0] == "--nodes" for word in argv):
        return None
    from reasonrank.cli import parse_command
    from reasonrank.cli.train import resolve_run_config
    from reasonrank.io import InputError

    try:
        config = parse_command(list(argv))
    except (SystemExit, InputError):  # not a command line: run as it is, and the command says why
        return None
    if config.nodes <= 1:
        return None
    try:
        device = resolve_run_config(config).device
    except (InputError, ValueError, OSError):  # a config file only the nodes see: decide there
        device = config.run.device or "auto"
    return Shape(config.nodes, config.processes_per_node, device)


def without_rank_flags(argv: Sequence[str]) -> list[str]:
    """The command line without `--node-rank` and `--main-address`."""
    return without_flags(argv, RANK_FLAGS)


def rank_argv(argv: Sequence[str], node_rank: int, main_address: str) -> list[str]:
    """The command one node runs: the job's command with its node rank and node 0's address."""
    return [*without_rank_flags(argv), "--node-rank", str(node_rank), "--main-address", main_address]


def describe_exit(code: int) -> str:
    """An exit status in words (a negative one is the signal that ended the process)."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class RankFollower:
    """The ranks' output merged into this process's stdout (the job's log), and the job's outcome."""

    def __init__(self, nodes: int, out: BinaryIO | None = None) -> None:
        self.nodes = nodes
        self.out = out if out is not None else sys.stdout.buffer
        self.tails = {rank: collections.deque(maxlen=TAIL_LINES) for rank in range(nodes)}
        self.errors: dict[int, list[str]] = {rank: [] for rank in range(nodes)}
        self.failures: list[tuple[int, str]] = []  # (node rank, how it failed), first first
        self.held_end: str | None = None  # node 0's tagged `end` of a failure, if it wrote one

    def write(self, text: str) -> None:
        self.out.write((text + "\n").encode())
        self.out.flush()

    def line(self, rank: int, text: str) -> None:
        """One line of a node's output (without its newline)."""
        at = text.find(EVENT_TAG)
        if rank == 0 and at >= 0:
            try:
                event = json.loads(text[at + len(EVENT_TAG) :])
            except ValueError:
                event = {}
            if event.get("event") == "end" and event.get("status") != "succeeded":
                self.held_end = text[at:]
                if text[:at].strip():
                    self.write(text[:at])
                return
        self.write(text if rank == 0 else f"[node {rank}] {text}")
        shown = (text[:at] if at >= 0 else text).rsplit("\r", 1)[-1].rstrip()
        if shown.strip() and rank in self.tails:
            self.tails[rank].append(shown)
            if shown.startswith("error: ") and shown not in self.errors[rank]:
                self.errors[rank].append(shown)

    def failed(self, rank: int, how: str) -> None:
        """Node `rank`'s command failed (`how`: "exited with status 1" …); the first one counts."""
        if all(rank != seen for seen, _ in self.failures):
            self.failures.append((rank, how))

    def last_lines(self, rank: int) -> str:
        errors = self.errors.get(rank, [])
        return "\n".join([*errors, *(line for line in self.tails.get(rank, ()) if line not in errors)])

    def finish(self, message: str = "") -> int:
        """Write the job's outcome (when no node did) and return the exit status: 0 only if no node
        failed. `message` replaces the failure's description (e.g. nodes that never started)."""
        if not self.failures and not message:
            if self.held_end is not None:  # node 0 ended badly but exited 0: its own word stands
                self.write(self.held_end)
                return 1
            return 0
        if self.failures and self.failures[0][0] == 0 and self.held_end is not None and not message:
            self.write(self.held_end)  # node 0 failed first: its end names its error
            return 1
        if not message:
            rank, how = self.failures[0]
            message = f"node rank {rank} of {self.nodes} {how}; its last lines:\n{self.last_lines(rank)}".rstrip()
        print(f"error: {message.splitlines()[0]}", file=sys.stderr, flush=True)
        if os.environ.get(EVENTS_ENV) == EVENTS_TO_STDOUT:
            event = {"event": "end", "status": "failed", "message": message, "outputs": {}}
            self.write(EVENT_TAG + json.dumps(event, ensure_ascii=False))
        return 1

    def finish_cancelled(self) -> int:
        """The job was stopped (scancel, a Ray stop): node 0's own `cancelled` end when it wrote
        one, else one written here; the nodes' failures that the stop caused do not count."""
        if self.held_end is not None:
            self.write(self.held_end)
        elif os.environ.get(EVENTS_ENV) == EVENTS_TO_STDOUT:
            event = {"event": "end", "status": "cancelled", "message": "cancelled", "outputs": {}}
            self.write(EVENT_TAG + json.dumps(event))
        return 130


def follow_srun(argv: Sequence[str], nodes: int, out: BinaryIO | None = None) -> int:
    """Run `srun --label …` (one task per node), pass its output on through a RankFollower and
        return 0 only if every task succeeded. A SIGTERM (scancel) is left to srun, which forwards
        it to the tasks: this keeps reading until srun ends, so node 0's `cancelled` end arrives, and the
    job ends cancelled (or failed, when SLURM's reason says so: see db.remote_jobs)."""
    follower = RankFollower(nodes, out)
    stopped: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda number, _: stopped.append(number))
    try:
        process = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert process.stdout is not None
        for raw in process.stdout:
            text = raw.decode(errors="replace").rstrip("\n")
            labelled = _LABEL.match(text)
            if labelled and int(labelled.group(1)) < nodes:
                follower.line(int(labelled.group(1)), labelled.group(2))
                continue
            follower.write(text)  # srun's and slurmstepd's own lines
            task = _SRUN_TASK.match(text.strip())
            if task and int(task.group(1)) < nodes:
                follower.failed(int(task.group(1)), task.group(2).strip().rstrip(".").lower())
        code = process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if stopped:
        return follower.finish_cancelled()
    if code != 0 and not follower.failures:
        return follower.finish(f"srun {describe_exit(code)} before any node's command failed")
    return follower.finish()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m reasonrank.runners.multinode NODES srun …` (the SLURM batch script's last line)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or not args[0].isdigit():
        print("usage: python -m reasonrank.runners.multinode NODES srun --label …", file=sys.stderr)
        return 2
    return follow_srun(args[1:], int(args[0]))


if __name__ == "__main__":
    sys.exit(main())
