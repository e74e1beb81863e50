"""How much wall time the sliding-window orchestration adds on top of the model, and what
cross-query batching saves.

100 queries x top-100 go through `window.rerank` with the deterministic ScriptedBackend, which
sleeps a fixed time per generate call (a stand-in for the model). Everything that is not
backend time — passage preparation, prompt building, parsing, reordering, call records — is
orchestration:

    overhead = (wall - sum of backend call times) / sum of backend call times

The comparison runs the same lists one query at a time (one generate call per window, no
cross-query batching, 9 x queries calls) and measures it the same way on the first
`--baseline-queries` queries (default 2: at 5 s a call each query sleeps 45 s).

The default latency, 5 s per batched call, is a conservative stand-in for a real model: one
window position for 100 queries is 100 prompts of ~5.7k tokens with ~750 reasoning tokens each
(docs/method.md §2), which the reference's logged 4-GPU vLLM runs served in ~30 s. A last line times the library calls
that make up the orchestration (passage preparation, prompt building, parsing) separately on the
same inputs, so a regression can be attributed.

    .venv/bin/python bench/rerank_overhead.py [--latency 5] [--baseline-queries 2]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from scripted_backend import ScriptedBackend  # noqa: E402

from reasonrank import parse, prompts  # noqa: E402
from reasonrank.types import CandidateList, Passage, Query, RankResult  # noqa: E402
from reasonrank.window import WindowConfig, rerank, window_spans  # noqa: E402

FILLER = (
    "the passage discusses the question from one angle with details that a reranker must weigh "
    "against the other candidates before deciding where it belongs in the final ordering"
).split()


def make_lists(queries: int, candidates: int, words: int, seed: int) -> list[CandidateList]:
    """Random first-stage orders; each passage states its relevance and carries filler words."""
    rng = random.Random(seed)
    lists = []
    for q in range(queries):
        scores = list(range(candidates))
        rng.shuffle(scores)
        passages = [
            Passage(
                f"q{q}-d{k}",
                f"passage {k} relevance {s} " + " ".join(rng.choices(FILLER, k=words)),
            )
            for k, s in enumerate(scores)
        ]
        lists.append(CandidateList(Query(f"q{q}", f"benchmark query number {q}"), passages))
    return lists


@dataclass
class Measurement:
    results: list[RankResult]
    calls: int
    wall: float  # seconds around all rerank() calls
    backend: float  # seconds inside backend.generate, summed
    orchestration_cpu: float  # process CPU seconds outside backend.generate

    def report(self, label: str) -> str:
        orchestration = self.wall - self.backend
        windows = sum(len(r.calls) for r in self.results)
        return (
            f"{label}: {self.calls} backend calls, wall {self.wall:.2f} s, backend "
            f"{self.backend:.2f} s, orchestration {orchestration * 1e3:.0f} ms = "
            f"{100 * orchestration / self.backend:.2f} % of backend time "
            f"({1e6 * orchestration / windows:.0f} us per window; CPU "
            f"{self.orchestration_cpu * 1e3:.0f} ms = "
            f"{100 * self.orchestration_cpu / self.backend:.2f} %)"
        )


def measure(batches: list[list[CandidateList]], latency: float, config: WindowConfig) -> Measurement:
    """Rerank each batch with one rerank() call and one shared backend."""
    backend = ScriptedBackend(latency_s=latency)
    results: list[RankResult] = []
    began, began_cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        results.extend(rerank(batch, backend, config))
    wall, cpu = time.perf_counter() - began, time.process_time() - began_cpu
    return Measurement(
        results,
        len(backend.call_seconds),
        wall,
        sum(backend.call_seconds),
        cpu - sum(backend.call_cpu_seconds),
    )


def component_costs(
    lists: list[CandidateList], results: list[RankResult], config: WindowConfig
) -> dict[str, tuple[int, float]]:
    """Seconds spent by each library call rerank() makes, replayed on the same inputs."""
    began = time.perf_counter()
    prepared = [
        [prompts.prepare_passage(p, None, config.max_passage_tokens) for p in cl.candidates[: config.top_k]]
        for cl in lists
    ]
    costs = {"prepare_passage": (sum(map(len, prepared)), time.perf_counter() - began)}

    windows = [
        (prompts.prepare_query(cl.query.text), texts[start:end])
        for cl, texts in zip(lists, prepared)
        for start, end in window_spans(len(cl.candidates), config.window, config.step, config.top_k)
    ]
    began = time.perf_counter()
    for query, texts in windows:
        prompts.build_messages(query, texts)
    costs["build_messages"] = (len(windows), time.perf_counter() - began)

    outputs = [(c.raw_output, c.end - c.start) for r in results for c in r.calls]
    began = time.perf_counter()
    for text, size in outputs:
        parse.parse_ranking(text, size)
    costs["parse_ranking"] = (len(outputs), time.perf_counter() - began)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--words", type=int, default=60, help="filler words per passage")
    parser.add_argument("--latency", type=float, default=5.0, help="seconds per generate call")
    parser.add_argument(
        "--baseline-queries",
        type=int,
        default=2,
        help="queries for the one-call-per-window run (it sleeps 9 x latency each)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    config = WindowConfig()
    lists = make_lists(args.queries, args.candidates, args.words, args.seed)
    print(
        f"{args.queries} queries x top-{args.candidates}, window {config.window} / step "
        f"{config.step}, {args.words + 4}-word passages, {args.latency} s per backend call"
    )

    batched = measure([lists], args.latency, config)
    print(batched.report("batched across queries "))

    subset = lists[: args.baseline_queries]
    single = measure([[cl] for cl in subset], args.latency, config)
    print(single.report("one call per window    "))
    if [r.ranking for r in single.results] != [r.ranking for r in batched.results[: len(subset)]]:
        raise SystemExit("batched and one-call-per-window rankings disagree")
    print(
        f"wall per query: batched {batched.wall / len(lists):.3f} s, "
        f"one call per window {single.wall / len(subset):.3f} s"
    )
    costs = component_costs(lists, batched.results, config)
    parts = ", ".join(f"{name} {n}x {1e3 * sec:.0f} ms" for name, (n, sec) in costs.items())
    print(f"orchestration parts, timed separately on the same inputs: {parts}")


if __name__ == "__main__":
    main()
