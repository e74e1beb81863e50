"""The driver of a multi-node training job on Ray: `python -m reasonrank.runners.ray_multinode
--python PY -- train … --nodes N …` is the entrypoint the `ray` runner submits for such a job.

It reserves N bundles in a placement group with strategy STRICT_SPREAD (so each is on a different
node), each bundle with the CPUs of the node's processes (`--processes-per-node`) and as many GPUs
unless the run is on CPU; then it starts one actor pinned to each bundle, and each actor runs the
job's command once on its node, with `--node-rank` the bundle's index and `--main-address` the IP of
bundle 0's node and a port that was free there. The actors' processes inherit the job's runtime
environment (the uploaded working directory with its inputs, the shipped code, the job's
variables), but for the events variable, which only node 0 keeps (see reasonrank.runners.multinode).

The driver polls the actors for their output and passes it through a RankFollower onto its stdout,
the job's log: node 0's lines unchanged (its tagged event lines are the job's events), the others'
prefixed `[node <i>]`. The first node whose command fails ends the job failed with that node's last
lines, and the others are stopped. A stop of the job (SIGTERM to this driver) is passed to every
node's command, and node 0's last lines (its `cancelled` end) are forwarded before the driver exits.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from reasonrank.jobs import EVENTS_ENV
from reasonrank.runners.multinode import RankFollower, describe_exit, launch_shape, rank_argv

POLL_S = 0.2
STOP_GRACE_S = 2.5  # Ray kills a stopped job's driver 3 s after its SIGTERM by default


class NodeProcess:
    """One node's command, run by an actor pinned to that node's bundle (see main)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.reader: threading.Thread | None = None

    def address(self) -> tuple[str, int]:
        """This node's IP and a port free on it now (node 0's is the rendezvous address)."""
        import ray

        with socket.socket() as probe:
            probe.bind(("", 0))
            port = probe.getsockname()[1]
        return ray.util.get_node_ip_address(), port

    def start(self, argv: list[str], keep_events: bool) -> None:
        env = dict(os.environ)
        if not keep_events:
            env.pop(EVENTS_ENV, None)
        env["PYTHONUNBUFFERED"] = "1"
        # its own session, so a stop reaches the launcher and every training process of the node
        self.process = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            with self.lock:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def poll(self, since: int) -> tuple[list[str], int | None]:
        """The lines after the first `since`, and the exit status once the command ended and its
        output is read to the end (None before)."""
        code = self.process.poll() if self.process is not None else None
        if code is not None and self.reader is not None:
            self.reader.join(timeout=1.0)  # its last lines (a child may hold the output open longer)
        with self.lock:
            return self.lines[since:], code

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
        elif self.process is not None:  # ended, but its launcher's children may outlive it
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _bundle(processes_per_node: int, device: str, cluster_gpus: float) -> dict[str, float]:
    bundle = {"CPU": float(processes_per_node)}
    if device == "cuda" or (device == "auto" and cluster_gpus > 0):
        bundle["GPU"] = float(processes_per_node)
    return bundle


def run(python: str, argv: Sequence[str], placement_timeout: float = 600.0) -> int:
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    shape = launch_shape(argv)
    if shape is None:
        print("error: ray_multinode runs a `train … --nodes N` command with N > 1", file=sys.stderr)
        return 2
    follower = RankFollower(shape.nodes)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    ray.init(log_to_driver=False, logging_level="WARNING")  # the job's cluster ($RAY_ADDRESS)
    bundle = _bundle(shape.processes_per_node, shape.device, ray.cluster_resources().get("GPU", 0))
    group = placement_group([dict(bundle) for _ in range(shape.nodes)], strategy="STRICT_SPREAD")
    print(f"reserving {shape.nodes} nodes on the Ray cluster (STRICT_SPREAD bundles of {bundle})", flush=True)
    timeout = placement_timeout
    ready = group.wait(timeout_seconds=timeout)
    if not ready or stopping.is_set():
        remove_placement_group(group)
        if stopping.is_set():
            return follower.finish_cancelled()
        return follower.finish(
            f"the Ray cluster did not offer {shape.nodes} distinct nodes with {bundle} each in {timeout:.0f} s "
            f"(a STRICT_SPREAD placement group; the cluster has {ray.cluster_resources()})"
        )
    # by reference to this module (importable on every node), not the `__main__` copy by value
    from reasonrank.runners.ray_multinode import NodeProcess as node_process

    actor_class = ray.remote(node_process)
    actors = [
        actor_class.options(
            num_cpus=bundle["CPU"],
            num_gpus=bundle.get("GPU", 0),
            scheduling_strategy=PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=index),
        ).remote()
        for index in range(shape.nodes)
    ]
    hosts = ray.get([actor.address.remote() for actor in actors])
    main_address = "{}:{}".format(*hosts[0])
    commands = [[python, "-m", "reasonrank", *rank_argv(argv, index, main_address)] for index in range(shape.nodes)]
    for index, command in enumerate(commands):
        print(f"starting node {index} on {hosts[index][0]}: {shlex.join(command)}", flush=True)
    ray.get([actor.start.remote(commands[index], index == 0) for index, actor in enumerate(actors)])
    seen = [0] * shape.nodes
    codes: list[int | None] = [None] * shape.nodes
    stop_deadline: float | None = None
    while any(code is None for code in codes):
        polls = ray.get([actor.poll.remote(seen[index]) for index, actor in enumerate(actors)])
        for index, (lines, code) in enumerate(polls):
            seen[index] += len(lines)
            for text in lines:
                follower.line(index, text)
            if code is not None and codes[index] is None:
                codes[index] = code
                if code != 0:
                    follower.failed(index, describe_exit(code))
        if (follower.failures or stopping.is_set()) and stop_deadline is None:
            stop_deadline = time.monotonic() + (STOP_GRACE_S if stopping.is_set() else 30.0)
            ray.get([actor.stop.remote() for index, actor in enumerate(actors) if codes[index] is None])
        if stop_deadline is not None and time.monotonic() > stop_deadline:
            ray.get([actor.stop.remote(signal.SIGKILL) for actor in actors])
            break
        time.sleep(POLL_S)
    ray.get([actor.stop.remote() for actor in actors])  # whatever a node's launcher left behind
    remove_placement_group(group)
    if stopping.is_set():
        return follower.finish_cancelled()
    return follower.finish()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reasonrank.runners.ray_multinode")
    parser.add_argument("--python", default=sys.executable, help="the nodes' python that has this package")
    parser.add_argument(
        "--placement-timeout", type=float, default=600.0, help="seconds to wait for the nodes before failing"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- train … --nodes N …")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return run(args.python, command, args.placement_timeout)


if __name__ == "__main__":
    sys.exit(main())
