"""Eval results as shown: a finished run's per-task table and what reproduces it, and the recorded
runs (db.evalruns.leaderboard rows) as the leaderboard table, the comparison chart and the
quality–cost frontier. Shared by the Eval tab and the public Leaderboard tab.

Metrics are shown ×100 to 2 decimals, as the paper reports them. Every function here turns values
into a frame, SVG or Markdown and reads nothing, so the tabs decide when the store is read (and
whether finished jobs are recorded first). Recorded text reaches Markdown through md_text.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from reasonrank.evaluate import DEFAULT_METRICS, metric_label
from ui.charts import bar_chart, scatter_chart
from ui.render import md_code, md_text

TABLE_COLUMNS = ["dataset", "stage", "queries", *(metric_label(m) for m in DEFAULT_METRICS)]
LEADERBOARD_COLUMNS = [
    "#",
    "run",
    "dataset",
    "reranker",
    "method",
    "nDCG@10",
    "Recall@10",
    "first stage",
    "gain",
    "queries",
    "tokens in / query",
    "tokens out / query",
    "reasoning tokens / query",
    "calls / query",
    "rounds / query",
    "s / query",
    "window/step/top-k",
    "job",
    "created",
]
#: runs the comparison chart shows (the leaderboard's best first)
CHART_RUNS = 12


def _percent(value) -> float | None:
    return None if value is None else round(100 * float(value), 2)


def results_table(rows: list[dict]) -> pd.DataFrame:
    """The eval table as shown: metrics ×100 to 2 decimals, as the paper reports them."""
    data = [
        [row["dataset"], row["stage"], row["queries"], *(_percent(row.get(m)) for m in DEFAULT_METRICS)] for row in rows
    ]
    return pd.DataFrame(data, columns=TABLE_COLUMNS)


def comparison_chart(runs: Sequence) -> str:
    """nDCG@10 ×100 of the leaderboard's best runs: first stage and final, one bar pair per run."""
    rows = runs[:CHART_RUNS]
    categories = [f"#{i} {row.name} ({row.dataset})" for i, row in enumerate(rows, 1)]
    return bar_chart(
        "nDCG@10 (×100) of the leaderboard's best runs",
        categories,
        {"first stage": [_percent(r.first_stage) for r in rows], "final": [_percent(r.final) for r in rows]},
    )


def frontier_chart(runs: Sequence) -> str:
    """The quality–cost frontier: nDCG@10 ×100 against output tokens per query, one dot per
    reranked run × dataset (coloured by method), the Pareto front across them dashed."""
    series: dict[str, list[tuple[float, float, str]]] = {}
    for row in runs:
        if row.method is None or "tokens_out" not in row.costs:
            continue
        label = f"#{row.run_id} {row.name} ({row.dataset})"
        series.setdefault(row.method, []).append((round(row.costs["tokens_out"], 1), _percent(row.final), label))
    return scatter_chart(
        "Quality–cost frontier: nDCG@10 (×100) against output tokens per query",
        series,
        "output tokens per query",
        "nDCG@10",
    )


def _cost(row, name: str, digits: int = 1) -> float | None:
    value = row.costs.get(name)
    return None if value is None else round(value, digits)


def leaderboard_frame(runs: Sequence) -> pd.DataFrame:
    """Every recorded run × dataset in the order given (the leaderboard's: best nDCG@10 first)."""
    data = [
        [
            i,
            row.name,
            row.dataset,
            row.reranker,
            row.method or "–",
            _percent(row.final),
            _percent(row.recall),
            _percent(row.first_stage),
            _percent(row.gain),
            row.queries,
            _cost(row, "tokens_in"),
            _cost(row, "tokens_out"),
            _cost(row, "tokens_reasoning"),
            _cost(row, "calls", 2),
            _cost(row, "rounds", 2),
            _cost(row, "seconds", 3),
            f"{row.window}/{row.step}/{row.top_k}",
            row.job_id,
            row.created_at.isoformat(" ", "seconds"),
        ]
        for i, row in enumerate(runs, 1)
    ]
    return pd.DataFrame(data, columns=LEADERBOARD_COLUMNS)


def reproduce_markdown(reproduce: dict) -> str:
    """What reproduces a run (its reproduce record): reranker and method, window, seed, prompt hash,
    the exclusion rule and library versions."""
    if not reproduce:
        return ""
    reranker = reproduce.get("reranker") or {}
    method = (
        f" · method {md_text(reproduce.get('method'))} ({md_text(reproduce.get('method_source', ''))})"
        if reranker
        else ""
    )
    versions = ", ".join(f"{k} {v}" for k, v in (reproduce.get("versions") or {}).items() if v)
    return (
        f"**Reproduce** — reranker: {md_text(reranker.get('kind', 'none'))} {md_text(reranker.get('model', ''))}{method} · window "
        f"{md_text(reproduce.get('window'))} / step {md_text(reproduce.get('step'))} / top-k {md_text(reproduce.get('top_k'))} · seed "
        f"{md_text(reproduce.get('seed'))} · prompt sha256 {md_code(str(reproduce.get('prompt_sha256', ''))[:16] + '…')}\n\n"
        f"Exclusions: {md_text(reproduce.get('excluded_id_rule', ''))}\n\nVersions: {md_text(versions)}"
    )
