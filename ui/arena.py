"""Arena tab (the first tab): watch 2–4 rerankers think and rank the same query side by side.

The handler is a generator over `reasonrank.arena.run_arena`: each snapshot of the lanes is
rendered (ui.render_arena) and sent to the page, so reasoning appears as it is generated and a
failing reranker shows its error in its own column while the others finish. Queries come from
ui.arena_queries (bundled samples, the BRIGHT mini set, or pasted), the rerankers a person can
pick from ui.arena_rerankers.
Loaded models stay in one BackendPool for the life of the app, so the second run of a local model
does not load it again.
Gradio is imported at module level on purpose (handlers use gr.Request hints); this module is
only imported inside ui.build_app.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import gradio as gr
from gradio.context import Context
from sqlalchemy import Engine

from reasonrank.arena import MAX_RERANKERS, LabelLookup, run_arena
from reasonrank.backends.pool import BackendPool
from reasonrank.io import InputError
from reasonrank.types import GenerationParams
from reasonrank.window import WindowConfig
from ui import registry, render_arena, space_gpu
from ui.arena_queries import PASTE, SAMPLES, SOURCES, chosen_list, query_choices
from ui.arena_rerankers import (
    PACES,
    default_picks,
    label_lookup,
    lane_specs,
    picked_warnings,
    reranker_choices,
    with_pace,
)
from ui.render_arena import FIGURE_COLUMNS, figures_rows, results_json

MIN_RERANKERS = 2
#: seconds between board updates while only streamed text grows (each update re-renders the board)
TICK_S = 0.2
INTRO = (
    "Pick a query, pick 2–4 rerankers, press **Run**: each column streams its model's reasoning, "
    "then shows its ranking, nDCG@10 / Recall@10 / MRR@10 against the judgments (first stage "
    "on the first row), tokens and seconds. Relevant passages are shaded (g = grade; the "
    "convention is named under the figures); hover a "
    "passage to follow it across columns. A model reranker runs ReasonRank's sliding window; pick "
    "*reranker · method* to run another method on it (setwise columns show their tournament, "
    "pointwise ones a score per passage). **Recorded** rerankers replay a real model run "
    "stored with the app (no model needed); their column names the model, date and source."
)


def _int(value, name: str, low: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a whole number, got {value!r}") from None
    if number < low:
        raise InputError(f"{name} must be at least {low}, got {number}")
    return number


@dataclass(frozen=True)
class ArenaForm:
    """What Run was given, in the order of the /arena_run inputs (pace last)."""

    source: str
    qid: str | None
    query: str | None
    passages: str | None
    qrels: str | None
    names: list[str] | None
    top_k: float | None
    window: float | None
    step: float | None
    max_new_tokens: float | None
    pace: str | None

    @classmethod
    def from_values(cls, *values) -> ArenaForm:
        return cls(*values)

    def window_config(self) -> WindowConfig:
        top_k = _int(self.top_k, "top k", 2)  # checked first: the depth bounds what the rest can be
        return WindowConfig(
            window=_int(self.window, "window", 2),
            step=_int(self.step, "step", 1),
            top_k=top_k,
            generation=GenerationParams(max_new_tokens=_int(self.max_new_tokens, "max new tokens", 1)),
        )


@dataclass
class ArenaScreen:
    """Every component of the Arena tab, by name."""

    source: gr.Dropdown
    qid: gr.Dropdown
    paste_box: gr.Accordion
    query: gr.Textbox
    passages: gr.Textbox
    qrels: gr.Textbox
    names: gr.Dropdown
    top_k: gr.Number
    window: gr.Number
    step: gr.Number
    max_new_tokens: gr.Number
    pace: gr.Radio
    run_btn: gr.Button
    warnings: gr.Markdown
    message: gr.Markdown
    board: gr.HTML
    inspect_name: gr.Dropdown
    inspector: gr.HTML
    figures: gr.Dataframe
    results: gr.JSON
    state: gr.State

    def run_inputs(self) -> list:
        """The /arena_run inputs, in ArenaForm's order."""
        return [getattr(self, f.name) for f in dataclasses.fields(ArenaForm)]

    def run_outputs(self) -> list:
        """The /arena_run outputs: what an API caller receives, in this order."""
        return [self.board, self.results, self.figures, self.message, self.state, self.inspect_name]


