"""The Train tab's reward debugger: score pasted completions for one RL row, or a group sampled
from a registered reranker (a policy under test) on the row's own prompt, term by term.

Admins only, checked on the server by each handler. Gradio is imported at module level on
purpose (the components' types); this module is only imported inside ui.build_app.
"""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass
from functools import partial

import gradio as gr
import pandas as pd
from sqlalchemy import Engine

from db.exports import get_export
from db.registry import get_reranker, list_rerankers, reranker_spec
from reasonrank.arena import RerankerSpec
from reasonrank.backends import make_backend
from reasonrank.backends.base import BackendError
from reasonrank.io import InputError
from reasonrank.train.data import load_row
from reasonrank.train.debugger import DEFAULT_MAX_NEW_TOKENS, debug_completion, debug_group, sample_completions
from ui.auth import current_request, require_admin

#: registry backends the debugger can sample completions from
GENERATOR_BACKENDS = ("transformers", "openai")
DEBUG_COLUMNS = [
    "#",
    "reward",
    "advantage",
    "format_ok",
    "count_ok",
    "ndcg10",
    "recall10",
    "rbo",
    "format_score",
    "parsed order",
]
COMPLETION_SEPARATOR = "\n---\n"


def debug_frame(texts: list[str], row: dict, format_weight: float) -> tuple[pd.DataFrame, dict]:
    """The reward debugger's table (one line per completion) and its raw figures; advantages
    only for a group (two or more completions)."""
    if len(texts) > 1:
        group = debug_group(texts, row, format_weight)
        reports, advantages = group.completions, group.advantages
    else:
        reports, advantages = [debug_completion(text, row, format_weight) for text in texts], [None]
    rewards = [report.reward for report in reports]
    rows = []
    for index, (report, advantage) in enumerate(zip(reports, advantages), 1):
        terms = report.terms
        rows.append(
            [
                index,
                report.reward,
                advantage,
                terms.format_ok,
                terms.count_ok,
                terms.ndcg10,
                terms.recall10,
                terms.rbo,
                report.format_score,
                " > ".join(f"[{i + 1}]" for i in report.parsed.order),
            ]
        )
    figures = {
        "rewards": rewards,
        "advantages": advantages,
        "terms": [dataclasses.asdict(r.terms) for r in reports],
        "format_checks": [r.format_checks for r in reports],
    }
    return pd.DataFrame(rows, columns=DEBUG_COLUMNS), figures


def generator_choices(engine: Engine) -> list[str]:
    """Registered rerankers the debugger can sample from (model backends that take a prompt)."""
    return [row.name for row in list_rerankers(engine) if row.backend in GENERATOR_BACKENDS]


def generator_spec(engine: Engine, name: str | None) -> RerankerSpec:
    """The registry entry `name` as a spec, refused unless it is a transformers or openai reranker."""
    try:
        row = get_reranker(engine, name) if name else None
    except InputError:  # no such reranker
        row = None
    if row is None or row.backend not in GENERATOR_BACKENDS:
        raise InputError(
            f"choose a registered {' or '.join(GENERATOR_BACKENDS)} reranker to generate with"
            + (f"; {name!r} is not one" if name else "")
        )
    return reranker_spec(row)


def rl_row(engine: Engine, export_id: str | None, data_path: str | None, index: float | None) -> tuple[int, dict]:
    """(position, row) of one RL row, from a recorded export or a JSONL path (read up to that row only)."""
    path = get_export(engine, int(export_id)).path if export_id else (data_path or "").strip()
    if not path:
        raise InputError("choose an RL export or give an RL JSONL path")
    position = int(index or 0)
    return position, load_row(path, "grpo", position)


@dataclass
class Debugger:
    """The reward debugger's components."""

    export: gr.Dropdown
    path: gr.Textbox
    index: gr.Number
    weight: gr.Number
    generator: gr.Dropdown
    refresh_generators: gr.Button
    samples: gr.Number
    temperature: gr.Number
    max_tokens: gr.Number
    generate: gr.Button
    completions: gr.Textbox
    score: gr.Button
    about: gr.Markdown
    table: gr.Dataframe
    figures: gr.JSON

    def score_inputs(self) -> list:
        """The /reward_debug inputs."""
        return [self.export, self.path, self.index, self.completions, self.weight]

    def score_outputs(self) -> list:
        return [self.about, self.table, self.figures]

    def generate_inputs(self) -> list:
        """The /reward_generate inputs."""
        return [self.export, self.path, self.index, self.generator, self.samples, self.temperature, self.max_tokens]


