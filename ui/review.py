"""Review tab: take the next label from the queue and accept, fix, edit, reject or skip it.

Layout: `layout` builds the components and returns them by name (ReviewScreen). Behaviour: the
module-level functions below read the form's values, call one function of db.queue / db.reviews,
render with ui.render and return `{component: value}`; what they leave out stays as it is on
screen. `build` only wires them. The reviewer is always `request.username` (Gradio auth backed
by the User table), never a name typed into the form. A save carries the item version that was
loaded, so a VersionConflict is reported and the reviewer's edit stays on screen (only the
message changes). `fix_ranking` is an API-only endpoint that takes the new order as a plain list
of docids, since the drag list's value is a UI detail and not a good API.
Gradio is imported at module level on purpose: it reads the handlers' `gr.Request` hints, and
this module is only imported inside ui.build_app.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import gradio as gr
from gradio.context import Context
from sqlalchemy import Engine

from db.models import ITEM_STATUSES
from db.queue import QueueFilter, get_item, next_item, progress
from db.reviews import VersionConflict, save_review
from reasonrank.io import InputError
from ui import render
from ui.auth import current_request, reviewer
from ui.drag_list import DRAG_CSS, DRAG_JS, DRAG_TEMPLATE, ORDER_FROM_LIST_JS, parse_order
from ui.form import form_float, form_int

SOURCES = ["", "teacher", "model", "human"]

HELP = (
    "**a** accept · **f** save fix · **r** reject (reason first) · **s** skip · **n** next · "
    "drag a passage, or select it and **↑**/**↓** · **Enter** or a click on its text opens it · "
    "[n] in the trace points at passage n"
)
# What the item pane says before anything is loaded: where to start.
START_HINT = (
    "<p>Press <b>Next (n)</b> to claim the next item of your queue (the least consistent label first); "
    "pick a <b>Dataset</b> first to stay in one, e.g. <i>trec-dl19</i>, whose labels carry a recorded "
    "model answer.</p>"
)


def consistency_bounds(low, high) -> tuple[float | None, float | None]:
    """The range filter; its full extent 0..1 means no filter, so unscored items stay in the queue."""
    low = form_float(low, "min consistency", 0, 1)
    high = form_float(high, "max consistency", 0, 1)
    return (None if low is None or low <= 0 else low), (None if high is None or high >= 1 else high)


@dataclass
class Filters:
    """The queue filters, in the order of the /next_item inputs."""

    dataset: gr.Dropdown
    status: gr.Dropdown
    source: gr.Dropdown
    min_c: gr.Number
    max_c: gr.Number

    def inputs(self) -> list:
        return [self.dataset, self.status, self.source, self.min_c, self.max_c]


@dataclass
class ReviewScreen:
    """Every component of the Review tab, by name."""

    filters: Filters
    next_btn: gr.Button
    item_id: gr.Textbox
    version: gr.Textbox
    reload_btn: gr.Button
    message: gr.Markdown
    item_view: gr.HTML
    drag: gr.HTML
    accept_btn: gr.Button
    fix_btn: gr.Button
    reject_btn: gr.Button
    skip_btn: gr.Button
    note: gr.Textbox
    diff: gr.HTML
    order: gr.Textbox
    progress: gr.HTML
    reasoning: gr.Textbox
    rankings: gr.HTML
    context: gr.State

    def outputs(self, names: Sequence[str]) -> list:
        return [getattr(self, name) for name in names]

    def save_inputs(self) -> list:
        return [self.item_id, self.version, self.order, self.reasoning, self.note, self.context]


#: What an API caller receives, by name: the outputs of /next_item and /open_item (the State
#: `context` is not sent), and of /accept, /fix, /reject and /skip.
ITEM_OUTPUTS = ("item_id", "version", "item_view", "rankings", "drag", "order", "reasoning", "note", "message", "diff")
SAVE_OUTPUTS = ("message", "version", "diff")
PROGRESS_OUTPUTS = ("progress", "dataset")
DECISIONS = ("accept", "fix", "reject", "skip")


def ui_message(text: str, kind: str = "info") -> str:
    icon = {"info": "", "ok": "✓ ", "error": "⚠️ "}[kind]  # ✓ and ⚠ exist in common system fonts; ✅ needs an emoji font
    return f"{icon}{text}"


def shown(screen: ReviewScreen, view, message: str) -> dict:
    """Every widget of the item, for a freshly loaded view (or the empty queue when `view` is None)."""
    if view is None:
        return {
            screen.item_id: "",
            screen.version: "",
            screen.item_view: "<p>No item left for you with these filters.</p>",
            screen.rankings: "",
            screen.drag: [],
            screen.order: "",
            screen.reasoning: "",
            screen.note: "",
            screen.message: ui_message(message or "The queue is empty for these filters."),
            screen.diff: "",
            screen.context: None,
        }
    order = view.current_ranking
    grades = {p.docid: p.grade for p in view.passages}
    note = f" Your {view.my_decision} note: {view.my_note}" if view.my_note else ""
    return {
        screen.item_id: str(view.item_id),
        screen.version: str(view.version),
        screen.item_view: render.item_html(view),
        screen.rankings: render.rankings_html(view.teacher_ranking, order, grades),
        screen.drag: render.drag_items(view.passages, order),
        screen.order: ", ".join(order),
        screen.reasoning: view.current_reasoning or view.reasoning or "",
        screen.note: view.my_note or "",
        screen.message: ui_message(message + note),
        screen.diff: render.diff_html(view.teacher_ranking, order) if order != view.teacher_ranking else "",
        screen.context: {"teacher": view.teacher_ranking, "grades": grades},
    }


def load_next(engine: Engine, screen: ReviewScreen, dataset, status, source, min_c, max_c) -> dict:
    """Claim the next item of the queue under the filters; a bad filter leaves the screen as it is."""
    try:
        low, high = consistency_bounds(min_c, max_c)
        filters = QueueFilter(
            dataset=dataset or None,
            status=status or "pending",
            source=source or None,
            min_consistency=low,
            max_consistency=high,
        )
        view = next_item(engine, reviewer(current_request()), filters)
    except InputError as exc:
        return {screen.message: ui_message(str(exc), "error")}
    return shown(screen, view, "" if view is None else f"Claimed {view.item_key}.")


def open_item(engine: Engine, screen: ReviewScreen, item_id) -> dict:
    """Load the item whose id is typed (again: after a version conflict)."""
    try:
        number = form_int(item_id, "item id", minimum=1)
        if number is None:
            raise InputError("type an item id first")
        view = get_item(engine, number, reviewer(current_request()))
    except InputError as exc:
        return {screen.message: ui_message(str(exc), "error")}
    return shown(screen, view, f"Loaded {view.item_key} (version {view.version}).")


def save(
    engine: Engine, screen: ReviewScreen, decision: str, item_id, version, order_text, reasoning, note, context
) -> dict:
    """Store the reviewer's decision on the loaded version. Refused or in conflict, only the
    message changes: the reviewer's edit stays on screen."""
    try:
        number, loaded = form_int(item_id, "item id"), form_int(version, "version")
    except InputError as exc:
        return {screen.message: ui_message(f"Not saved: {exc}", "error")}
    if number is None or loaded is None:
        return {screen.message: ui_message("load an item first (Next)", "error")}
    ranking = parse_order(order_text or "") if decision == "fix" else None
    try:
        result = save_review(
            engine,
            number,
            reviewer(current_request()),
            decision,
            loaded,
            ranking=ranking,
            reasoning=reasoning or None,
            note=note or None,
        )
    except VersionConflict as exc:
        text = f"Not saved: {exc}. Your edit is still on screen: copy it, then press Reload item."
        return {screen.message: ui_message(text, "error")}
    except InputError as exc:
        return {screen.message: ui_message(f"Not saved: {exc}", "error")}
    done = (
        f"Saved {result.decision} on item {result.item_id}: status {result.status}, "
        f"reviews {result.reviews_done}/{result.required_reviews}, version {result.version}."
    )
    fixed = decision == "fix" and context
    return {
        screen.message: ui_message(done, "ok"),
        screen.version: str(result.version),
        screen.diff: render.diff_html(context["teacher"], ranking) if fixed else "",
    }