@dataclass
class ArenaContext:
    """What every run of this app shares: the store, the loaded models, the stored labels."""

    engine: Engine | None
    pool: BackendPool
    lookup: LabelLookup | None


def run_board(context: ArenaContext, screen: ArenaScreen, *values) -> Iterator[dict]:
    """Stream the board while the chosen rerankers run (2 to 4 of them); a refused form changes
    only the message."""
    form = ArenaForm.from_values(*values)
    try:
        config = form.window_config()
        candidates = chosen_list(form.source, form.qid, form.query, form.passages, form.qrels, config.top_k)
        names = list(form.names or [])
        if not MIN_RERANKERS <= len(names) <= MAX_RERANKERS:
            raise InputError(f"pick {MIN_RERANKERS} to {MAX_RERANKERS} rerankers, got {len(names)}")
        specs = lane_specs(context.engine)
        unknown = [name for name in names if name not in specs]
        if unknown:
            raise InputError(f"no reranker named {', '.join(map(repr, unknown))}; refresh the list")
        chosen = [with_pace(specs[name], form.pace) for name in names]
        snapshots = run_arena(candidates, chosen, config, pool=context.pool, labels=context.lookup, tick_s=TICK_S)
        first = next(snapshots)  # bad specs fail here, before anything is shown
    except InputError as exc:
        yield {screen.board: "", screen.results: None, screen.message: f"⚠️ {exc}"}
        return
    where = f"{candidates.dataset or 'pasted'}/{candidates.query.qid}"
    status = f"Running {len(names)} rerankers on {where} ({len(candidates.candidates)} passages)…"
    for lanes in itertools.chain([first], snapshots):
        shown = {
            screen.board: render_arena.board_html(lanes, candidates),
            screen.results: results_json(candidates, lanes),
            screen.figures: figures_rows(candidates, lanes),
        }
        if any(lane.status in ("waiting", "running") for lane in lanes):
            yield {**shown, screen.message: status}
            continue
        failed = [lane.name for lane in lanes if lane.status == "error"]
        status = f"Done: {where}." + (f" Failed: {', '.join(failed)} (see its column)." if failed else "")
        yield {
            **shown,
            screen.message: status,
            screen.state: {"candidates": candidates, "lanes": lanes},
            screen.inspect_name: gr.update(choices=[lane.name for lane in lanes], value=lanes[0].name),
        }


def inspect_lane(name: str | None, state: dict | None) -> str:
    """The window inspector for one lane of the last finished run."""
    if not state:
        return render_arena.inspector_html(None, None)
    lane = next((lane for lane in state["lanes"] if lane.name == name), None)
    return render_arena.inspector_html(lane, state["candidates"])


def refresh_picker(engine: Engine | None, source: str, picked: list[str] | None) -> dict:
    """The picker's choices for `source`, keeping what is still pickable (else the default picks)."""
    choices = reranker_choices(engine, source)
    kept = [name for name in picked or [] if name in choices]
    return gr.update(choices=choices, value=kept or default_picks(engine, source))


def pick_source(screen: ArenaScreen, source: str) -> dict:
    """A new query source: its queries (none for pasting: the paste box opens instead)."""
    try:
        choices = query_choices(source)
    except InputError as exc:
        return {
            screen.qid: gr.update(choices=[], value=None),
            screen.paste_box: gr.update(open=False),
            screen.message: f"⚠️ {exc}",
        }
    return {
        screen.qid: gr.update(choices=choices, value=choices[0][1] if choices else None, visible=source != PASTE),
        screen.paste_box: gr.update(open=source == PASTE),
        screen.message: "",
    }


