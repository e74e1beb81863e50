"""Arena tab (the first tab): watch 2–4 rerankers think and rank the same query side by side.

The handler is a generator over `reasonrank.arena.run_arena`: each snapshot of the lanes is
rendered (ui.render_arena) and sent to the page, so reasoning appears as it is generated and a
failing reranker shows its error in its own column while the others finish. Queries come from
the bundled samples (db/sample: TREC DL19 BM25 top-100, NovelEval) with their graded judgments,
from the BRIGHT mini set (BM25 over its small corpus, excluded ids removed), or are pasted.
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

from db.seed import SAMPLE
from reasonrank.arena import (
    LABELS,
    MAX_RERANKERS,
    METRICS,
    RECORDED,
    LabelLookup,
    Lane,
    RerankerSpec,
    judged_metrics,
    run_arena,
    with_method,
)
from reasonrank.backends import BACKEND_KINDS
from reasonrank.backends.pool import BackendPool
from reasonrank.evaluate import metric_label
from reasonrank.io import InputError, read_qrels, read_rank_llm_json
from reasonrank.methods import METHOD_NAMES
from reasonrank.types import CandidateList, GenerationParams, Label, Passage, Query
from reasonrank.window import WindowConfig
from ui import registry, render_arena, space_gpu

#: label -> (dataset name as seeded into the label store, candidate file in db/sample/<dataset>/)
SAMPLES = {
    "TREC DL19 (bundled)": ("trec-dl19", "bm25_top100_with_text.json"),
    "NovelEval (bundled)": ("noveleval", "candidates_with_text.json"),
}
BRIGHT_MINI = "BRIGHT mini (theoremqa stand-in)"
PASTE = "Paste your own"
SOURCES = (*SAMPLES, BRIGHT_MINI, PASTE)
MIN_RERANKERS = 2
#: seconds between board updates while only streamed text grows (each update re-renders the board)
TICK_S = 0.2
PACES = {"at the recorded pace": "recorded", "at once": "instant"}
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
FIGURE_COLUMNS = ["reranker", "kind", "status", *map(metric_label, METRICS)] + [
    "tokens in",
    "tokens out",
    "first token s",
    "total s",
    "windows",
    "error",
]


@functools.lru_cache(maxsize=len(SAMPLES) + 1)
def sample_lists(source: str) -> tuple[CandidateList, ...]:
    """A sample's candidate lists with their judgments, read once per app.

    The BRIGHT mini set (the Eval tab builds it once from the shared BRIGHT files) gets its
    candidates from BM25 over its 231-document corpus, excluded ids left out.
    """
    if source == BRIGHT_MINI:
        from reasonrank.bright import load_bright_task
        from reasonrank.bright_mini import MINI_TASK
        from ui.eval_config import mini_root

        return tuple(load_bright_task(mini_root(), MINI_TASK, top_k=100).lists or ())
    dataset, candidates_file = SAMPLES[source]
    root = SAMPLE / dataset
    return tuple(read_rank_llm_json(root / candidates_file, read_qrels(root / "qrels.txt"), dataset))


def query_choices(source: str) -> list[tuple[str, str]]:
    if source not in (*SAMPLES, BRIGHT_MINI):
        return []
    return [(f"{cl.query.qid} · {cl.query.text[:160]}", cl.query.qid) for cl in sample_lists(source)]


def pasted_list(query: str, passages: str, qrels: str) -> CandidateList:
    """A query and one passage per line (`docid<TAB>text`, or just text: ids p1, p2, …);
    optional judgments as `docid grade` lines."""
    if not (query or "").strip():
        raise InputError("type a query to rank the pasted passages for")
    found = []
    for number, line in enumerate((line for line in (passages or "").splitlines() if line.strip()), 1):
        docid, text = line.split("\t", 1) if "\t" in line else (f"p{number}", line)
        found.append(Passage(docid.strip(), text.strip()))
    if len(found) < 2:
        raise InputError("paste at least two passages, one per line")
    if len({p.docid for p in found}) != len(found):
        raise InputError("each pasted passage needs its own docid")
    judged: dict[str, int] = {}
    for line in (qrels or "").splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise InputError(f"judgment lines are 'docid grade', got {line.strip()!r}")
        judged[parts[0]] = int(parts[1])
    return CandidateList(Query("pasted", query.strip()), found, qrels=judged or None, dataset=None)


def chosen_list(source: str, qid: str, query: str, passages: str, qrels: str, top_k: int) -> CandidateList:
    """The list the rerankers get: the chosen query's first `top_k` candidates."""
    if source == PASTE:
        chosen = pasted_list(query, passages, qrels)
    elif source in (*SAMPLES, BRIGHT_MINI):
        chosen = next((cl for cl in sample_lists(source) if cl.query.qid == str(qid)), None)
        if chosen is None:
            raise InputError(f"no query {qid!r} in {source}")
    else:
        raise InputError(f"unknown query source {source!r}; choose one of {', '.join(SOURCES)}")
    return CandidateList(
        chosen.query,
        chosen.candidates[:top_k],
        qrels=chosen.qrels,
        excluded_ids=list(chosen.excluded_ids),
        dataset=chosen.dataset,
    )


