"""Agreement tab (admins): how far annotators agree, and adjudication of the items they split on.

Layout: `layout` returns the components by name (AgreementScreen). Behaviour: module-level
functions that check the caller is an admin, call db.agreement.agreement / db.reviews.adjudicate or
db.queue.get_item, render with ui.render_agreement and return `{component: value}`. The admin check runs on the server in every
handler (request.username → db.users.get_user(...).is_admin), because hiding a tab does not stop
anyone calling its endpoint through the API. Adjudicating to "an annotator's order" looks that
order up on the server from the stored reviews, so a caller cannot slip in an order no one gave.
Gradio is imported at module level on purpose (handlers' gr.Request hints); this module is only
imported inside ui.build_app.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from sqlalchemy import Engine

from db.agreement import agreement
from db.queue import get_item
from db.reviews import VersionConflict, adjudicate
from reasonrank.io import InputError
from ui import render, render_agreement
from ui.auth import require_admin
from ui.drag_list import parse_order

TEACHER, TYPED, REJECT = "teacher", "typed", "reject"
ANNOTATOR = "annotator:"  # prefix of a choice that takes that annotator's order
BASE_CHOICES = [
    ("the teacher's order (accept)", TEACHER),
    ("the order typed below", TYPED),
    ("reject (needs a note)", REJECT),
]
HELP = (
    "Pick an item in conflict, compare the orders, then settle it: take one annotator's order, "
    "the teacher's, or type one (docids, best first); or reject it with a note. "
    "Every adjudication is stored as a new review."
)


def _disagreement(engine: Engine, item_id: int, dataset: str):
    """The item's entry in the agreement report of its dataset, or None when its reviewers agree."""
    return next((d for d in agreement(engine, dataset).disagreements if d.item_id == item_id), None)


def _decision_for(choice: str, order_text: str, teacher: list[str], orders: dict[str, list[str] | None]):
    """(decision, ranking) that the admin's choice amounts to; an order equal to the teacher's is an accept."""
    if choice == REJECT:
        return "reject", None
    if choice == TEACHER:
        return "accept", None
    if choice == TYPED:
        order = parse_order(order_text or "")
    elif choice and choice.startswith(ANNOTATOR):
        name = choice[len(ANNOTATOR) :]
        if name not in orders:
            raise InputError(f"{name!r} did not review this item")
        if orders[name] is None:
            raise InputError(f"{name!r} rejected this item: choose reject and give a note")
        order = orders[name]
    else:
        raise InputError(f"unknown choice {choice!r}: use teacher, typed, reject or annotator:NAME")
    return ("accept", None) if list(order) == list(teacher) else ("fix", list(order))


@dataclass
class AgreementScreen:
    """Every component of the Agreement tab, by name."""

    dataset: gr.Textbox
    refresh: gr.Button
    message: gr.Markdown
    pairs: gr.Dataframe
    conflicts: gr.HTML
    item: gr.Dropdown
    version: gr.Textbox
    orders: gr.HTML
    item_view: gr.HTML
    choice: gr.Dropdown
    order: gr.Textbox
    note: gr.Textbox
    settle: gr.Button

    def outputs(self, names) -> list:
        return [getattr(self, name) for name in names]


#: What an API caller receives, by name: the outputs of /agreement, /conflict_item and /adjudicate.
TABLE_OUTPUTS = ("pairs", "conflicts", "item", "message")
ITEM_OUTPUTS = ("version", "item_view", "orders", "choice", "order", "message")
SETTLE_OUTPUTS = ("message", "version")


def load_agreement(engine: Engine, screen: AgreementScreen, dataset, request) -> dict:
    """The pair table and the items in disagreement; the picker lists those items afresh."""
    require_admin(engine, request)
    try:
        report = agreement(engine, dataset or None)
    except InputError as exc:
        raise gr.Error(str(exc)) from exc
    conflicts = sum(d.status == "conflict" for d in report.disagreements)
    return {
        screen.pairs: render_agreement.pair_rows(report.pairs),
        screen.conflicts: render_agreement.conflicts_html(report.disagreements),
        screen.item: gr.update(choices=render_agreement.conflict_choices(report.disagreements), value=None),
        screen.message: (
            f"{len(report.pairs)} annotator pair(s); {len(report.disagreements)} item(s) with "
            f"disagreement, {conflicts} still in conflict."
        ),
    }


def refresh_lists(engine: Engine, screen: AgreementScreen, dataset, request) -> dict:
    """After an adjudication: the table and the list again, leaving the picked item and message."""
    shown = load_agreement(engine, screen, dataset, request)
    return {screen.pairs: shown[screen.pairs], screen.conflicts: shown[screen.conflicts]}


