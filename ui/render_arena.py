"""Pure HTML for the Arena: the summary row, one column per reranker with its streamed reasoning,
the rankings aligned rank by rank, and the window inspector; and the same run as the Figures
table's rows and the JSON an API client receives.

Like ui.render, everything that came from a model, a dataset or a user passes through `esc`:
model output is untrusted text. Rankings share one table (a row per rank, a column per reranker),
so the same rank lines up across rerankers, and hovering a passage lights it up in every column
(ARENA_JS), which is how a passage is followed from one model's list to the next.
"""

from __future__ import annotations

from collections.abc import Sequence

from reasonrank.arena_figures import METRICS, judged_metrics, rel_level_for, relevance_note
from reasonrank.arena_state import Lane
from reasonrank.evaluate import metric_label
from reasonrank.types import CandidateList, WindowCall
from ui.render import esc

SNIPPET_CHARS = 200
FIGURE_COLUMNS = ["reranker", "kind", "status", *map(metric_label, METRICS)] + [
    "tokens in",
    "tokens out",
    "first token s",
    "total s",
    "windows",
    "error",
]

ARENA_CSS = """
.ar-summary { border-collapse: collapse; margin-bottom: 10px; }
.ar-summary td, .ar-summary th { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
.ar-summary td:first-child, .ar-summary th:first-child { text-align: left; }
.ar-best { font-weight: bold; background: #eaf6ec; }
.ar-lanes { display: flex; gap: 10px; align-items: stretch; }
.ar-lane { flex: 1; min-width: 0; border: 1px solid #ddd; border-radius: 6px; padding: 6px 8px; }
.ar-lane h4 { margin: 0 0 4px 0; }
.ar-status { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 0.85em; background: #eee; }
.ar-running { background: #fff3cd; } .ar-done { background: #dff3e3; } .ar-error { background: #fde2e1; color: #8a1c12; }
.ar-live { white-space: pre-wrap; max-height: 280px; overflow: auto; font-size: 0.9em; background: #fafafa;
           border: 1px solid #eee; padding: 4px 6px; margin-top: 4px; }
.ar-answer { color: #1f5fbf; }
.ar-err { color: #8a1c12; white-space: pre-wrap; }
.ar-ranks { border-collapse: collapse; margin-top: 10px; width: 100%; table-layout: fixed; }
.ar-ranks td, .ar-ranks th { border: 1px solid #e4e4e4; padding: 2px 6px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.ar-ranks th:first-child, .ar-ranks td:first-child { width: 3em; text-align: right; }
.ar-doc { cursor: default; }
.ar-gold { background: #e3f1e6; }
.ar-grade { font-size: 0.8em; color: #1d5e2c; margin-left: 4px; }
.ar-hl { outline: 2px solid #f39c12; background: #fff2d6 !important; }
.ar-window { border: 1px solid #ddd; border-radius: 6px; padding: 6px 8px; margin-bottom: 6px; }
.ar-window pre { white-space: pre-wrap; }
.ar-first td { color: #555; font-style: italic; }
.ar-note { font-size: 0.82em; color: #555; margin: 2px 0; }
.ar-recorded { display: inline-block; padding: 0 6px; border-radius: 8px; background: #e6ecfa; color: #1f3f8a; font-size: 0.8em; margin-left: 4px; }
.ar-caption { font-size: 0.85em; color: #555; margin: -6px 0 8px 0; }
.ar-method { display: inline-block; padding: 0 6px; border-radius: 8px; background: #efe6fa; color: #4a1f8a; font-size: 0.8em; margin-left: 4px; }
.ar-view { font-size: 0.85em; margin-top: 6px; max-height: 320px; overflow: auto; }
.ar-view table { border-collapse: collapse; width: 100%; }
.ar-view td, .ar-view th { border: 1px solid #e4e4e4; padding: 1px 4px; vertical-align: top; }
.ar-win { font-weight: bold; outline: 1px solid #4a1f8a; }
.ar-view details { display: inline; }
.ar-reason { display: inline-block; padding: 0 6px; border-radius: 8px; background: #fde2e1; color: #8a1c12; margin-right: 4px; }
"""