def compare_drag(screen: ReviewScreen, items, context) -> dict:
    """Teacher vs current and the diff for the drag list's order (the order box is set in the browser)."""
    order = [item["id"] for item in items or []]
    if not context or sorted(order) != sorted(context["teacher"]):
        return {}
    return {
        screen.rankings: render.rankings_html(context["teacher"], order, context["grades"]),
        screen.diff: render.diff_html(context["teacher"], order) if order != context["teacher"] else "",
    }


def drag_from_order(screen: ReviewScreen, order_text, items) -> dict:
    """The drag list in the order typed into the order box; an order that is not a permutation is refused."""
    by_id = {item["id"]: item for item in items or []}
    order = parse_order(order_text or "")
    if sorted(order) != sorted(by_id):
        unknown = [d for d in order if d not in by_id]
        missing = [d for d in by_id if d not in order]
        text = f"order must list each passage once; unknown {unknown}, missing {missing}"
        return {screen.message: ui_message(text, "error")}
    return {screen.drag: [by_id[d] for d in order], screen.message: ""}


def show_progress(engine: Engine, screen: ReviewScreen) -> dict:
    """The reviewer's progress per dataset, and those datasets as the filter's choices."""
    try:
        rows = progress(engine, reviewer(current_request()))
    except InputError as exc:
        return {screen.progress: ui_message(str(exc), "error")}
    return {
        screen.progress: render.progress_html(rows),
        screen.filters.dataset: gr.update(choices=[""] + [row.dataset for row in rows]),
    }


