"""A throwaway PostgreSQL server from Debian's binaries, for tests (about 1 s to start).

initdb refuses to run as root, so when the tests run as root the data directory is handed to the
`postgres` user and the server commands run through `runuser -u postgres --`. Durability is
switched off (fsync, synchronous_commit, full_page_writes): the cluster is deleted afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def pg_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb, or None when not installed."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _run(args: list[str]) -> None:
    done = subprocess.run(_as_server_user(args), capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        output = done.stderr.strip() or done.stdout.strip()
        raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {output}")


@contextmanager
def pg_server() -> Iterator[str]:
    """Start a fresh cluster on a free loopback port; yield its postgresql+psycopg URL."""
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin")
    tmp = Path(tempfile.mkdtemp(prefix="reasonrank-pg-"))
    data = tmp / "data"
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    _run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ]
    )
    started = False
    try:
        for _attempt in range(3):  # a port picked free can be taken before the server binds it
            port = _free_port()
            options = (
                f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
            )
            try:
                _run(
                    [
                        str(bin_dir / "pg_ctl"),
                        "-D",
                        str(data),
                        "-o",
                        options,
                        "-l",
                        str(tmp / "log"),
                        "-w",
                        "-t",
                        "30",
                        "start",
                    ]
                )
            except RuntimeError:
                continue
            started = True
            break
        if not started:
            log = (tmp / "log").read_text(errors="replace") if (tmp / "log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {log[-2000:]}")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(tmp, ignore_errors=True)
