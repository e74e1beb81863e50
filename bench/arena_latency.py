"""What the Arena adds on top of the models it runs: time to the first streamed token and to the
complete result, for two rerankers side by side, against running the same two backends directly.

The two rerankers are real: the tiny local Qwen2 (tests/tiny_model.py, transformers backend on
CPU) and a real local OpenAI-compatible server streaming a scripted answer over SSE
(tests/openai_server.py, `--chunk-delay` seconds between chunks, standing in for token time).
Each is measured three ways, on the same DL19 query and window settings:

- direct: two threads, each `window.rerank` over its own backend with `Backend.stream`, timing
  the first delta and the end — what a script using the library gets;
- library: `reasonrank.arena.run_arena` (lane threads, snapshots, the shared pool);
- click: the Gradio app in this process, driven by gradio_client like a browser click
  (`/arena_run`): the first output whose figures show a streamed token, and the last output.

    overhead = arena time / direct time   (goal <= 1.1x), medians over --repeats runs

    .venv/bin/python bench/arena_latency.py [--repeats 5] [--chunk-delay 0.01] [--top-k 20]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from openai_server import Answer, OpenAIServer  # noqa: E402
from scripted_backend import window_passages  # noqa: E402
from tiny_model import build_tiny_qwen2  # noqa: E402

from reasonrank.arena import RerankerSpec, run_arena  # noqa: E402
from reasonrank.backends.pool import BackendPool  # noqa: E402
from reasonrank.backends import make_backend  # noqa: E402
from reasonrank.backends.base import Backend  # noqa: E402
from reasonrank.types import CandidateList, GenerationParams  # noqa: E402
from reasonrank.window import WindowConfig, rerank, window_spans  # noqa: E402

THOUGHT = " ".join(["passage", "[3]", "answers", "the", "question", "while", "[1]", "only", "mentions", "it"] * 6)


def reverse_responder(messages, request):
    n = len(window_passages(messages))
    return Answer(content="<answer>" + " > ".join(f"[{i}]" for i in range(n, 0, -1)) + "</answer>",
                  reasoning_content=THOUGHT)


#: click path: seconds to the first output of any kind (the board before any token): Gradio's own
#: queue and transport latency, which no change to the Arena can remove.
CLICK_FIRST_OUTPUT: list[float] = []


class _Timed(Backend):
    """The direct baseline's streaming wrapper: records when the first delta arrived."""

    def __init__(self, inner: Backend, started: float, marks: dict) -> None:
        self.inner, self.name, self.tokenizer = inner, inner.name, inner.tokenizer
        self.started, self.marks = started, marks

    def generate(self, prompts, params):
        def sink(kind: str, text: str) -> None:
            if text and "first" not in self.marks:
                self.marks["first"] = time.monotonic() - self.started
        return [self.inner.stream(messages, params, sink) for messages in prompts]


