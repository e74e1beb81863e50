"""Agreement tab (admins): how far annotators agree, and adjudication of the items they split on.

Handlers stay thin: check the caller is an admin, call db.reviews.agreement / adjudicate or
db.queue.get_item, render with ui.render_agreement. The admin check runs on the server in every
handler (request.username → db.users.get_user(...).is_admin), because hiding a tab does not stop
anyone calling its endpoint through the API. Adjudicating to "an annotator's order" looks that
order up on the server from the stored reviews, so a caller cannot slip in an order no one gave.
Gradio is imported at module level on purpose (handlers' gr.Request hints); this module is only
imported inside ui.build_app.
"""

import gradio as gr
from sqlalchemy import Engine

from db.queue import get_item
from db.reviews import VersionConflict, adjudicate, agreement
from reasonrank.io import InputError
from ui import render, render_agreement
from ui.auth import require_admin
from ui.review import parse_order

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


def build(engine: Engine) -> None:
    def load_agreement(dataset, request: gr.Request):
        require_admin(engine, request)
        try:
            report = agreement(engine, dataset or None)
        except InputError as exc:
            raise gr.Error(str(exc)) from exc
        choices = render_agreement.conflict_choices(report.disagreements)
        conflicts = sum(d.status == "conflict" for d in report.disagreements)
        message = (
            f"{len(report.pairs)} annotator pair(s); {len(report.disagreements)} item(s) with "
            f"disagreement, {conflicts} still in conflict."
        )
        return (
            render_agreement.pair_rows(report.pairs),
            render_agreement.conflicts_html(report.disagreements),
            gr.update(choices=choices, value=None),
            message,
        )

    def refresh_lists(dataset, request: gr.Request):
        """After an adjudication: the table and the list again, leaving the picked item and message."""
        return load_agreement(dataset, request)[:2]

    def open_conflict(item_id, request: gr.Request):
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
        return (
            view.version,
            render.item_html(view),
            render_agreement.orders_side_by_side_html(view.teacher_ranking, orders, grades),
            gr.update(choices=choices, value=None),
            ", ".join(view.teacher_ranking),
            f"Loaded {view.item_key}: status {view.status}, version {view.version}{note}.",
        )

    def adjudicate_item(item_id, version, choice, order_text, note, request: gr.Request):
        admin = require_admin(engine, request)
        if item_id in (None, "") or version in (None, ""):
            return "⚠️ open an item first", gr.update()
        try:
            view = get_item(engine, int(item_id))
            found = _disagreement(engine, view.item_id, view.dataset)
            decision, ranking = _decision_for(choice, order_text, view.teacher_ranking, found.rankings if found else {})
            result = adjudicate(engine, view.item_id, admin, decision, int(version), ranking=ranking, note=note or None)
        except VersionConflict as exc:
            return f"⚠️ Not saved: {exc}. Open the item again.", gr.update()
        except (InputError, PermissionError) as exc:
            return f"⚠️ Not saved: {exc}", gr.update()
        return (
            f"✅ Adjudicated item {result.item_id}: {result.decision} → status {result.status}, "
            f"version {result.version}.",
            result.version,
        )

    with gr.Tab("Agreement (admin)", id="agreement") as tab:
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

        table_outputs = [pairs, conflicts, item, message]
        refresh.click(load_agreement, [dataset], table_outputs, api_name="agreement")
        tab.select(load_agreement, [dataset], table_outputs, api_visibility="private")
        item.input(
            open_conflict, [item], [version, item_view, orders, choice, order, message], api_name="conflict_item"
        )
        settle.click(
            adjudicate_item, [item, version, choice, order, note], [message, version], api_name="adjudicate"
        ).then(refresh_lists, [dataset], [pairs, conflicts], api_visibility="private")
