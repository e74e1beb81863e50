"""Review tab: take the next label from the queue and accept, fix, edit, reject or skip it.

Handlers stay thin: read the widgets, call one function of db.queue / db.reviews, render with
ui.render. The reviewer is always `request.username` (Gradio auth backed by the User table),
never a name typed into the form. A save carries the item version that was loaded, so a
VersionConflict is reported and the reviewer's edit stays on screen (those outputs are left
untouched). `fix_ranking` is an API-only endpoint that takes the new order as a plain list of
docids, since the drag list's value is a UI detail and not a good API.
Gradio is imported at module level on purpose: it reads the handlers' `gr.Request` hints, and
this module is only imported inside ui.build_app.
"""

import os

import gradio as gr
from sqlalchemy import Engine

from db.models import ITEM_STATUSES
from db.queue import QueueFilter, get_item, next_item, progress
from db.reviews import VersionConflict, save_review
from reasonrank.io import InputError
from ui import render, space_roles

SOURCES = ["", "teacher", "model", "human"]

DRAG_TEMPLATE = """
<ol class="rr-drag" id="rr-drag-list" aria-label="Your order: select a passage, then arrow up or down moves it">
{{#each value}}<li draggable="true" tabindex="0" data-id="{{this.id}}">
<span class="rr-grip">⠿</span> <code>{{this.id}}</code> [{{this.n}}] <span class="rr-grade">{{this.grade}}</span>
<span class="rr-snippet">{{this.snippet}}</span></li>{{/each}}</ol>
"""
DRAG_CSS = """
.rr-drag { list-style: decimal; padding-left: 2.2em; margin: 0; }
.rr-drag li { border: 1px solid #ccc; border-radius: 6px; padding: 4px 8px; margin: 3px 0; cursor: grab; background: #fafafa; }
.rr-drag li.rr-over { border-color: #1f5fbf; }
.rr-drag li:focus { outline: 2px solid #1f5fbf; background: #eef4ff; }
.rr-grade { color: #1d5e2c; font-size: 0.85em; }
.rr-snippet { color: #444; font-size: 0.9em; }
"""
# Native HTML5 drag and drop on the root element (delegation survives re-renders). The keyboard
# path: the selected (focused) passage moves one place per ↑/↓ and keeps the focus, so repeated
# presses keep moving it (Gradio patches the list's nodes in place on a re-render, so the focus
# is moved to the passage after the render; a key pressed before then still moves the same
# passage). The page-wide shortcuts are installed once; keys typed into a text field are left alone.
DRAG_JS = """
let dragId = null;
element.addEventListener('dragstart', e => { const li = e.target.closest('li'); if (li) dragId = li.dataset.id; });
element.addEventListener('dragover', e => e.preventDefault());
element.addEventListener('drop', e => {
  e.preventDefault();
  const li = e.target.closest('li');
  if (!li || !dragId || li.dataset.id === dragId) { dragId = null; return; }
  const items = [...props.value];
  const [moved] = items.splice(items.findIndex(p => p.id === dragId), 1);
  const box = li.getBoundingClientRect();
  const to = items.findIndex(p => p.id === li.dataset.id);
  items.splice((e.clientY - box.top) > box.height / 2 ? to + 1 : to, 0, moved);
  props.value = items; trigger('change'); dragId = null;
});
let moving = null;  // the passage just moved, until the focus has followed it
element.addEventListener('keydown', e => {
  const step = {ArrowUp: -1, ArrowDown: 1}[e.key];
  const li = step && !(e.ctrlKey || e.metaKey || e.altKey || e.shiftKey) && e.target.closest('li[data-id]');
  if (!li) return;
  e.preventDefault();
  const id = moving || li.dataset.id;
  const items = [...props.value];
  const from = items.findIndex(p => p.id === id);
  if (from < 0 || from + step < 0 || from + step >= items.length) return;
  items.splice(from + step, 0, items.splice(from, 1)[0]);
  props.value = items; trigger('change'); moving = id;
  setTimeout(() => { moving = null; element.querySelector(`li[data-id="${CSS.escape(id)}"]`)?.focus(); });
});
if (!window.__rrReviewKeys) {
  window.__rrReviewKeys = true;
  const keys = {a: 'rr-accept', f: 'rr-fix', r: 'rr-reject', s: 'rr-skip', n: 'rr-next'};
  document.addEventListener('keydown', e => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const t = e.target;
    if (t && t.closest && t.closest('input, textarea, select, [contenteditable="true"]')) return;
    const id = keys[e.key]; const button = id && document.getElementById(id);
    if (button && button.offsetParent !== null) { e.preventDefault(); button.click(); }
  });
}
"""
HELP = (
    "Keys: **a** accept · **f** save fix · **r** reject (needs a reason) · **s** skip · **n** next. "
    "Fix the order by dragging passages; or click a passage (or Tab to it) and press **↑**/**↓** to "
    "move it one place; or type the order (docids, best first) and press Enter."
)
# Runs in the browser on every change of the drag list: the order box follows at once, so a save
# pressed right after a move (keys "↓ f") stores that move; a server round trip could lag behind.
ORDER_FROM_LIST_JS = "(items) => (items || []).map(item => item.id).join(', ')"


