"""The `ray` runner: a job's command submitted to a Ray cluster through the Ray Jobs API.

The entrypoint is the same `python -m reasonrank <argv…>` a local job runs, with a runtime
environment that carries the inputs (an uploaded working directory), this package's own source
(`py_modules`, so the cluster runs the code the app shows unless REASONRANK_RAY_SHIP_CODE=0) and
the job's environment (events to stdout as tagged lines, see reasonrank.runners). The app follows
the job by its submission id — chosen before submitting, so a restart between submitting and
recording it loses nothing — and reads the log over HTTP: nothing is shared but the Jobs API.

Every request has a timeout (the SDK has none), so a cluster that stops answering shows up as
"unreachable" on the job instead of hanging the app's poll.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonrank.jobs import EVENTS_ENV, EVENTS_TO_STDOUT, JOB_ID_ENV
from reasonrank.runners import INPUTS_DIR, REGISTER_BY_APP_ENV, RemoteStatus, RunnerError
from reasonrank.runners.multinode import launch_shape

ADDRESS_ENV = "REASONRANK_RAY_ADDRESS"
HEADERS_ENV = "REASONRANK_RAY_HEADERS"  # JSON object of HTTP headers, e.g. an Authorization token
OUTPUT_ROOT_ENV = "REASONRANK_RAY_OUTPUT_ROOT"
PYTHON_ENV = "REASONRANK_RAY_PYTHON"
SHIP_CODE_ENV = "REASONRANK_RAY_SHIP_CODE"
LOST_AFTER_ENV = "REASONRANK_RAY_LOST_AFTER"
#: seconds a multi-node job waits for its nodes (the cluster may have to scale up) before failing
PLACEMENT_TIMEOUT_ENV = "REASONRANK_RAY_PLACEMENT_TIMEOUT"
LABEL = "Ray"
#: the settings a recorded job keeps (its cluster), over those of the environment
STORED = ("address",)
_TERMINAL = {"SUCCEEDED": "succeeded", "FAILED": "failed", "STOPPED": "stopped"}


@dataclass(frozen=True)
class RaySettings:
    """Where the cluster is and how to reach it; read from the environment, never stored."""

    address: str
    headers: dict[str, str] = field(default_factory=dict)
    output_root: str = "/tmp/reasonrank-runs"  # cluster folder for outputs the form left in the app's data dir
    python: str = "python"  # the interpreter on the cluster that has this package's dependencies
    ship_code: bool = True
    lost_after: float = 60.0  # seconds without an answer before a running job is given up
    timeout: float = 10.0  # per HTTP request
    placement_timeout: float = 600.0  # seconds a multi-node job waits for its nodes

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RaySettings:
        import json

        env = os.environ if environ is None else environ
        address = env.get(ADDRESS_ENV, "").strip()
        if not address:
            raise RunnerError(f"the ray runner needs the cluster's Jobs API address in ${ADDRESS_ENV}")
        if "://" not in address:
            address = f"http://{address}"
        try:
            headers = json.loads(env.get(HEADERS_ENV) or "{}")
            lost_after = float(env.get(LOST_AFTER_ENV) or 60)
            placement_timeout = float(env.get(PLACEMENT_TIMEOUT_ENV) or 600)
        except ValueError as exc:
            raise RunnerError(f"${HEADERS_ENV}, ${LOST_AFTER_ENV} or ${PLACEMENT_TIMEOUT_ENV}: {exc}") from exc
        if not isinstance(headers, dict):
            raise RunnerError(f"${HEADERS_ENV} must be a JSON object of header names to values")
        return cls(
            address=address.rstrip("/"),
            headers={str(k): str(v) for k, v in headers.items()},
            output_root=env.get(OUTPUT_ROOT_ENV) or cls.output_root,
            python=env.get(PYTHON_ENV) or cls.python,
            ship_code=env.get(SHIP_CODE_ENV, "1") != "0",
            lost_after=lost_after,
            placement_timeout=placement_timeout,
        )


_CLIENTS: dict[tuple[str, tuple], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(settings: RaySettings):
    """A Jobs API client for the cluster (cached; its constructor makes a version request)."""
    import logging

    import requests
    from ray.job_submission import JobSubmissionClient

    logging.getLogger("ray").setLevel(logging.WARNING)  # not a line per upload in the app's terminal

    class _TimedClient(JobSubmissionClient):
        def _do_request(self, method, endpoint, **kwargs):  # the SDK sends without a timeout
            kwargs.setdefault("timeout", settings.timeout)
            return super()._do_request(method, endpoint, **kwargs)

    key = (settings.address, tuple(sorted(settings.headers.items())))
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            try:
                _CLIENTS[key] = _TimedClient(settings.address, headers=settings.headers or None)
            except (ConnectionError, RuntimeError, requests.RequestException, ValueError) as exc:
                raise RunnerError(f"cannot reach the Ray cluster at {settings.address}: {_one_line(exc)}") from exc
        return _CLIENTS[key]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def where(settings: RaySettings) -> str:
    """The cluster, as messages name it."""
    return f"the Ray cluster at {settings.address}"


def submission_id(job_id: int) -> str:
    return f"reasonrank-{job_id}-{uuid.uuid4().hex[:8]}"


def entrypoint(settings: RaySettings, argv: Sequence[str]) -> str:
    """The shell line Ray runs: the same command a local job runs, with the cluster's python; for
    a multi-node training job (`--nodes N`), the driver that runs it once on each of N nodes
    (reasonrank.runners.ray_multinode)."""
    if launch_shape(argv) is not None:
        driver = [settings.python, "-m", "reasonrank.runners.ray_multinode", "--python", settings.python]
        driver += ["--placement-timeout", f"{settings.placement_timeout:g}", "--"]
        return shlex.join([*driver, *argv])
    return shlex.join([settings.python, "-m", "reasonrank", *argv])


def _package_dir() -> Path:
    return Path(__file__).resolve().parent.parent


def submit(
    settings: RaySettings,
    sid: str,
    job_id: int,
    argv: Sequence[str],
    inputs: Mapping[str, str | Path],
    env: Mapping[str, str] | None = None,
) -> str:
    """Submit the job under submission id `sid`; `inputs` (name → local file) are uploaded into the
    working directory's `inputs/` folder, where `argv` must name them. Returns the entrypoint."""
    import requests

    client = _client(settings)
    line = entrypoint(settings, argv)
    env_vars = {
        **(env or {}),
        EVENTS_ENV: EVENTS_TO_STDOUT,
        JOB_ID_ENV: str(job_id),
        REGISTER_BY_APP_ENV: "1",
        "PYTHONUNBUFFERED": "1",
    }
    staging = Path(tempfile.mkdtemp(prefix="reasonrank-ray-"))
    try:
        (staging / INPUTS_DIR).mkdir()
        for name, path in inputs.items():
            shutil.copyfile(path, staging / INPUTS_DIR / name)
        runtime_env: dict[str, Any] = {"working_dir": str(staging), "env_vars": env_vars}
        if settings.ship_code:
            runtime_env["py_modules"] = [str(_package_dir())]
        client.submit_job(entrypoint=line, submission_id=sid, runtime_env=runtime_env, metadata={"job": str(job_id)})
    except (ConnectionError, RuntimeError, requests.RequestException, ValueError, OSError) as exc:
        raise RunnerError(f"could not submit to the Ray cluster at {settings.address}: {_one_line(exc)}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return line


def status(settings: RaySettings, sid: str) -> RemoteStatus:
    """The submission's status as the cluster reports it (never raises)."""
    import requests

    try:
        info = _client(settings).get_job_info(sid)
    except RunnerError as exc:
        return RemoteStatus("unreachable", str(exc))
    except (ConnectionError, requests.RequestException) as exc:
        return RemoteStatus("unreachable", f"cannot reach the Ray cluster at {settings.address}: {_one_line(exc)}")
    except RuntimeError as exc:
        if "does not exist" in str(exc) or "404" in str(exc):
            return RemoteStatus(
                "lost",
                f"the Ray cluster at {settings.address} has no job {sid} any more "
                "(its head restarted, or the job was deleted there)",
            )
        return RemoteStatus("unreachable", f"the Ray cluster at {settings.address} answered: {_one_line(exc)}")
    name = str(getattr(info.status, "value", info.status))
    state = _TERMINAL.get(name, "pending" if name == "PENDING" else "running")
    return RemoteStatus(state, info.message or "", getattr(info, "driver_exit_code", None))


def logs(settings: RaySettings, sid: str) -> str | None:
    """The job's whole log so far (None when the cluster does not answer)."""
    import requests

    try:
        return _client(settings).get_job_logs(sid)
    except (RunnerError, ConnectionError, RuntimeError, requests.RequestException):
        return None


def stop(settings: RaySettings, sid: str) -> None:
    """Ask the cluster to stop the job (SIGTERM to its entrypoint, SIGKILL after Ray's grace)."""
    import requests

    try:
        _client(settings).stop_job(sid)
    except (ConnectionError, RuntimeError, requests.RequestException) as exc:
        raise RunnerError(
            f"could not stop job {sid} on the Ray cluster at {settings.address}: {_one_line(exc)}"
        ) from exc
