"""The job panel every long-work tab shares (Synthesize, Train, Eval): launch, watch, cancel.

A tab builds its form over a CLI config and calls `launch` from its Start handler; the panel
does the rest: a gr.Timer folds the job's events file into a status line, a progress bar with
ETA, the log tail and (for training) curves, and keeps a history of past jobs of that kind.
Everything it shows comes from db.jobs, so a browser refresh or an app restart loses nothing.
API endpoints `/{kind}_job_view` and `/{kind}_job_cancel` give scripts and tests the same view.
Gradio is imported at module level on purpose (handlers' gr.Request hints); this module is only
imported inside ui.build_app.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd
from gradio.context import Context
from sqlalchemy import Engine

from db.jobs import JobView, cancel_job, launch_job, list_jobs, refresh_job
from db.users import get_user
from reasonrank.cli import config_to_argv, config_to_command
from reasonrank.cli.submit import SubmitConfig
from reasonrank.io import InputError
from reasonrank.jobs import FINISHED
from reasonrank.redact import check_config
from reasonrank.runners import RUNNERS
from ui.auth import require_admin, reviewer
from ui.charts import line_panels
from ui.render import md_text

HISTORY_COLUMNS = ["id", "status", "command", "message"]
LOCAL_RUNNER = "local"
_FIGURE_LABELS = {"rate": "per s", "tokens_in": "tokens in", "tokens_out": "tokens out", "cost_usd": "$"}


@dataclass
class JobPanel:
    """The components of one tab's job panel (see the module docstring)."""

    job_id: gr.State
    status: gr.Markdown
    bar: gr.HTML
    log: gr.Code
    plot: gr.HTML | None  # curves (ui.charts), one panel per quantity
    cancel: gr.Button
    history: gr.Dataframe


def launch(
    engine: Engine,
    kind: str,
    config: Any,
    request: gr.Request,
    *,
    admin_only: bool = True,
    lineage: dict | None = None,
    env: dict | None = None,
    runner: str = "local",
) -> int:
    """Start the CLI command for `config` as a job of the logged-in user; the role is checked
    here, on the server, so an annotator calling the API directly is refused too."""
    try:
        name = require_admin(engine, request) if admin_only else reviewer(request)
        user = get_user(engine, name)
        check_config(dataclasses.asdict(config))  # no key reaches the stored config or the command line
        argv = config_to_argv(config)
        config_dict = dataclasses.asdict(config)
        return launch_job(engine, kind, argv, config_dict, created_by=user.id, lineage=lineage, env=env, runner=runner)
    except (InputError, ValueError) as exc:
        raise gr.Error(str(exc)) from exc


def runner_dropdown(elem_id: str) -> gr.Dropdown:
    """Where a tab's job runs: every runner of the registry (reasonrank.runners.RUNNERS), local first."""
    return gr.Dropdown(
        list(RUNNERS),
        value=LOCAL_RUNNER,
        label="Runner (where the job runs)",  # a cluster's address: the app's environment (see README)
        elem_id=elem_id,
    )


def job_command(config: Any, runner: str | None) -> str:
    """The command a tab's Start runs, as a shell user would type it: the CLI command itself on
    the local runner, else that command handed to `reasonrank submit --runner NAME`."""
    if (runner or LOCAL_RUNNER) == LOCAL_RUNNER:
        return config_to_command(config)
    return config_to_command(SubmitConfig(cmd=shlex.join(config_to_argv(config)), runner=runner))


def code_span(text: Any) -> str:
    """`text` as a Markdown code span, shown exactly as it is: the fence is one backtick longer
    than any run inside it (an entity such as &#x27; would show literally inside a code span, and a
    backtick would close a plain one)."""
    text = str(text).replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def code_block(text: str) -> str:
    """`text` as a fenced Markdown block, shown exactly as it is (no entity, link or markup is
    interpreted): the fence is longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _figures(progress: dict[str, Any] | None) -> str:
    if not progress:
        return ""
    parts = []
    for key, value in progress.items():
        if key in ("time", "event", "done", "total", "unit") or value is None:
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
        elif isinstance(value, float):
            value = f"{value:.4g}"
        parts.append(f"{_FIGURE_LABELS.get(key, key.replace('_', ' '))}: {value}")
    return " · ".join(parts)


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"ETA {hours}:{minutes:02d}:{secs:02d}" if hours else f"ETA {minutes}:{secs:02d}"


def render_status(view: JobView | None) -> str:
    if view is None:
        return "No job started yet."
    line = f"**Job {view.id}** ({view.kind}) — **{view.status}**"
    if view.progress:
        line += f" · {view.progress['done']}/{view.progress['total']} {view.progress.get('unit', '')}s"
    extra = " · ".join(part for part in (_figures(view.progress), _eta(view.eta_seconds)) if part)
    message = f"\n\n{code_block(view.message)}" if view.message and view.message != "done" else ""
    remote = view.config.get("runner") or {}
    where = (
        f" on {md_text(remote['name'])} at {code_span(remote['address'])} as {code_span(remote['submission_id'])}"
        if remote
        else ""
    )
    return (
        line
        + (f"\n\n{extra}" if extra else "")
        + message
        + "\n\n"
        + code_span(f"reasonrank {' '.join(view.argv)}")
        + where
    )


def render_bar(view: JobView | None) -> str:
    done = total = 0
    if view is not None and view.progress:
        done, total = view.progress.get("done", 0), view.progress.get("total", 0)
    share = 1.0 if view is not None and view.status == "succeeded" else (done / total if total else 0.0)
    colour = {"failed": "#d9534f", "cancelled": "#999"}.get(view.status if view else "", "#3b82f6")
    return (
        f'<div class="rr-job-bar" role="progressbar" aria-valuenow="{100 * share:.0f}" '
        f'style="background:#e5e7eb;border-radius:4px;height:14px">'
        f'<div style="width:{100 * share:.1f}%;background:{colour};height:100%;border-radius:4px"></div></div>'
    )


#: panels of curves: title → the metrics event names drawn in it (quantities of one scale)
Curves = Mapping[str, tuple[str, ...]]


def curve_points(view: JobView | None, curves: Curves) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """(step, value) points of each series, by panel; a series without a numeric value is left out."""
    panels: dict[str, dict[str, list[tuple[float, float]]]] = {title: {} for title in curves}
    for event in view.metrics if view is not None else []:
        step = event.get("step")
        if not isinstance(step, (int, float)):
            continue
        for title, names in curves.items():
            for name in names:
                value = event.get(name)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    panels[title].setdefault(name, []).append((float(step), float(value)))
    return panels


def render_curves(view: JobView | None, curves: Curves) -> str:
    """The job's curves as SVG panels with numeric axes (ui.charts)."""
    return line_panels(curve_points(view, curves))