def direct(candidates: CandidateList, backends: list[Backend], config: WindowConfig) -> tuple[float, float]:
    """(first token, complete) of two backends run side by side without the Arena."""
    started = time.monotonic()
    marks = [{} for _ in backends]

    def work(backend: Backend, mark: dict) -> None:
        rerank([candidates], _Timed(backend, started, mark), config)
        mark["end"] = time.monotonic() - started

    threads = [threading.Thread(target=work, args=pair) for pair in zip(backends, marks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return min(m["first"] for m in marks), max(m["end"] for m in marks)


def library(candidates: CandidateList, specs: list[RerankerSpec], config: WindowConfig,
            pool: BackendPool) -> tuple[float, float]:
    started = time.monotonic()
    first = None
    for lanes in run_arena(candidates, specs, config, pool=pool, tick_s=0.05):
        if first is None and any(lane.live_reasoning or lane.live_text for lane in lanes):
            first = time.monotonic() - started
    assert all(lane.status == "done" for lane in lanes), [lane.error for lane in lanes]
    return first, time.monotonic() - started


def click(client, qid: str, config: WindowConfig) -> tuple[float, float]:
    started = time.monotonic()
    job = client.submit("TREC DL19 (bundled)", qid, "", "", "", ["tiny", "endpoint"], config.top_k,
                        config.window, config.step, config.generation.max_new_tokens, api_name="/arena_run")
    first = answered = None
    for output in job:
        answered = answered or time.monotonic() - started
        results = output[1] or {}
        if first is None and any(lane.get("first_delta_s") is not None for lane in results.get("lanes", [])):
            first = time.monotonic() - started
    final = job.outputs()[-1][1]
    assert all(lane["status"] == "done" for lane in final["lanes"]), final
    CLICK_FIRST_OUTPUT.append(answered)
    return first, time.monotonic() - started


def launch_app(model_dir: Path, endpoint_url: str, db_path: Path):
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from gradio_client import Client

    from db.engine import get_engine, init_db
    from db.registry import add_reranker
    from ui import build_app

    engine = get_engine(f"sqlite:///{db_path}")
    init_db(engine)
    add_reranker(engine, "tiny", "transformers", str(model_dir), {"device": "cpu"})
    add_reranker(engine, "endpoint", "openai", "test-model", {"base_url": endpoint_url})
    demo = build_app(engine)
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    return demo, Client(url, verbose=False)


def gradio_floor(repeats: int) -> float:
    """Median click → first output of a trivial streaming endpoint in the same Gradio: what any
    Gradio app pays before it can show anything, whatever its handler does."""
    import gradio as gr
    from gradio_client import Client

    def echo(text: str):
        yield text
        yield text + "."

    with gr.Blocks() as demo:
        box, out, button = gr.Textbox(), gr.Textbox(), gr.Button()
        button.click(echo, box, out, api_name="echo")
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    client = Client(url, verbose=False)
    firsts = []
    try:
        for _ in range(repeats + 2):  # two warm-up clicks
            started = time.monotonic()
            job = client.submit("x", api_name="/echo")
            next(iter(job))
            firsts.append(time.monotonic() - started)
            job.result()
    finally:
        demo.close()
    return statistics.median(firsts[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk-delay", type=float, default=0.01, help="seconds between streamed chunks")
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()

    from ui.arena import SAMPLES, chosen_list, sample_lists

    source = next(iter(SAMPLES))
    qid = sample_lists(source)[0].query.qid
    candidates = chosen_list(source, qid, "", "", "", args.top_k)
    config = WindowConfig(window=10, step=5, top_k=args.top_k,
                          generation=GenerationParams(max_new_tokens=args.max_new_tokens))
    with tempfile.TemporaryDirectory() as tmp, \
            OpenAIServer(responder=reverse_responder, stream_delay_s=args.chunk_delay) as server:
        model_dir = build_tiny_qwen2(Path(tmp) / "tiny")
        specs = [RerankerSpec("tiny", "transformers", str(model_dir), {"device": "cpu"}),
                 RerankerSpec("endpoint", "openai", "test-model", {"base_url": server.base_url})]
        pool = BackendPool()
        backends = [make_backend(spec.backend_config()) for spec in specs]
        demo, client = launch_app(model_dir, server.base_url, Path(tmp) / "bench.db")
        try:
            library(candidates, specs, config, pool)  # warm-up: loads the models of each path
            click(client, qid, config)
            direct(candidates, backends, config)
            CLICK_FIRST_OUTPUT.clear()
            timings: dict[str, list[tuple[float, float]]] = {"direct": [], "library": [], "click": []}
            for _ in range(args.repeats):  # interleaved, so machine load hits every path alike
                timings["direct"].append(direct(candidates, backends, config))
                timings["library"].append(library(candidates, specs, config, pool))
                timings["click"].append(click(client, qid, config))
        finally:
            demo.close()
            pool.close()
    windows = len(window_spans(len(candidates.candidates), 10, 5, args.top_k))
    print(f"DL19 query {qid}, top {args.top_k}, window 10 / step 5 ({windows} windows), tiny Qwen2 "
          f"(CPU, {args.max_new_tokens} new tokens) + OpenAI-compatible server ({args.chunk_delay}s/chunk); "
          f"medians of {args.repeats}")
    base_first = statistics.median(t[0] for t in timings["direct"])
    base_done = statistics.median(t[1] for t in timings["direct"])
    for name, runs in timings.items():
        first = statistics.median(t[0] for t in runs)
        done = statistics.median(t[1] for t in runs)
        print(f"{name:8s} first token {first:6.3f} s ({first / base_first:4.2f}x)   "
              f"complete {done:6.3f} s ({done / base_done:4.2f}x)")
    print(f"click: first output of any kind (Gradio queue + transport) {statistics.median(CLICK_FIRST_OUTPUT):.3f} s")
    floor = gradio_floor(max(args.repeats, 5))
    click_first = statistics.median(t[0] for t in timings["click"])
    print(f"gradio floor: a trivial streaming endpoint's click -> first output {floor:.3f} s; "
          f"click first token less that floor {click_first - floor:.3f} s ({(click_first - floor) / base_first:4.2f}x direct)")


if __name__ == "__main__":
    main()