def reviewer(request) -> str:
    """The logged-in reviewer: Gradio auth's user, or the HF OAuth user on a Space."""
    name = getattr(request, "username", None) if request is not None else None
    if not name and os.environ.get("SPACE_ID") and request is not None:
        name = space_roles.admit(_oauth_user(request))  # the Space's role rule, written to User
    if not name:
        raise InputError("not logged in: reviews need a user")
    return name


def _oauth_user(request) -> str | None:
    """The HF user that gr.LoginButton signed in (Gradio keeps it in the Starlette session).

    Only reachable on a Space; the name must still exist in the User table (an admin adds it),
    otherwise the db layer refuses it with a clear "no user named …".
    """
    try:
        info = request.request.session.get("oauth_info") or {}
    except (AttributeError, AssertionError):  # no session middleware: OAuth is not set up
        return None
    return (info.get("userinfo") or {}).get("preferred_username")


def parse_order(text: str) -> list[str]:
    """Docids from the order box: separated by commas, spaces, '>' or new lines."""
    return [part for part in text.replace(">", ",").replace("\n", ",").replace(" ", ",").split(",") if part]


def consistency_bounds(low, high) -> tuple[float | None, float | None]:
    """The range filter; its full extent 0..1 means no filter, so unscored items stay in the queue."""
    low = None if low in (None, "") or float(low) <= 0 else float(low)
    high = None if high in (None, "") or float(high) >= 1 else float(high)
    return low, high