def history_frame(engine: Engine, kind: str) -> pd.DataFrame:
    rows = [
        [
            view.id,
            view.status,
            " ".join(view.argv[:6]) + (" …" if len(view.argv) > 6 else ""),
            (view.message or "").splitlines()[0] if view.message else "",
        ]
        for view in list_jobs(engine, kind)
    ]
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def _as_dict(view: JobView) -> dict[str, Any]:
    return {**dataclasses.asdict(view), "finished": view.finished}


def job_panel(engine: Engine, kind: str, *, curves: Curves | None = None) -> JobPanel:
    """Build the panel in the current Blocks context and wire its polling and cancel."""
    job_id = gr.State(None)
    status = gr.Markdown(render_status(None))
    bar = gr.HTML(render_bar(None))
    plot = gr.HTML(render_curves(None, curves), elem_classes="rr-job-curves") if curves else None
    log = gr.Code(label="log (tail)", language=None, lines=12, interactive=False)
    with gr.Row():
        cancel = gr.Button("Cancel job", variant="stop", size="sm")
        refresh = gr.Button("Refresh history", size="sm")
    # Starts empty: the page config is the same for every visitor, so admin data (commands,
    # messages, paths) is only sent by the admin-only page load below.
    history = gr.Dataframe(None, headers=HISTORY_COLUMNS, label=f"past {kind} jobs", interactive=False)
    panel = JobPanel(job_id, status, bar, log, plot, cancel, history)
    shown = [status, bar, log] + ([plot] if plot is not None else [])

    def show(current: int | None, last: list | None):
        """The panel's outputs; the history is re-read only when the shown job changes status,
        and once the shown job has ended and been drawn a poll reads and sends nothing."""
        last_id, last_status = last or (None, None)
        if current is not None and current == last_id and last_status in FINISHED:
            return [gr.skip()] * (len(shown) + 2)
        view = refresh_job(engine, current) if current is not None else None
        status_now = view.status if view else None
        outputs = [render_status(view), render_bar(view), view.log_tail if view else ""]
        outputs += [render_curves(view, curves)] if plot is not None else []
        history_now = history_frame(engine, kind) if status_now != last_status else gr.skip()
        return outputs + [[current, status_now], history_now]

    def view_api(current: int) -> dict[str, Any]:
        try:
            return _as_dict(refresh_job(engine, int(current)))
        except LookupError as exc:
            raise gr.Error(str(exc)) from exc

    def cancel_api(current: int, request: gr.Request = None) -> dict[str, Any]:
        """Cancel a job (admins only, checked here)."""
        if current is None:
            raise gr.Error("no job to cancel")
        require_admin(engine, request)
        try:
            return _as_dict(cancel_job(engine, int(current)))
        except LookupError as exc:
            raise gr.Error(str(exc)) from exc

    def cancel_shown(current: int | None, request: gr.Request) -> None:
        cancel_api(current, request)

    last_shown = gr.State(None)  # [job id, status] as last drawn
    polled = [job_id, last_shown]
    updated = shown + [last_shown, history]
    timer = gr.Timer(1.0)
    timer.tick(show, polled, updated, show_progress="hidden", api_visibility="private")
    job_id.change(show, polled, updated, api_visibility="private")
    cancel.click(cancel_shown, job_id, None, api_visibility="private").then(
        show, polled, updated, api_visibility="private"
    )
    refresh.click(lambda: history_frame(engine, kind), None, history, api_visibility="private")
    Context.root_block.load(lambda: history_frame(engine, kind), None, history, api_visibility="private")
    gr.api(view_api, api_name=f"{kind}_job_view")
    gr.api(cancel_api, api_name=f"{kind}_job_cancel")
    return panel
