"""Pure HTML and table rows for the admin Agreement tab: the annotator-pair table, the list of
items in conflict, and one item's orders side by side.

Kept apart from ui/render.py (the review screen) so each module shows one screen; it reuses that
module's `esc` and `diff_html`, so every annotator name, docid and item key is escaped the same
way before it meets markup (names come from the User table, keys from imported files).
"""

from __future__ import annotations

from collections.abc import Sequence

from ui.render import diff_html, esc

PAIR_HEADERS = ["annotator A", "annotator B", "items shared", "same outcome", "mean Kendall τ", "mean RBO"]
ORDER_PREVIEW = 5  # docids shown per order in the conflict list; the side-by-side view shows all


def pair_rows(pairs: Sequence) -> list[list]:
    """One row per annotator pair (db.agreement.PairAgreement); τ / RBO blank when no item was ranked by both."""

    def number(value: float | None) -> float | str:
        return "" if value is None else round(value, 4)

    return [
        [p.annotator_a, p.annotator_b, p.items, round(p.same_outcome, 4), number(p.kendall_tau), number(p.rbo)]
        for p in pairs
    ]


def _order_text(order: Sequence[str] | None, limit: int | None = None) -> str:
    if order is None:
        return "rejected"
    shown = list(order) if limit is None else list(order)[:limit]
    more = " …" if limit is not None and len(order) > limit else ""
    return " > ".join(esc(docid) for docid in shown) + more


def conflicts_html(disagreements: Sequence) -> str:
    """Items whose reviewers disagree (db.agreement.Disagreement): each annotator's decision and order."""
    if not disagreements:
        return "<p>No disagreements: every item reviewed by several people has one outcome.</p>"
    rows = []
    for d in disagreements:
        votes = "<br>".join(
            f"<b>{esc(name)}</b>: {esc(decision)} — <code>{_order_text(d.rankings[name], ORDER_PREVIEW)}</code>"
            for name, decision in d.decisions.items()
        )
        rows.append(f"<tr><td>{d.item_id}</td><td>{esc(d.item_key)}</td><td>{esc(d.status)}</td><td>{votes}</td></tr>")
    return (
        '<table class="rr-conflicts"><thead><tr><th>item</th><th>key</th><th>status</th>'
        f"<th>decisions</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def conflict_choices(disagreements: Sequence) -> list[tuple[str, str]]:
    """(label, value) pairs for the item picker; the value is the item id as text."""
    return [(f"{d.item_key} · {d.status} (item {d.item_id})", str(d.item_id)) for d in disagreements]


def orders_side_by_side_html(
    teacher: Sequence[str], orders: dict[str, list[str] | None], grades: dict[str, int | None]
) -> str:
    """The teacher's order and every annotator's in columns; cells that differ from the teacher are
    marked, and under each column its Kendall τ and moved ids against the teacher (render.diff_html)."""
    names = list(orders)
    head = "".join(f"<th>{esc(name)}</th>" for name in names)
    rows = []
    for rank, docid in enumerate(teacher, 1):
        cells = [f"<td>{rank}</td>", f"<td><code>{esc(docid)}</code>{_grade(grades, docid)}</td>"]
        for name in names:
            order = orders[name]
            if order is None:
                cells.append('<td class="rr-note">rejected</td>' if rank == 1 else "<td></td>")
                continue
            other = order[rank - 1] if rank <= len(order) else ""
            mark = ' style="background:#fff3cd"' if other != docid else ""
            cells.append(f"<td{mark}><code>{esc(other)}</code>{_grade(grades, other)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    diffs = "".join(
        f"<div><b>{esc(name)}</b>: {'rejects the item' if order is None else diff_html(teacher, order)}</div>"
        for name, order in orders.items()
        if order is None or list(order) != list(teacher)
    )
    return (
        f'<table class="rr-rankings"><thead><tr><th>#</th><th>teacher</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{diffs}"
    )


def _grade(grades: dict[str, int | None], docid: str) -> str:
    return "" if grades.get(docid) is None else f" (g{grades[docid]})"