def build(engine: Engine) -> None:
    def ui_message(text: str, kind: str = "info") -> str:
        icon = {"info": "", "ok": "✅ ", "error": "⚠️ "}[kind]
        return f"{icon}{text}"

    def show(view, message: str):
        """Every widget of the item, for a freshly loaded view."""
        if view is None:
            return (
                None,
                None,
                "<p>No item left for you with these filters.</p>",
                "",
                [],
                "",
                "",
                "",
                ui_message(message or "The queue is empty for these filters."),
                "",
                None,
            )
        order = view.current_ranking
        grades = {p.docid: p.grade for p in view.passages}
        context = {"teacher": view.teacher_ranking, "grades": grades}
        diff = render.diff_html(view.teacher_ranking, order) if order != view.teacher_ranking else ""
        return (
            view.item_id,
            view.version,
            render.item_html(view),
            render.rankings_html(view.teacher_ranking, order, grades),
            render.drag_items(view.passages, order),
            ", ".join(order),
            view.current_reasoning or view.reasoning or "",
            "",
            ui_message(message),
            diff,
            context,
        )

    def keep(n: int):
        return tuple(gr.update() for _ in range(n))

    def load_next(dataset, status, source, min_c, max_c, request: gr.Request):
        try:
            low, high = consistency_bounds(min_c, max_c)
            filters = QueueFilter(
                dataset=dataset or None,
                status=status or "pending",
                source=source or None,
                min_consistency=low,
                max_consistency=high,
            )
            view = next_item(engine, reviewer(request), filters)
        except InputError as exc:
            return keep(8) + (ui_message(str(exc), "error"),) + keep(2)
        return show(view, "" if view is None else f"Claimed {view.item_key}.")

    def open_item(item_id, request: gr.Request):
        if item_id in (None, ""):
            return keep(8) + (ui_message("type an item id first", "error"),) + keep(2)
        try:
            view = get_item(engine, int(item_id), reviewer(request))
        except InputError as exc:
            return keep(8) + (ui_message(str(exc), "error"),) + keep(2)
        return show(view, f"Loaded {view.item_key} (version {view.version}).")

    def saver(decision: str):
        def save(item_id, version, order_text, reasoning, note, context, request: gr.Request):
            if item_id in (None, "") or version in (None, ""):
                return ui_message("load an item first (Next)", "error"), gr.update(), gr.update()
            ranking = parse_order(order_text) if decision == "fix" else None
            try:
                result = save_review(
                    engine,
                    int(item_id),
                    reviewer(request),
                    decision,
                    int(version),
                    ranking=ranking,
                    reasoning=reasoning or None,
                    note=note or None,
                )
            except VersionConflict as exc:
                return (
                    ui_message(
                        f"Not saved: {exc}. Your edit is still on screen: copy it, then press Reload item.", "error"
                    ),
                    gr.update(),
                    gr.update(),
                )
            except InputError as exc:
                return ui_message(f"Not saved: {exc}", "error"), gr.update(), gr.update()
            diff = ""
            if decision == "fix" and context:
                diff = render.diff_html(context["teacher"], ranking)
            return (
                ui_message(
                    f"Saved {result.decision} on item {result.item_id}: status {result.status}, "
                    f"reviews {result.reviews_done}/{result.required_reviews}, "
                    f"version {result.version}.",
                    "ok",
                ),
                result.version,
                diff,
            )

        save.__name__ = f"save_{decision}"
        return save

    def compare_drag(items, context):
        """Teacher vs current and the diff for the drag list's order (the order box is set in the browser)."""
        order = [item["id"] for item in items or []]
        if not context or sorted(order) != sorted(context["teacher"]):
            return gr.update(), gr.update()
        diff_now = render.diff_html(context["teacher"], order) if order != context["teacher"] else ""
        return render.rankings_html(context["teacher"], order, context["grades"]), diff_now

    def drag_from_order(order_text, items):
        by_id = {item["id"]: item for item in items or []}
        order = parse_order(order_text)
        if sorted(order) != sorted(by_id):
            unknown = [d for d in order if d not in by_id]
            missing = [d for d in by_id if d not in order]
            return gr.update(), ui_message(
                f"order must list each passage once; unknown {unknown}, missing {missing}", "error"
            )
        return [by_id[d] for d in order], ""

    def show_progress(request: gr.Request):
        try:
            rows = progress(engine, reviewer(request))
        except InputError as exc:
            return ui_message(str(exc), "error"), gr.update()
        lines = ["| dataset | mine | done | pending | conflict | total |", "|---|---|---|---|---|---|"]
        for row in rows:
            done = row.accepted + row.fixed + row.rejected
            lines.append(
                f"| {render.esc(row.dataset)} | {row.mine} | {done} | {row.pending} | {row.conflict} | {row.total} |"
            )
        return "\n".join(lines), gr.update(choices=[""] + [row.dataset for row in rows])

    def fix_ranking(
        item_id: int, version: int, ranking: list[str], reasoning: str = "", request: gr.Request = None
    ) -> dict:
        """Save a fix whose new order is `ranking` (docids, best first); returns the saved result."""
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

    with gr.Tab("Review", id="review"):
        with gr.Row():
            dataset = gr.Dropdown([""], value="", label="Dataset", allow_custom_value=True, elem_id="rr-dataset")
            status = gr.Dropdown(list(ITEM_STATUSES), value="pending", label="Status", elem_id="rr-status")
            source = gr.Dropdown(SOURCES, value="", label="Label source", elem_id="rr-source")
            min_c = gr.Number(0.0, minimum=0, maximum=1, step=0.05, label="Min consistency", elem_id="rr-min")
            max_c = gr.Number(1.0, minimum=0, maximum=1, step=0.05, label="Max consistency", elem_id="rr-max")
        progress_md = gr.Markdown(elem_id="rr-progress")
        with gr.Row():
            next_btn = gr.Button("Next (n)", variant="primary", elem_id="rr-next")
            item_id = gr.Number(None, label="Item id", precision=0, elem_id="rr-item-id")
            version = gr.Number(None, label="Version", precision=0, interactive=False, elem_id="rr-version")
            reload_btn = gr.Button("Reload / open item", elem_id="rr-reload")
        message = gr.Markdown(elem_id="rr-message")
        item_view = gr.HTML("", css_template=render.ITEM_CSS, js_on_load=render.ITEM_JS, elem_id="rr-item")
        with gr.Row():
            with gr.Column():
                gr.Markdown("**Your order** (drag, or select and ↑/↓, to fix)")
                drag = gr.HTML(
                    [], html_template=DRAG_TEMPLATE, css_template=DRAG_CSS, js_on_load=DRAG_JS, elem_id="rr-drag"
                )
                order = gr.Textbox(label="Order (docids, best first; Enter applies)", elem_id="rr-order")
            with gr.Column():
                gr.Markdown("**Teacher vs current**")
                rankings = gr.HTML("", elem_id="rr-rankings")
                diff = gr.HTML("", elem_id="rr-diff")
        reasoning = gr.Textbox(label="Reasoning (edit to correct the trace)", lines=4, elem_id="rr-reasoning")
        note = gr.Textbox(label="Reject reason / note", elem_id="rr-note")
        with gr.Row():
            accept_btn = gr.Button("Accept (a)", elem_id="rr-accept")
            fix_btn = gr.Button("Save fix (f)", elem_id="rr-fix")
            reject_btn = gr.Button("Reject (r)", variant="stop", elem_id="rr-reject")
            skip_btn = gr.Button("Skip (s)", elem_id="rr-skip")
        gr.Markdown(HELP)
        context = gr.State(None)

        item_outputs = [item_id, version, item_view, rankings, drag, order, reasoning, note, message, diff, context]
        filters = [dataset, status, source, min_c, max_c]
        next_btn.click(load_next, filters, item_outputs, api_name="next_item").then(
            show_progress, None, [progress_md, dataset], api_visibility="private"
        )
        reload_btn.click(open_item, [item_id], item_outputs, api_name="open_item").then(
            show_progress, None, [progress_md, dataset], api_visibility="private"
        )
        save_inputs = [item_id, version, order, reasoning, note, context]
        for button, decision in ((accept_btn, "accept"), (fix_btn, "fix"), (reject_btn, "reject"), (skip_btn, "skip")):
            button.click(saver(decision), save_inputs, [message, version, diff], api_name=decision).then(
                show_progress, None, [progress_md, dataset], api_visibility="private"
            )
        drag.change(None, [drag], [order], js=ORDER_FROM_LIST_JS, api_visibility="private")
        drag.change(compare_drag, [drag, context], [rankings, diff], api_visibility="private")
        order.submit(drag_from_order, [order, drag], [drag, message], api_visibility="private")
        gr.api(fix_ranking, api_name="fix_ranking")