def source_dataset(source: str) -> str | None:
    """The dataset name a query source's lists carry (None for pasted lists)."""
    if source in SAMPLES:
        return SAMPLES[source][0]
    if source == BRIGHT_MINI:
        from reasonrank.bright_mini import MINI_TASK

        return MINI_TASK
    return None


def lane_specs(engine: Engine | None) -> dict[str, RerankerSpec]:
    """Every lane a person can pick: the registry's rerankers as they are (a model entry runs
    ReasonRank's sliding window), and each model entry with each other method ("tiny · rank1")."""
    specs = registry.available_specs(engine)
    lanes = dict(specs)
    for spec in specs.values():
        if spec.backend in BACKEND_KINDS:
            for method in (name for name in METHOD_NAMES if name != "reasonrank"):  # that one is the entry
                variant = with_method(spec, method)
                lanes[variant.name] = variant
    return lanes


def reranker_choices(engine: Engine | None, source: str) -> list[str]:
    """The rerankers that can run on `source`'s lists: stored labels only where the label store
    holds that dataset (the bundled DL19 and NovelEval), a recording only on its own dataset."""
    dataset = source_dataset(source)
    choices = []
    for name, spec in lane_specs(engine).items():
        if spec.backend == LABELS and source not in SAMPLES:
            continue
        if spec.backend == RECORDED and registry.recording_dataset(spec) != dataset:
            continue
        choices.append(name)
    return choices


def default_picks(engine: Engine | None, source: str) -> list[str]:
    """What the picker starts with, so Run works untouched: BM25 against the first reranker that
    needs no model here (a recording of this dataset, else the stored labels)."""
    choices = reranker_choices(engine, source)
    specs = lane_specs(engine)
    second = [name for name in choices if specs[name].backend == RECORDED]
    second += [name for name in choices if specs[name].backend == LABELS]
    return ["BM25", second[0]] if "BM25" in choices and second else []


def picked_warnings(engine: Engine | None, names) -> str:
    """A line per picked reranker that will likely fail or mislead (e.g. its key variable unset)."""
    specs = lane_specs(engine)
    found = {name: registry.key_warning(specs[name]) for name in names or [] if name in specs}
    return "\n\n".join(f"⚠️ {name}: {warning}" for name, warning in found.items() if warning)


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


def label_lookup(engine: Engine) -> LabelLookup:
    """The label store's ranking of a sample query: the label under review of its item.

    The item is found by dataset and qid (the samples are seeded under their dataset names).
    """
    from db.queue import find_item

    def find(candidates: CandidateList) -> Label | None:
        if not candidates.dataset:
            return None
        view = find_item(engine, candidates.dataset, candidates.query.qid)
        if view is None or view.label_id is None:
            return None
        return Label(
            candidates=candidates,
            ranking=view.teacher_ranking,
            source=view.source or "model",
            reasoning=view.reasoning,
            model=view.model,
            raw_output=view.raw_output,
        )

    return find


def with_pace(spec: RerankerSpec, pace: str) -> RerankerSpec:
    """A recorded reranker set to the chosen replay pace; any other spec unchanged."""
    if spec.backend != RECORDED:
        return spec
    return RerankerSpec(spec.name, spec.backend, spec.model, {**spec.options, "pace": PACES.get(pace, "recorded")})


def _int(value, name: str, low: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a whole number, got {value!r}") from None
    if number < low:
        raise InputError(f"{name} must be at least {low}, got {number}")
    return number


def results_json(candidates: CandidateList, lanes: list[Lane]) -> dict:
    return {
        "qid": candidates.query.qid,
        "dataset": candidates.dataset,
        "docids": candidates.docids,
        "lanes": [lane.summary() for lane in lanes],
    }


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
    """The tab, wired: each handler binds what it needs and calls a function above."""
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