def layout(engine: Engine | None) -> ArenaScreen:
    """The tab's components: query, rerankers and settings, then the board, inspector and figures."""
    gr.Markdown(INTRO)
    first_source = next(iter(SAMPLES))
    first_choices = query_choices(first_source)
    with gr.Row():
        source = gr.Dropdown(list(SOURCES), value=first_source, label="Queries", elem_id="arena-source")
        qid = gr.Dropdown(
            first_choices,
            value=first_choices[0][1],
            label="Query",
            allow_custom_value=True,
            elem_id="arena-query",
            scale=3,
        )
    with gr.Accordion("Paste a query and passages", open=False) as paste_box:
        query = gr.Textbox(label="Query", elem_id="arena-paste-query")
        passages = gr.Textbox(
            label="Passages: one per line, optionally 'docid<TAB>text'", lines=6, elem_id="arena-paste-passages"
        )
        qrels = gr.Textbox(label="Judgments (optional): 'docid grade' per line", lines=3, elem_id="arena-paste-qrels")
    with gr.Row():
        names = gr.Dropdown(
            reranker_choices(engine, first_source),
            value=default_picks(engine, first_source),
            multiselect=True,
            max_choices=MAX_RERANKERS,
            allow_custom_value=True,
            label="Rerankers (2–4)",
            elem_id="arena-rerankers",
            scale=3,
        )
        top_k = gr.Number(20, precision=0, label="Top k passages", elem_id="arena-topk")
        window = gr.Number(20, precision=0, label="Window", elem_id="arena-window")
        step = gr.Number(10, precision=0, label="Step", elem_id="arena-step")
        max_new_tokens = gr.Number(
            GenerationParams().max_new_tokens, precision=0, label="Max new tokens", elem_id="arena-max-tokens"
        )
    space_gpu.attach(top_k, window, step, max_new_tokens)  # ZeroGPU estimate + full-sweep button
    with gr.Row():
        pace = gr.Radio(list(PACES), value=next(iter(PACES)), label="Replay recorded rerankers", elem_id="arena-pace")
        run_btn = gr.Button("Run", variant="primary", elem_id="arena-run")
    warnings = gr.Markdown(elem_id="arena-warnings")
    message = gr.Markdown(elem_id="arena-message")
    board = gr.HTML("", css_template=render_arena.ARENA_CSS, js_on_load=render_arena.ARENA_JS, elem_id="arena-board")
    with gr.Accordion("Window inspector", open=False):
        inspect_name = gr.Dropdown([], label="Reranker", elem_id="arena-inspect-name")
        inspector = gr.HTML(
            render_arena.inspector_html(None, None), css_template=render_arena.ARENA_CSS, elem_id="arena-inspector"
        )
    with gr.Accordion("Figures", open=False):
        figures = gr.Dataframe(headers=FIGURE_COLUMNS, interactive=False, elem_id="arena-figures")
    results = gr.JSON(visible=False, elem_id="arena-results")  # the same figures for API clients
    return ArenaScreen(
        source=source,
        qid=qid,
        paste_box=paste_box,
        query=query,
        passages=passages,
        qrels=qrels,
        names=names,
        top_k=top_k,
        window=window,
        step=step,
        max_new_tokens=max_new_tokens,
        pace=pace,
        run_btn=run_btn,
        warnings=warnings,
        message=message,
        board=board,
        inspect_name=inspect_name,
        inspector=inspector,
        figures=figures,
        results=results,
        state=gr.State(None),
    )


def build(engine: Engine | None) -> None:
    """The tab, wired: each handler binds what it needs and calls a module-level function (here or
    in ui.arena_rerankers)."""
    context = ArenaContext(engine, BackendPool(), label_lookup(engine) if engine is not None else None)
    with gr.Tab("Arena", id="arena"):
        screen = layout(engine)
        picker = functools.partial(refresh_picker, engine)
        if engine is not None:
            for event in registry.build(engine):
                event.then(picker, [screen.source, screen.names], [screen.names], api_visibility="private")

    Context.root_block.load(picker, [screen.source, screen.names], [screen.names], api_visibility="private")
    screen.source.change(
        functools.partial(pick_source, screen),
        [screen.source],
        [screen.qid, screen.paste_box, screen.message],
        api_visibility="private",
    )
    screen.source.change(picker, [screen.source, screen.names], [screen.names], api_visibility="private")
    screen.names.change(
        functools.partial(picked_warnings, engine), [screen.names], [screen.warnings], api_visibility="private"
    )
    screen.run_btn.click(
        functools.partial(run_board, context, screen),
        screen.run_inputs(),
        screen.run_outputs(),
        api_name="arena_run",
        concurrency_limit=4,
    )
    screen.inspect_name.change(
        inspect_lane, [screen.inspect_name, screen.state], [screen.inspector], api_visibility="private"
    )