def reward_debug(engine: Engine, debugger: Debugger, export_id, data_path, index, completions, format_weight) -> dict:
    """Score pasted completions (separated by a line `---`) against one RL row of an export:
    the about line, the table and the figures."""
    require_admin(engine, current_request())
    try:
        position, row = rl_row(engine, export_id, data_path, index)
        texts = [t for t in (completions or "").split(COMPLETION_SEPARATOR) if t.strip()]
        if not texts:
            raise InputError("paste at least one completion")
        frame, figures = debug_frame(texts, row, float(format_weight or 0.0))
    except InputError as exc:
        raise gr.Error(str(exc)) from exc
    about = (
        f"Row {position}: {len(row['initial_list'])} passages; teacher order "
        f"{html.escape(' > '.join(row['teacher_list']))}; relevant {html.escape(', '.join(row['relevant_docids']) or 'none')}"
    )
    return {debugger.about: about, debugger.table: frame, debugger.figures: figures}


def reward_generate(engine: Engine, export_id, data_path, index, reranker, samples, temperature, max_new_tokens) -> str:
    """Sample a group of completions of the row's prompt from a registered reranker; they fill
    the completions box (one per `---` block) for scoring."""
    require_admin(engine, current_request())
    try:
        _, row = rl_row(engine, export_id, data_path, index)
        spec = generator_spec(engine, reranker)
        backend = make_backend(spec.backend_config())
        try:
            texts = sample_completions(
                row,
                backend,
                int(samples or 0),
                float(temperature or 0.0),
                int(max_new_tokens or DEFAULT_MAX_NEW_TOKENS),
            )
        finally:
            backend.close()
    except (InputError, BackendError) as exc:
        raise gr.Error(str(exc)) from exc
    return COMPLETION_SEPARATOR.join(texts)


def refreshed_generators(engine: Engine) -> dict:
    return gr.update(choices=generator_choices(engine))


def debugger_panel() -> Debugger:
    with gr.Accordion("Reward debugger", open=False):
        gr.Markdown(
            "Paste completions for one RL row (separate several with a line `---`), or generate a "
            "group with a registered reranker: each reward term, the total, and for a group the "
            "advantages GRPO would train on."
        )
        with gr.Row():
            export = gr.Dropdown([], value=None, label="RL export", allow_custom_value=True)
            path = gr.Textbox(label="…or an RL JSONL file")
            index = gr.Number(0, label="Row", precision=0, minimum=0)
            weight = gr.Number(0.0, label="Format reward weight")
        with gr.Row():
            generator = gr.Dropdown(
                [],
                value=None,
                label="Generate with",
                allow_custom_value=True,
                elem_id="rr-debug-generator",
            )
            refresh_generators = gr.Button("↻ rerankers", size="sm")
            samples = gr.Number(4, label="Samples", precision=0, minimum=1, maximum=64)
            temperature = gr.Number(1.0, label="Temperature", minimum=0.0)
            max_tokens = gr.Number(DEFAULT_MAX_NEW_TOKENS, label="Max new tokens", precision=0, minimum=1)
            generate = gr.Button("Generate")
        completions = gr.Textbox(lines=6, label="Completions")
        score = gr.Button("Score")
        about = gr.Markdown()
        table = gr.Dataframe(headers=DEBUG_COLUMNS, interactive=False, label="Reward terms")
        figures = gr.JSON(label="Figures")
    return Debugger(
        export,
        path,
        index,
        weight,
        generator,
        refresh_generators,
        samples,
        temperature,
        max_tokens,
        generate,
        completions,
        score,
        about,
        table,
        figures,
    )


def wire_debugger(engine: Engine, debugger: Debugger) -> None:
    """The debugger's events: score (/reward_debug), generate then score (/reward_generate), and
    the generator list's refresh."""
    scores = partial(reward_debug, engine, debugger)
    debugger.score.click(scores, debugger.score_inputs(), debugger.score_outputs(), api_name="reward_debug")
    debugger.refresh_generators.click(
        partial(refreshed_generators, engine), None, debugger.generator, api_visibility="private"
    )
    debugger.generate.click(
        partial(reward_generate, engine), debugger.generate_inputs(), debugger.completions, api_name="reward_generate"
    ).success(scores, debugger.score_inputs(), debugger.score_outputs(), api_visibility="private")