def open_conflict(engine: Engine, screen: AgreementScreen, item_id, request) -> dict:
    """The picked item, its orders side by side and the final rankings the admin may choose."""
    require_admin(engine, request)
    if item_id in (None, ""):
        raise gr.Error("pick an item first")
    try:
        view = get_item(engine, int(item_id))
    except (InputError, ValueError) as exc:
        raise gr.Error(str(exc)) from exc
    found = _disagreement(engine, view.item_id, view.dataset)
    orders = found.rankings if found else {}
    grades = {p.docid: p.grade for p in view.passages}
    choices = BASE_CHOICES + [
        (f"{name}'s order", ANNOTATOR + name) for name, order in orders.items() if order is not None
    ]
    note = "" if found else " (its reviewers do not disagree)"
    return {
        screen.version: str(view.version),
        screen.item_view: render.item_html(view),
        screen.orders: render_agreement.orders_side_by_side_html(view.teacher_ranking, orders, grades),
        screen.choice: gr.update(choices=choices, value=None),
        screen.order: ", ".join(view.teacher_ranking),
        screen.message: f"Loaded {view.item_key}: status {view.status}, version {view.version}{note}.",
    }


def adjudicate_item(engine: Engine, screen: AgreementScreen, values: list, request) -> dict:
    """Store the admin's final decision on the opened version; refused, only the message changes."""
    admin = require_admin(engine, request)
    item_id, version, choice, order_text, note = values
    if item_id in (None, "") or version in (None, ""):
        return {screen.message: "⚠️ open an item first"}
    try:
        view = get_item(engine, int(item_id))
        found = _disagreement(engine, view.item_id, view.dataset)
        decision, ranking = _decision_for(choice, order_text, view.teacher_ranking, found.rankings if found else {})
        result = adjudicate(engine, view.item_id, admin, decision, int(version), ranking=ranking, note=note or None)
    except VersionConflict as exc:
        return {screen.message: f"⚠️ Not saved: {exc}. Open the item again."}
    except (InputError, PermissionError, ValueError) as exc:
        return {screen.message: f"⚠️ Not saved: {exc}"}
    return {
        screen.message: (
            f"✓ Adjudicated item {result.item_id}: {result.decision} → status {result.status}, "
            f"version {result.version}."
        ),
        screen.version: str(result.version),
    }


def layout() -> AgreementScreen:
    """The tab's components, top to bottom: the pair table, the conflicts, one item and its settlement."""
    gr.Markdown(HELP)
    with gr.Row():
        dataset = gr.Textbox(label="Dataset (blank: all)", elem_id="rr-agree-dataset")
        refresh = gr.Button("Refresh", variant="primary", elem_id="rr-agree-refresh")
    message = gr.Markdown(elem_id="rr-agree-message")
    pairs = gr.Dataframe(headers=render_agreement.PAIR_HEADERS, interactive=False, elem_id="rr-agree-pairs")
    conflicts = gr.HTML("", elem_id="rr-agree-conflicts")
    with gr.Row():
        item = gr.Dropdown([], label="Item to adjudicate", allow_custom_value=True, elem_id="rr-agree-item")
        # a text box: a gr.Number would show and send 0 before any item is loaded
        version = gr.Textbox(label="Version", interactive=False, max_lines=1, elem_id="rr-agree-version")
    orders = gr.HTML("", elem_id="rr-agree-orders")
    item_view = gr.HTML("", css_template=render.ITEM_CSS, js_on_load=render.ITEM_JS, elem_id="rr-agree-view")
    # a Dropdown taking any value: the choices change per item, and _decision_for checks them
    choice = gr.Dropdown(
        BASE_CHOICES, value=None, label="Final ranking", allow_custom_value=True, elem_id="rr-agree-choice"
    )
    order = gr.Textbox(label="Typed order (docids, best first)", elem_id="rr-agree-order")
    note = gr.Textbox(label="Note (required to reject)", elem_id="rr-agree-note")
    settle = gr.Button("Adjudicate", variant="stop", elem_id="rr-agree-settle")
    return AgreementScreen(
        dataset, refresh, message, pairs, conflicts, item, version, orders, item_view, choice, order, note, settle
    )


def build(engine: Engine) -> None:
    """The tab, wired: each handler binds the engine and the screen and calls the function above."""
    # created and wired inside the tab, so the tabs around it stay in one tab bar
    with gr.Tab("Agreement (admin)", id="agreement") as tab:
        screen = layout()

        # The handlers' signatures are what Gradio reads (the inputs, and gr.Request to inject).
        def on_load(dataset, request: gr.Request):
            return load_agreement(engine, screen, dataset, request)

        def on_refresh(dataset, request: gr.Request):
            return refresh_lists(engine, screen, dataset, request)

        def on_open(item_id, request: gr.Request):
            return open_conflict(engine, screen, item_id, request)

        def on_settle(item_id, version, choice, order_text, note, request: gr.Request):
            return adjudicate_item(engine, screen, [item_id, version, choice, order_text, note], request)

        table_outputs = screen.outputs(TABLE_OUTPUTS)
        screen.refresh.click(on_load, [screen.dataset], table_outputs, api_name="agreement")
        tab.select(on_load, [screen.dataset], table_outputs, api_visibility="private")
        screen.item.input(on_open, [screen.item], screen.outputs(ITEM_OUTPUTS), api_name="conflict_item")
        settle_inputs = [screen.item, screen.version, screen.choice, screen.order, screen.note]
        screen.settle.click(on_settle, settle_inputs, screen.outputs(SETTLE_OUTPUTS), api_name="adjudicate").then(
            on_refresh, [screen.dataset], [screen.pairs, screen.conflicts], api_visibility="private"
        )
