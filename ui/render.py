"""Pure HTML for the review screen: item header, reasoning with linked [n] mentions (each points at
passage n in the orderable list beside it), side-by-side rankings and the fix diff.

Every piece of user or dataset text passes through `esc` before it meets markup: imported
passages and teacher traces are untrusted (a passage may hold `<script>` or an `onerror=`
attribute), and the review page must show them as text and run nothing. Keeping this module free
of Gradio and the database lets it be tested on strings alone.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from functools import lru_cache

from reasonrank.imports import ALPHA
from reasonrank.metrics import kendall_tau
from reasonrank.prompts import fix_text

MENTION = re.compile(r"\[(\d{1,3})\]")

# Shared by the item view (gr.HTML css_template): trace box, mentions, the consistency bar.
ITEM_CSS = """
.rr-head h3 { margin: 0 0 4px 0; }
.rr-meta { color: #555; font-size: 0.9em; }
.rr-badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.85em; margin-right: 4px; }
.rr-low { background: #fde2e1; color: #8a1c12; }
.rr-ok { background: #dff3e3; color: #1d5e2c; }
.rr-none { background: #eee; color: #444; }
.rr-bar { position: relative; height: 8px; width: 220px; background: #eee; border-radius: 4px; display: inline-block; vertical-align: middle; }
.rr-bar-fill { position: absolute; left: 0; top: 0; bottom: 0; background: #6b8cd6; border-radius: 4px; }
.rr-bar-alpha { position: absolute; top: -3px; bottom: -3px; width: 2px; background: #c0392b; }
.rr-reasoning { white-space: pre-wrap; max-height: calc(100vh - 390px); overflow: auto; border: 1px solid #ddd; padding: 8px; border-radius: 6px; margin-top: 6px; }
.rr-raw { margin-top: 4px; }
.rr-mention { color: #1f5fbf; cursor: pointer; text-decoration: underline; }
.rr-note { color: #8a5a00; font-style: italic; }
"""

# Hover or click on a [n] mention lights up passage n in the orderable list (#rr-drag, another
# component, so the lookup is page-wide); a click also scrolls it into view and opens it.
ITEM_JS = """
const passages = docid => document.querySelectorAll(`#rr-drag li[data-id="${CSS.escape(docid)}"]`);
const light = (docid, on) => passages(docid).forEach(li => li.classList.toggle('rr-hl', on));
element.addEventListener('mouseover', e => { const m = e.target.closest('.rr-mention'); if (m) light(m.dataset.docid, true); });
element.addEventListener('mouseout', e => { const m = e.target.closest('.rr-mention'); if (m) light(m.dataset.docid, false); });
element.addEventListener('click', e => {
  const m = e.target.closest('.rr-mention'); if (!m) return;
  e.preventDefault();
  passages(m.dataset.docid).forEach(li => { li.classList.add('rr-hl', 'rr-open'); li.scrollIntoView({block: 'nearest'}); });
});
"""


def esc(text: object) -> str:
    """HTML-escape anything for element text and quoted attributes."""
    return html.escape("" if text is None else str(text), quote=True)


_PUNCTUATION = re.compile(r"[^\w ]")


def md_text(text: object) -> str:
    """Untrusted text for a Markdown component, inert: every character but letters, digits and
    spaces becomes a numeric reference, so no backtick, bracket, angle bracket or URL in it can
    open a code span, a link, an image or raw HTML; runs of whitespace become one space."""
    flat = " ".join(("" if text is None else str(text)).split())
    return _PUNCTUATION.sub(lambda m: f"&#{ord(m.group())};", flat)


def md_code(text: object) -> str:
    """Untrusted text shown as inline code in Markdown (see md_text)."""
    return f"<code>{md_text(text)}</code>"


def consistency_html(consistency: float | None, alpha: float = ALPHA) -> str:
    """A badge and a bar with the α line, so a reviewer sees at once whether the label is suspect."""
    if consistency is None:
        return '<span class="rr-badge rr-none">consistency: no judgments</span>'
    kind = "rr-low" if consistency < alpha else "rr-ok"
    side = "below" if consistency < alpha else "at or above"
    width = max(0.0, min(1.0, consistency)) * 100
    return (
        f'<span class="rr-badge {kind}">consistency {consistency:.3f} ({side} α = {alpha})</span>'
        f'<span class="rr-bar" title="nDCG@10 of the teacher list; red line at α = {alpha}">'
        f'<span class="rr-bar-fill" style="width:{width:.1f}%"></span>'
        f'<span class="rr-bar-alpha" style="left:{alpha * 100:.1f}%"></span></span>'
    )


def header_html(view) -> str:
    """Query, item key, status, label source and the consistency badge."""
    source = esc(view.source or "none") + (f" · {esc(view.model)}" if view.model else "")
    return (
        f'<div class="rr-head"><h3>{esc(view.query)}</h3>'
        f'<div class="rr-meta">{esc(view.item_key)} · item {view.item_id} · version {view.version} · '
        f"status {esc(view.status)} · label: {source} · reviews {view.reviews_done}/{view.required_reviews}"
        f"{' · your decision: ' + esc(view.my_decision) if view.my_decision else ''}</div>"
        f"<div>{consistency_html(view.consistency)}</div></div>"
    )


def reasoning_html(
    reasoning: str | None, prompt_to_docid: dict[int, str], model: str | None = None, raw_output: str | None = None
) -> str:
    """The trace with each [n] linked to passage n (n = first-stage position). Without reasoning,
    the model's recorded answer (its [n] linked too) when there is one, said to be just that."""
    if not reasoning:
        who = f" ({esc(model)})" if model else ""
        note = f'<p class="rr-note">This label has no reasoning text{who}: only its ranking can be reviewed.'
        if not raw_output:
            return note + "</p>"
        answer = MENTION.sub(lambda m: _mention(m, prompt_to_docid), esc(raw_output))
        return f'{note} The model\'s recorded answer:</p><div class="rr-raw">{answer}</div>'
    return MENTION.sub(lambda m: _mention(m, prompt_to_docid), esc(reasoning))


def _mention(match: re.Match, prompt_to_docid: dict[int, str]) -> str:
    """One [n] as a link to passage n, or left as text when no passage has that number."""
    docid = prompt_to_docid.get(int(match.group(1)))
    if docid is None:
        return match.group(0)
    return (
        f'<a class="rr-mention" href="#" data-docid="{esc(docid)}" title="passage {esc(docid)}">[{match.group(1)}]</a>'
    )


def item_html(view) -> str:
    """The read-only item view: header, then the trace (the passages are in the orderable list)."""
    prompt_to_docid = {p.prompt_id: p.docid for p in view.passages}
    trace = reasoning_html(view.reasoning, prompt_to_docid, view.model, getattr(view, "raw_output", None))
    return header_html(view) + f'<div class="rr-reasoning">{trace}</div>'


def rankings_html(teacher: Sequence[str], current: Sequence[str], grades: dict[str, int | None]) -> str:
    """Teacher and current ranking side by side; rows where they differ are marked."""
    rows = []
    for rank, (a, b) in enumerate(zip(teacher, current), 1):
        mark = ' style="background:#fff3cd"' if a != b else ""
        ga = "" if grades.get(a) is None else f" (g{grades[a]})"
        gb = "" if grades.get(b) is None else f" (g{grades[b]})"
        rows.append(
            f"<tr{mark}><td>{rank}</td><td><code>{esc(a)}</code>{ga}</td><td><code>{esc(b)}</code>{gb}</td></tr>"
        )
    return (
        '<table class="rr-rankings"><thead><tr><th>#</th><th>teacher</th><th>current</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


PROGRESS_CSS = """
.rr-prog { border-collapse: collapse; font-size: 0.85em; width: 100%; table-layout: fixed; }
.rr-prog td, .rr-prog th { border: 1px solid #e4e4e4; padding: 1px 3px; text-align: right;
                           overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.rr-prog td:first-child, .rr-prog th:first-child { text-align: left; }
.rr-prog th { font-size: 0.92em; }
.rr-prog th:nth-child(1) { width: 22%; } .rr-prog th:nth-child(2), .rr-prog th:nth-child(3) { width: 13%; }
.rr-prog th:nth-child(4) { width: 21%; } .rr-prog th:nth-child(5) { width: 18%; } .rr-prog th:nth-child(6) { width: 13%; }
"""
# Fixed layout: the table keeps to the width of the actions column whatever the dataset names
# (a dataset named after its file is long); a cut name is shown whole on hover.


def progress_html(rows: Sequence) -> str:
    """The reviewer's progress per dataset as one compact table (db.queue.DatasetProgress rows)."""
    body = "".join(
        f'<tr><td title="{esc(row.dataset)}">{esc(row.dataset)}</td>'
        f"<td>{row.mine}</td><td>{row.accepted + row.fixed + row.rejected}</td>"
        f"<td>{row.pending}</td><td>{row.conflict}</td><td>{row.total}</td></tr>"
        for row in rows
    )
    return (
        '<table class="rr-prog"><thead><tr><th>dataset</th><th>mine</th><th>done</th><th>pending</th>'
        f"<th>conflict</th><th>total</th></tr></thead><tbody>{body}</tbody></table>"
    )


def moved_ids(teacher: Sequence[str], current: Sequence[str]) -> list[str]:
    """Docids whose rank differs between the two orders, in the current order."""
    where = {docid: i for i, docid in enumerate(teacher)}
    return [docid for i, docid in enumerate(current) if where.get(docid) != i]


def diff_html(teacher: Sequence[str], current: Sequence[str]) -> str:
    """Kendall τ of the current order against the teacher's, and the ids that moved."""
    if sorted(teacher) != sorted(current):
        return ""
    moved = moved_ids(teacher, current)
    tau = kendall_tau(list(current), list(teacher)) if len(teacher) > 1 else 1.0
    listed = ", ".join(f"<code>{esc(d)}</code>" for d in moved) or "none"
    return f'<div class="rr-diff">Kendall τ vs teacher: <b>{tau:.3f}</b> · moved: {listed}</div>'


@lru_cache(maxsize=8192)
def readable_passage(text: str) -> str:
    """fix_text, once per distinct passage (~10 MB at most): the repair costs about a millisecond
    on a mojibake passage, and the same passages come back on every reload of an item and in
    every item whose candidate list shares them."""
    return fix_text(text)


def drag_items(passages: Sequence, order: Sequence[str]) -> list[dict]:
    """The drag list's value: one plain dict per passage in `order` (text escaped by the template).

    The text is repaired as the prompt repairs it (reasonrank.prompts.fix_text: mojibake such as
    MS MARCO's "Didnâ€™t"), so the reviewer reads each passage as the model read it."""
    by_id = {p.docid: p for p in passages}
    items = []
    for docid in order:
        p = by_id[docid]
        text = readable_passage(f"{p.title}\n{p.text}" if p.title else p.text)
        items.append(
            {"id": docid, "n": p.prompt_id, "grade": "" if p.grade is None else f"grade {p.grade}", "text": text}
        )
    return items
