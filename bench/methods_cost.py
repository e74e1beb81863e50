"""What each reranking method costs in model calls, and what our orchestration costs around them.

DL19's 43 queries x BM25 top-100 (tests/data) go through `window.rerank` with `--method NAME` at
each method's defaults. The backend is a deterministic oracle that answers in the method's own
format from the relevance number appended to every passage (tests/methods_backend.py,
tests/scripted_backend.py), so the figures are the method's call structure, not a model's
quality:

- prompts / query: model calls made for one query;
- generate calls: batched backend calls for all 43 queries (cross-query batching);
- sequential rounds: the longest chain of calls that must wait for each other;
- prompt words / query: whitespace words of the prompts (a stand-in for input tokens; a real
  tokenizer gives more);
- orchestration ms: wall time outside the backend (prompt building, parsing, sorting, records);
- share @ L s: orchestration / engine time, with the engine assumed to serve up to 100 prompts
  in L seconds (default 5, see bench/rerank_overhead.py for why): a call of p prompts counts
  ceil(p / 100) x L. Methods whose calls hold thousands of short prompts (Rank1, GroupRank) are
  only roughly served by this model of the engine.

Output tokens depend on the model and are not measured here.

    .venv/bin/python bench/methods_cost.py [--latency 5] [--queries 43]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from methods_backend import (  # noqa: E402
    GroupScorer,
    ListwiseOracle,
    PointwiseJudge,
    SetwiseChooser,
    rank_k_shown,
    rearank_shown,
)
from scripted_backend import ScriptedBackend  # noqa: E402

from reasonrank.io import read_rank_llm_json  # noqa: E402
from reasonrank.methods import METHOD_NAMES, with_defaults  # noqa: E402
from reasonrank.methods.rank_r1 import PROMPT_V01, PROMPT_V02  # noqa: E402
from reasonrank.types import CandidateList, Passage  # noqa: E402
from reasonrank.window import WindowConfig, rerank  # noqa: E402


def backend_for(name: str):
    return {
        "reasonrank": ScriptedBackend,
        "reasonrank-qwen3": ScriptedBackend,
        "rearank": lambda: ListwiseOracle(rearank_shown),
        "rank-k": lambda: ListwiseOracle(rank_k_shown),
        "rank1": PointwiseJudge,
        "rank-r1": lambda: SetwiseChooser(PROMPT_V01),
        "rank-r1-v0.2": lambda: SetwiseChooser(PROMPT_V02),
        "grouprank": GroupScorer,
    }[name]()


class Timed:
    """Wraps a backend: counts calls and prompts and sums the time spent inside it."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.tokenizer = inner, inner.name, inner.tokenizer
        self.calls = self.prompts = self.words = 0
        self.seconds = 0.0
        self.sizes: list[int] = []

    def _count(self, prompts, run):
        began = time.perf_counter()
        out = run()
        self.seconds += time.perf_counter() - began
        self.calls += 1
        self.prompts += len(prompts)
        self.sizes.append(len(prompts))
        return out

    def generate(self, prompts, params):
        self.words += sum(len(m["content"].split()) for p in prompts for m in p)
        return self._count(prompts, lambda: self.inner.generate(prompts, params))

    def complete(self, texts, params):
        self.words += sum(len(t.split()) for t in texts)
        return self._count(texts, lambda: self.inner.complete(texts, params))


def load(queries: int) -> list[CandidateList]:
    lists = read_rank_llm_json(REPO / "tests" / "data" / "trec-dl19" / "bm25_top100_with_text.json")[:queries]
    out = []
    for cl in lists:
        grades = cl.qrels or {}
        # the judged grade (0-3) times 3 plus a small first-stage prior: ties broken the same way
        cands = [
            Passage(p.docid, f"{p.text} relevance {grades.get(p.docid, 0) * 3 + (1 if k < 10 else 0)}")
            for k, p in enumerate(cl.candidates)
        ]
        out.append(CandidateList(cl.query, cands, cl.qrels))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=5.0, help="assumed seconds per batched call")
    parser.add_argument("--queries", type=int, default=43)
    args = parser.parse_args()
    from reasonrank.io import read_qrels

    qrels = read_qrels(REPO / "tests" / "data" / "trec-dl19" / "qrels.txt")
    lists = [CandidateList(cl.query, cl.candidates, qrels.get(cl.query.qid)) for cl in load(args.queries)]
    n = len(lists)
    header = (
        f"{'method':<17}{'prompts/q':>10}{'generate':>10}{'rounds':>8}{'words/q':>10}"
        f"{'orch ms':>10}{f'share@{args.latency:g}s':>12}"
    )
    print(f"DL19, {n} queries x top-100, oracle backends (call structure only)")
    print(header)
    print("-" * len(header))
    for name in METHOD_NAMES:
        backend = Timed(backend_for(name))
        config = with_defaults(name, WindowConfig())
        began = time.perf_counter()
        results = rerank(lists, backend, config)
        wall = time.perf_counter() - began
        orchestration = wall - backend.seconds
        rounds = max(max((c.position for c in r.calls), default=-1) + 1 for r in results)
        if name in ("reasonrank", "reasonrank-qwen3", "rearank", "rank-k"):
            rounds = backend.calls  # one window position per call
        elif name == "grouprank":
            rounds = 1
        engine = sum(-(-size // 100) for size in backend.sizes) * args.latency
        share = orchestration / engine if engine else 0.0
        print(
            f"{name:<17}{backend.prompts / n:>10.1f}{backend.calls:>10}{rounds:>8}{backend.words / n:>10.0f}"
            f"{orchestration * 1000:>10.0f}{share:>12.3%}"
        )


if __name__ == "__main__":
    main()