def fix_ranking_result(engine: Engine, item_id, version, ranking, reasoning: str, request) -> dict:
    """Save a fix whose new order is `ranking` (docids, best first); the saved result as a dict."""
    try:
        result = save_review(
            engine,
            int(item_id),
            reviewer(request),
            "fix",
            int(version),
            ranking=list(ranking),
            reasoning=reasoning or None,
        )
    except (VersionConflict, InputError) as exc:
        raise gr.Error(f"Not saved: {exc}") from exc
    return {
        "item_id": result.item_id,
        "status": result.status,
        "version": result.version,
        "kendall_tau": result.kendall_tau,
        "moved_ids": result.moved_ids,
    }


def layout() -> ReviewScreen:
    """The tab's components. One screen at 1440×900: filters and item controls on one row; the
    trace, the orderable list and the actions side by side below it (the trace and the list
    scroll in their own boxes), so Accept / Fix / Reject never need a scroll."""
    with gr.Row(equal_height=True):
        dataset = gr.Dropdown(
            [""], value="", label="Dataset", allow_custom_value=True, elem_id="rr-dataset", min_width=120
        )
        status = gr.Dropdown(list(ITEM_STATUSES), value="pending", label="Status", elem_id="rr-status", min_width=100)
        source = gr.Dropdown(SOURCES, value="", label="Label source", elem_id="rr-source", min_width=100)
        min_c = gr.Number(0.0, minimum=0, maximum=1, step=0.05, label="Min consistency", elem_id="rr-min", min_width=90)
        max_c = gr.Number(1.0, minimum=0, maximum=1, step=0.05, label="Max consistency", elem_id="rr-max", min_width=90)
        next_btn = gr.Button("Next (n)", variant="primary", elem_id="rr-next", min_width=90)
        # text boxes: a gr.Number shows and sends 0 before any item is loaded
        item_id = gr.Textbox(label="Item id", placeholder="none", max_lines=1, elem_id="rr-item-id", min_width=80)
        version = gr.Textbox(label="Version", interactive=False, max_lines=1, elem_id="rr-version", min_width=70)
        reload_btn = gr.Button("Reload / open item", elem_id="rr-reload", min_width=110)
    message = gr.Markdown(elem_id="rr-message")
    with gr.Row():
        with gr.Column(scale=5, min_width=360):
            item_view = gr.HTML(START_HINT, css_template=render.ITEM_CSS, js_on_load=render.ITEM_JS, elem_id="rr-item")
        with gr.Column(scale=5, min_width=360):
            drag = gr.HTML(
                [], html_template=DRAG_TEMPLATE, css_template=DRAG_CSS, js_on_load=DRAG_JS, elem_id="rr-drag"
            )
        with gr.Column(scale=4, min_width=300, elem_id="rr-side"):
            with gr.Row():
                accept_btn = gr.Button("Accept (a)", variant="primary", elem_id="rr-accept", min_width=60)
                fix_btn = gr.Button("Save fix (f)", elem_id="rr-fix", min_width=60)
            with gr.Row():
                reject_btn = gr.Button("Reject (r)", variant="stop", elem_id="rr-reject", min_width=60)
                skip_btn = gr.Button("Skip (s)", elem_id="rr-skip", min_width=60)
            note = gr.Textbox(label="Reject reason / note", elem_id="rr-note", lines=1)
            diff = gr.HTML("", elem_id="rr-diff")
            order = gr.Textbox(
                label="Order (docids, best first; Enter applies)", elem_id="rr-order", lines=1, max_lines=2
            )
            gr.Markdown(HELP, elem_id="rr-help")
            progress_view = gr.HTML("", css_template=render.PROGRESS_CSS, elem_id="rr-progress")
            with gr.Row():
                with gr.Accordion("Edit the reasoning", open=False):
                    reasoning = gr.Textbox(
                        label="Reasoning (edit to correct the trace)", lines=6, elem_id="rr-reasoning"
                    )
                with gr.Accordion("Teacher vs current", open=False):
                    rankings = gr.HTML("", elem_id="rr-rankings")
    return ReviewScreen(
        filters=Filters(dataset, status, source, min_c, max_c),
        next_btn=next_btn,
        item_id=item_id,
        version=version,
        reload_btn=reload_btn,
        message=message,
        item_view=item_view,
        drag=drag,
        accept_btn=accept_btn,
        fix_btn=fix_btn,
        reject_btn=reject_btn,
        skip_btn=skip_btn,
        note=note,
        diff=diff,
        order=order,
        progress=progress_view,
        reasoning=reasoning,
        rankings=rankings,
        context=gr.State(None),
    )


