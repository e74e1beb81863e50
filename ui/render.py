"""Pure HTML for the review screen: item header, reasoning with linked [n] mentions, passage cards,
side-by-side rankings and the fix diff.

Every piece of user or dataset text passes through `esc` before it meets markup: imported
passages and teacher traces are untrusted (a passage may hold `<script>` or an `onerror=`
attribute), and the review page must show them as text and run nothing. Keeping this module free
of Gradio and the database lets it be tested on strings alone.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from reasonrank.imports import ALPHA
from reasonrank.metrics import kendall_tau

MENTION = re.compile(r"\[(\d{1,3})\]")
SNIPPET_CHARS = 240

# Shared by the item view (gr.HTML css_template): cards, mentions, the consistency bar.
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
.rr-cols { display: flex; gap: 16px; align-items: flex-start; }
.rr-reasoning { flex: 1; white-space: pre-wrap; max-height: 640px; overflow: auto; border: 1px solid #ddd; padding: 8px; border-radius: 6px; }
.rr-cards { flex: 1; max-height: 640px; overflow: auto; }
.rr-card { border: 1px solid #ddd; border-radius: 6px; padding: 6px 8px; margin-bottom: 6px; white-space: pre-wrap; }
.rr-card.rr-hl { outline: 3px solid #f39c12; background: #fff8e6; }
.rr-mention { color: #1f5fbf; cursor: pointer; text-decoration: underline; }
.rr-note { color: #8a5a00; font-style: italic; }
"""

# Hover or click on a [n] mention lights up its passage card (delegated, survives re-renders).
ITEM_JS = """
const light = (docid, on) => element.querySelectorAll('.rr-card').forEach(c => {
  if (c.dataset.docid === docid) c.classList.toggle('rr-hl', on);
});
element.addEventListener('mouseover', e => { const m = e.target.closest('.rr-mention'); if (m) light(m.dataset.docid, true); });
element.addEventListener('mouseout', e => { const m = e.target.closest('.rr-mention'); if (m) light(m.dataset.docid, false); });
element.addEventListener('click', e => {
  const m = e.target.closest('.rr-mention'); if (!m) return;
  e.preventDefault();
  element.querySelectorAll('.rr-card.rr-hl').forEach(c => c.classList.remove('rr-hl'));
  element.querySelectorAll('.rr-card').forEach(c => {
    if (c.dataset.docid === m.dataset.docid) { c.classList.add('rr-hl'); c.scrollIntoView({block: 'nearest'}); }
  });
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


def reasoning_html(reasoning: str | None, prompt_to_docid: dict[int, str], model: str | None = None) -> str:
    """The trace with each [n] turned into a link to passage n's card (n = first-stage position)."""
    if not reasoning:
        who = f" ({esc(model)})" if model else ""
        return f'<p class="rr-note">This label has no reasoning text{who}: only its ranking can be reviewed.</p>'

    def link(match: re.Match) -> str:
        docid = prompt_to_docid.get(int(match.group(1)))
        if docid is None:
            return match.group(0)
        return (
            f'<a class="rr-mention" href="#" data-docid="{esc(docid)}" '
            f'title="passage {esc(docid)}">[{match.group(1)}]</a>'
        )

    return MENTION.sub(link, esc(reasoning))


def passage_cards_html(passages: Sequence) -> str:
    """Cards in the teacher's order: rank, [n], docid, gold grade when judged, title and text."""
    cards = []
    for rank, p in enumerate(passages, 1):
        grade = "" if p.grade is None else f' <span class="rr-badge rr-ok">grade {p.grade}</span>'
        title = f"<b>{esc(p.title)}</b>\n" if p.title else ""
        cards.append(
            f'<div class="rr-card" data-docid="{esc(p.docid)}">'
            f"<b>#{rank}</b> [{p.prompt_id}] <code>{esc(p.docid)}</code>{grade}\n{title}{esc(p.text)}</div>"
        )
    return "".join(cards)


def item_html(view) -> str:
    """The whole read-only item view: header, then reasoning beside the passage cards."""
    prompt_to_docid = {p.prompt_id: p.docid for p in view.passages}
    return (
        header_html(view) + '<div class="rr-cols">'
        f'<div class="rr-reasoning">{reasoning_html(view.reasoning, prompt_to_docid, view.model)}</div>'
        f'<div class="rr-cards">{passage_cards_html(view.passages)}</div></div>'
    )


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


def drag_items(passages: Sequence, order: Sequence[str]) -> list[dict]:
    """The drag list's value: one plain dict per passage in `order` (text escaped by the template)."""
    by_id = {p.docid: p for p in passages}
    items = []
    for docid in order:
        p = by_id[docid]
        snippet = p.text if len(p.text) <= SNIPPET_CHARS else p.text[:SNIPPET_CHARS] + "…"
        items.append(
            {"id": docid, "n": p.prompt_id, "grade": "" if p.grade is None else f"grade {p.grade}", "snippet": snippet}
        )
    return items