# Hover a passage anywhere: every cell holding the same docid lights up (delegated, survives re-renders).
ARENA_JS = """
const mark = (docid, on) => element.querySelectorAll('.ar-doc').forEach(c => {
  if (c.dataset.docid === docid) c.classList.toggle('ar-hl', on);
});
element.addEventListener('mouseover', e => { const d = e.target.closest('.ar-doc'); if (d) mark(d.dataset.docid, true); });
element.addEventListener('mouseout', e => { const d = e.target.closest('.ar-doc'); if (d) mark(d.dataset.docid, false); });
"""


def _doc_cell(candidates: CandidateList, docid: str, texts: dict[str, str]) -> str:
    grade = (candidates.qrels or {}).get(docid)
    # shaded as relevant under the same convention as the figures (DL19: grade >= 2)
    gold = " ar-gold" if grade is not None and grade >= rel_level_for(candidates.dataset) else ""
    badge = "" if grade is None else f'<span class="ar-grade">g{grade}</span>'
    snippet = texts.get(docid, "")[:SNIPPET_CHARS]
    return (
        f'<td class="ar-doc{gold}" data-docid="{esc(docid)}" title="{esc(snippet)}">'
        f"<code>{esc(docid)}</code>{badge}</td>"
    )


def _figure(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def summary_html(lanes: Sequence[Lane], candidates: CandidateList | None = None) -> str:
    """A first-stage row to compare against, then one row per reranker: status, METRICS, tokens,
    seconds; the best reranker figure bold; the relevance convention named under the table."""
    best = {name: max((lane.metrics.get(name, -1.0) for lane in lanes), default=-1.0) for name in METRICS}
    rows = []
    if candidates is not None and candidates.qrels:
        first = judged_metrics(candidates.docids, candidates)
        rows.append(
            '<tr class="ar-first"><td>first stage <small>(input order)</small></td><td>–</td>'
            + "".join(f"<td>{_figure(first.get(name))}</td>" for name in METRICS)
            + "<td>–</td><td>–</td><td>–</td></tr>"
        )
    for lane in lanes:
        cells = [
            f"<td>{esc(lane.name)} <small>({esc(lane.backend)})</small></td>",
            f'<td><span class="ar-status ar-{esc(lane.status)}">{esc(lane.status)}</span></td>',
        ]
        for name in METRICS:
            value = lane.metrics.get(name)
            mark = ' class="ar-best"' if value is not None and value == best[name] and lane.status == "done" else ""
            cells.append(f"<td{mark}>{_figure(value)}</td>")
        cells += [
            f"<td>{lane.tokens_in} / {lane.tokens_out}</td>",
            f"<td>{_figure(lane.first_delta_s, 2)}</td>",
            f"<td>{_figure(lane.seconds, 2)}</td>",
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    metric_heads = "".join(f"<th>{metric_label(name)}</th>" for name in METRICS)
    caption = (
        f'<p class="ar-caption">{esc(relevance_note(candidates.dataset))}</p>'
        if candidates is not None and candidates.qrels
        else ""
    )
    return (
        '<table class="ar-summary"><thead><tr><th>reranker</th><th>status</th>'
        + metric_heads
        + "<th>tokens in / out</th><th>first token s</th><th>total s</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{caption}"
    )


def _unit(lane: Lane) -> str:
    """What one model-call step of the lane is called: a window, or a round of another method."""
    return "window" if lane.paradigm in ("", "listwise") else "round"


def setwise_view(lane: Lane, candidates: CandidateList | None) -> str:
    """The tournament: one row per comparison round, the shown set in prompt order, the winner marked."""
    rows = []
    for call in lane.calls:
        winner = call.docids_after[0] if call.docids_after else None
        shown = " ".join(
            f'<code class="ar-doc{" ar-win" if docid == winner else ""}" data-docid="{esc(docid)}">{esc(docid)}</code>'
            for docid in call.docids_before
        )
        reasons = "".join(f'<span class="ar-reason">{esc(r)}</span>' for r in call.reasons)
        rows.append(
            f"<tr><td>{call.position + 1}</td><td>{shown} {reasons}</td><td><code>{esc(winner or '–')}</code></td></tr>"
        )
    return (
        f'<div class="ar-view" data-view="setwise"><b>Tournament: {len(lane.calls)} comparisons</b>'
        f"<table><thead><tr><th>round</th><th>shown (winner outlined)</th><th>winner</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def pointwise_view(lane: Lane, candidates: CandidateList | None) -> str:
    """Each passage's final score (its last call: a second pass replaces the first), best first,
    with the reasoning that led to it."""
    final: dict[str, WindowCall] = {}
    for call in lane.calls:
        if call.docids_before:
            final[call.docids_before[0]] = call
    scored = sorted(final.items(), key=lambda item: (item[1].score or 0.0, item[0]), reverse=True)
    rows = []
    for docid, call in scored:
        reasons = "".join(f'<span class="ar-reason">{esc(r)}</span>' for r in call.reasons)
        thought = esc(call.reasoning or call.raw_output or "(no output)")
        rows.append(
            f'<tr><td><code class="ar-doc" data-docid="{esc(docid)}">{esc(docid)}</code></td>'
            f'<td class="ar-score">{_figure(call.score)}</td>'
            f"<td>{reasons}<details><summary>reasoning</summary>{thought}</details></td></tr>"
        )
    return (
        f'<div class="ar-view" data-view="pointwise"><b>Scores: {len(final)} passages</b>'
        f"<table><thead><tr><th>passage</th><th>score</th><th>reasoning</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def method_view(lane: Lane, candidates: CandidateList | None = None) -> str:
    """The method's own view of its calls (setwise rounds, pointwise scores); listwise windows
    are in the window inspector."""
    if not lane.calls:
        return ""
    if lane.paradigm == "setwise":
        return setwise_view(lane, candidates)
    if lane.paradigm == "pointwise":
        return pointwise_view(lane, candidates)
    return ""


def lane_html(lane: Lane) -> str:
    """A reranker's column head: name, method, status, progress, what it is thinking now, then
    its method's view of the calls."""
    progress = (
        f" · {_unit(lane)} {min(lane.windows_done + 1, lane.windows_total)}/{lane.windows_total}"
        if lane.status == "running" and lane.windows_total
        else ""
    )
    body = ""
    if lane.error:
        body = f'<div class="ar-err">⚠️ {esc(lane.error)}</div>'
    live = esc(lane.live_reasoning) + (
        f'<span class="ar-answer">{esc(lane.live_text)}</span>' if lane.live_text else ""
    )
    if live or lane.status in ("running", "done"):
        body += f'<div class="ar-live">{live or "…"}</div>'
    recorded = '<span class="ar-recorded">recorded</span>' if lane.backend == "recorded" else ""
    note = f'<div class="ar-note">{esc(lane.note)}</div>' if lane.note else ""
    method = f'<span class="ar-method">{esc(lane.method)} · {esc(lane.paradigm)}</span>' if lane.method else ""
    return (
        f'<div class="ar-lane" data-lane="{esc(lane.name)}"><h4>{esc(lane.name)}{recorded}{method}</h4>'
        f'<span class="ar-status ar-{esc(lane.status)}">{esc(lane.status)}</span>{esc(progress)}{note}{body}'
        f"{method_view(lane)}</div>"
    )


def rankings_html(lanes: Sequence[Lane], candidates: CandidateList) -> str:
    """Rank rows × reranker columns (first stage first), one row per shown passage; gold shaded."""
    texts = {p.docid: p.text for p in candidates.candidates}
    columns = [("first stage", candidates.docids)] + [(lane.name, lane.ranking or []) for lane in lanes]
    head = "".join(f"<th>{esc(name)}</th>" for name, _ in columns)
    rows = []
    for rank in range(len(candidates.docids)):
        cells = [
            _doc_cell(candidates, ranking[rank], texts) if rank < len(ranking) else "<td></td>"
            for _, ranking in columns
        ]
        rows.append(f"<tr><td>{rank + 1}</td>{''.join(cells)}</tr>")
    return f'<table class="ar-ranks"><thead><tr><th>#</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def board_html(lanes: Sequence[Lane], candidates: CandidateList) -> str:
    """The whole Arena board: summary, live columns, aligned rankings."""
    return (
        summary_html(lanes, candidates)
        + '<div class="ar-lanes">'
        + "".join(lane_html(lane) for lane in lanes)
        + "</div>"
        + rankings_html(lanes, candidates)
    )


def _order_html(candidates: CandidateList, docids: Sequence[str]) -> str:
    texts = {p.docid: p.text for p in candidates.candidates}
    cells = "".join(f"<tr><td>{i}</td>{_doc_cell(candidates, d, texts)}</tr>" for i, d in enumerate(docids, 1))
    return f'<table class="ar-ranks">{cells}</table>'


def window_html(call: WindowCall, candidates: CandidateList, number: int, total: int, paradigm: str = "") -> str:
    """One call: input order → output order, what was parsed (a permutation, a chosen label or a
    score), repair reasons, reasoning."""
    permutation = " > ".join(f"[{i + 1}]" for i in call.parsed)
    reasons = "".join(f'<span class="ar-reason">{esc(r)}</span>' for r in call.reasons) or "none"
    if paradigm == "setwise":
        head = f"<b>Round {call.position + 1}</b> · call {number}/{total}"
        parsed = f"chose: <code>{esc(permutation or '–')}</code>"
    elif paradigm == "pointwise":
        head = f"<b>Judgement {number}/{total}</b> · step {call.position + 1}"
        parsed = f"score: <code>{_figure(call.score)}</code>"
    else:
        head = f"<b>Window {number}/{total}</b> · ranks {call.start + 1}–{call.end}"
        parsed = f"applied permutation: <code>{esc(permutation)}</code>"
    return (
        f'<div class="ar-window">{head} · '
        f"pass {call.pass_index + 1} · {call.tokens_in} → {call.tokens_out} tokens · {call.seconds:.2f} s · "
        f"finish {esc(call.finish_reason or '–')}<br>{parsed} · "
        f"repairs: {reasons}"
        f'<div class="ar-lanes"><div class="ar-lane"><b>input order</b>{_order_html(candidates, call.docids_before)}</div>'
        f'<div class="ar-lane"><b>output order</b>{_order_html(candidates, call.docids_after)}</div></div>'
        f"<details><summary>reasoning</summary><pre>{esc(call.reasoning or '(none)')}</pre></details>"
        f"<details><summary>raw output</summary><pre>{esc(call.raw_output)}</pre></details></div>"
    )


def inspector_html(lane: Lane | None, candidates: CandidateList | None) -> str:
    """Every window call of one reranker, in the order they ran (back to front)."""
    if lane is None or candidates is None:
        return "<p>Run the Arena, then pick a reranker to inspect its windows.</p>"
    if lane.error:
        return f'<p class="ar-err">{esc(lane.name)} failed: {esc(lane.error)}</p>'
    if not lane.calls:
        text = esc(lane.reasoning) if lane.reasoning else "no model calls (a baseline ranks without windows)"
        return f"<p><b>{esc(lane.name)}</b>: {text}</p>"
    return "".join(
        window_html(call, candidates, i, len(lane.calls), lane.paradigm) for i, call in enumerate(lane.calls, 1)
    )


def figures_rows(candidates: CandidateList, lanes: list[Lane]) -> list[list]:
    """The Figures table: the first stage, then one row per reranker."""

    def rounded(value, digits=4):
        return None if value is None else round(value, digits)

    first = judged_metrics(candidates.docids, candidates)
    rows = [
        ["first stage", "input order", "–", *(rounded(first.get(m)) for m in METRICS), None, None, None, None, None, ""]
    ]
    for lane in lanes:
        rows.append(
            [lane.name, lane.backend, lane.status, *(rounded(lane.metrics.get(m)) for m in METRICS)]
            + [lane.tokens_in, lane.tokens_out, rounded(lane.first_delta_s, 2), rounded(lane.seconds, 2)]
            + [lane.windows_done, lane.error or ""]
        )
    return rows


def results_json(candidates: CandidateList, lanes: list[Lane]) -> dict:
    """The run's figures for API clients: the list's ids and each lane's summary."""
    return {
        "qid": candidates.query.qid,
        "dataset": candidates.dataset,
        "docids": candidates.docids,
        "lanes": [lane.summary() for lane in lanes],
    }