def build(engine: Engine) -> None:
    """The tab, wired: each handler binds the engine and the screen and calls the function above."""
    # Everything is created and wired inside the tab: a block made between two tabs (gr.api makes
    # one) would end their tab bar, and the next tabs would start a second bar below this one.
    with gr.Tab("Review", id="review"):
        screen = layout()

        def fix_ranking(
            item_id: int, version: int, ranking: list[str], reasoning: str = "", request: gr.Request = None
        ) -> dict:
            """Save a fix whose new order is `ranking` (docids, best first); returns the saved result."""
            return fix_ranking_result(engine, item_id, version, ranking, reasoning, request)

        item_outputs = screen.outputs(ITEM_OUTPUTS) + [screen.context]
        progress_outputs = screen.outputs(PROGRESS_OUTPUTS[:1]) + [screen.filters.dataset]
        # Values pass as they are: the handlers take the form's plain strings and numbers and
        # return strings and lists, which the components' pre/postprocess steps would hand back
        # unchanged, each in a round trip through a worker thread (16 of them for a next item;
        # docs/benchmarks.md#review-through-the-app-under-load). The handlers check their inputs.
        raw = {"preprocess": False, "postprocess": False}
        progress_shown = partial(show_progress, engine, screen)
        screen.next_btn.click(
            partial(load_next, engine, screen), screen.filters.inputs(), item_outputs, api_name="next_item", **raw
        ).then(progress_shown, None, progress_outputs, api_visibility="private")
        screen.reload_btn.click(
            partial(open_item, engine, screen), [screen.item_id], item_outputs, api_name="open_item", **raw
        ).then(progress_shown, None, progress_outputs, api_visibility="private")
        for decision in DECISIONS:
            button = getattr(screen, f"{decision}_btn")
            button.click(
                partial(save, engine, screen, decision),
                screen.save_inputs(),
                screen.outputs(SAVE_OUTPUTS),
                api_name=decision,
                **raw,
            ).then(progress_shown, None, progress_outputs, api_visibility="private")
        Context.root_block.load(progress_shown, None, progress_outputs, api_visibility="private")
        drag, order = screen.drag, screen.order
        drag.change(None, [drag], [order], js=ORDER_FROM_LIST_JS, api_visibility="private")
        drag.change(
            partial(compare_drag, screen),
            [drag, screen.context],
            [screen.rankings, screen.diff],
            api_visibility="private",
        )
        order.submit(
            partial(drag_from_order, screen),
            [order, drag],
            [drag, screen.message],
            api_visibility="private",
        )
        gr.api(fix_ranking, api_name="fix_ranking")
