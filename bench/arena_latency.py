"""What the Arena adds on top of the models it runs: time to each reranker's first streamed token
and to the complete result, two rerankers side by side, against running the same two backends
directly.

The two rerankers are real: the tiny local Qwen2 (tests/tiny_model.py, transformers backend on
CPU) and a real local OpenAI-compatible server streaming a scripted answer over SSE
(tests/openai_server.py: `--latency` seconds before each answer, standing in for a served model's
time to first token, then `--chunk-delay` seconds between chunks). Four paths, on the same DL19
query and window settings:

- direct: two threads, each `window.rerank` over its own backend with `Backend.stream`, timing
  each backend's first delta and the end — what a script using the library gets;
- library: `reasonrank.arena.run_arena` (lane threads, snapshots, the shared pool);
- click: the Gradio app in this process, in headless Chromium: a real click on Run, timed in the
  page from the click event to the DOM first showing streamed text in each column, and to the
  status line saying "Done" (a MutationObserver stamps them with `performance.now()`). Chromium
  gets a core of its own (`--shared-cores` to not), as a user's browser runs on the user's machine;
- api: the same app through `gradio_client` on `/arena_run` (what a script calling the running
  app gets): the first output whose figures show each lane's first token, and the last output.

    overhead = arena time / direct time   (goal <= 1.1x), medians over --repeats runs

    .venv/bin/python bench/arena_latency.py [--repeats 5] [--latency 0] [--chunk-delay 0.01] [--top-k 20]
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
from reasonrank.backends import make_backend  # noqa: E402
from reasonrank.backends.base import Backend  # noqa: E402
from reasonrank.backends.pool import BackendPool  # noqa: E402
from reasonrank.types import CandidateList, GenerationParams  # noqa: E402
from reasonrank.window import WindowConfig, rerank, window_spans  # noqa: E402

THOUGHT = " ".join(["passage", "[3]", "answers", "the", "question", "while", "[1]", "only", "mentions", "it"] * 6)


def reverse_responder(messages, request):
    n = len(window_passages(messages))
    return Answer(
        content="<answer>" + " > ".join(f"[{i}]" for i in range(n, 0, -1)) + "</answer>", reasoning_content=THOUGHT
    )


LANES = ("tiny", "endpoint")
#: one run's timings: {lane: seconds to its first streamed token}, seconds to the complete result
Timing = tuple[dict[str, float], float]

#: In the page: stamps the click on Run, the first DOM state of this run that shows streamed text
#: in each column, and the status line turning to "Done" after this run's "Running".
ARM_JS = """() => {
  const board = document.querySelector('#arena-board'), message = document.querySelector('#arena-message');
  const t = window.__arena = {click: null, first: {}, done: null, running: false};
  document.querySelector('#arena-run').addEventListener('click', () => { t.click = performance.now(); },
                                                         {capture: true, once: true});
  const seen = () => {
    if (t.click === null) return;
    const now = performance.now(), status = message.textContent;
    t.running = t.running || status.includes('Running');
    if (!t.running) return;
    for (const lane of board.querySelectorAll('.ar-lane')) {
      const live = lane.querySelector('.ar-live'), text = live ? live.textContent.trim() : '';
      if (!(lane.dataset.lane in t.first) && text && text !== '\u2026') t.first[lane.dataset.lane] = now;
    }
    if (status.includes('Done')) { t.done = now; observer.disconnect(); }
  };
  const observer = new MutationObserver(seen);
  observer.observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


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


def direct(candidates: CandidateList, backends: list[Backend], config: WindowConfig) -> Timing:
    """Both backends side by side without the Arena."""
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
    return {name: mark["first"] for name, mark in zip(LANES, marks)}, max(m["end"] for m in marks)


def library(candidates: CandidateList, specs: list[RerankerSpec], config: WindowConfig, pool: BackendPool) -> Timing:
    started = time.monotonic()
    first: dict[str, float] = {}
    for lanes in run_arena(candidates, specs, config, pool=pool, tick_s=0.05):
        for lane in lanes:
            if lane.name not in first and (lane.live_reasoning or lane.live_text):
                first[lane.name] = time.monotonic() - started
    assert all(lane.status == "done" for lane in lanes), [lane.error for lane in lanes]
    return first, time.monotonic() - started


def click(page) -> Timing:
    """One real click on Run in Chromium."""
    page.evaluate(ARM_JS)
    page.locator("#arena-run").click()
    page.wait_for_function("() => window.__arena.done !== null", timeout=120_000)
    marks = page.evaluate("() => window.__arena")
    assert "Failed" not in page.locator("#arena-message").inner_text()
    return (
        {name: (at - marks["click"]) / 1000 for name, at in marks["first"].items()},
        (marks["done"] - marks["click"]) / 1000,
    )


def api(client, qid: str, config: WindowConfig) -> Timing:
    started = time.monotonic()
    job = client.submit(
        "TREC DL19 (bundled)",
        qid,
        "",
        "",
        "",
        list(LANES),
        config.top_k,
        config.window,
        config.step,
        config.generation.max_new_tokens,
        api_name="/arena_run",
    )
    first: dict[str, float] = {}
    for output in job:
        for lane in (output[1] or {}).get("lanes", []):
            if lane["name"] not in first and lane.get("first_delta_s") is not None:
                first[lane["name"]] = time.monotonic() - started
    final = job.outputs()[-1][1]
    assert all(lane["status"] == "done" for lane in final["lanes"]), final
    return first, time.monotonic() - started


def launch_app(model_dir: Path, endpoint_url: str, db_path: Path):
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from gradio_client import Client

    from db.engine import get_engine, init_db
    from db.registry import add_reranker
    from ui import LAUNCH_OPTIONS, build_app

    engine = get_engine(f"sqlite:///{db_path}")
    init_db(engine)
    add_reranker(engine, "tiny", "transformers", str(model_dir), {"device": "cpu"})
    add_reranker(engine, "endpoint", "openai", "test-model", {"base_url": endpoint_url})
    demo = build_app(engine)
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, **LAUNCH_OPTIONS)
    return demo, url, Client(url, verbose=False)


def open_page(browser, url: str, config: WindowConfig):
    """The Arena in a Chromium page with both rerankers and the window settings filled in."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(url)
    page.locator("#arena-run").wait_for(timeout=60_000)
    picker = page.locator("#arena-rerankers input")
    for name in ("tiny", "endpoint"):
        picker.click()
        picker.fill(name)
        picker.press("Enter")
    for elem_id, value in (
        ("arena-topk", config.top_k),
        ("arena-window", config.window),
        ("arena-step", config.step),
        ("arena-max-tokens", config.generation.max_new_tokens),
    ):
        page.locator(f"#{elem_id} input").fill(str(value))
    return page


ECHO_JS = """() => {
  const t = window.__echo = {click: null, first: null};
  document.querySelector('#echo-go').addEventListener('click', () => { t.click = performance.now(); },
                                                      {capture: true, once: true});
  const observer = new MutationObserver(() => {
    if (t.click !== null && document.querySelector('#echo-out').textContent.trim().endsWith('!')) {
      t.first = performance.now(); observer.disconnect(); }
  });
  observer.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def gradio_floors(browser, repeats: int) -> tuple[float, float]:
    """Medians of (browser click, gradio_client submit) → first output of a trivial streaming
    endpoint: what Gradio and that client library cost any app, whatever its handler does."""
    import gradio as gr
    from gradio_client import Client

    from ui import LAUNCH_OPTIONS

    def echo(text: str):
        yield text + "!"
        yield text + "."

    with gr.Blocks() as demo:
        box = gr.Textbox(elem_id="echo-in")
        out = gr.HTML(elem_id="echo-out")
        button = gr.Button(elem_id="echo-go")
        button.click(echo, box, out, api_name="echo")
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, **LAUNCH_OPTIONS)
    clicks, submits = [], []
    try:
        page = browser.new_page()
        page.goto(url)
        client = Client(url, verbose=False)
        for attempt in range(repeats + 2):  # two warm-ups
            page.locator("#echo-in textarea").fill(f"x{attempt}")
            page.evaluate(ECHO_JS)
            page.locator("#echo-go").click()
            page.wait_for_function("() => window.__echo.first !== null")
            page.wait_for_function(f"() => document.querySelector('#echo-out').textContent.trim() === 'x{attempt}.'")
            marks = page.evaluate("() => window.__echo")
            clicks.append((marks["first"] - marks["click"]) / 1000)
            started = time.monotonic()
            job = client.submit("x", api_name="/echo")
            next(iter(job))
            submits.append(time.monotonic() - started)
            job.result()
        page.close()
    finally:
        demo.close()
    return statistics.median(clicks[2:]), statistics.median(submits[2:])


def measure(browser, candidates: CandidateList, qid: str, config: WindowConfig, args) -> dict[str, list[Timing]]:
    """Every path's timings, interleaved run by run so machine load hits all alike."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        OpenAIServer(responder=reverse_responder, latency_s=args.latency, stream_delay_s=args.chunk_delay) as server,
    ):
        model_dir = build_tiny_qwen2(Path(tmp) / "tiny")
        specs = [
            RerankerSpec("tiny", "transformers", str(model_dir), {"device": "cpu"}),
            RerankerSpec("endpoint", "openai", "test-model", {"base_url": server.base_url}),
        ]
        pool = BackendPool()
        backends = [make_backend(spec.backend_config()) for spec in specs]
        demo, url, client = launch_app(model_dir, server.base_url, Path(tmp) / "bench.db")
        try:
            page = open_page(browser, url, config)
            library(candidates, specs, config, pool)  # warm-up: loads the models of each path
            click(page)
            api(client, qid, config)
            direct(candidates, backends, config)
            timings: dict[str, list[Timing]] = {"direct": [], "library": [], "click": [], "api": []}
            for _ in range(args.repeats):
                timings["direct"].append(direct(candidates, backends, config))
                timings["library"].append(library(candidates, specs, config, pool))
                timings["click"].append(click(page))
                timings["api"].append(api(client, qid, config))
        finally:
            demo.close()
            pool.close()
    return timings


def report(timings: dict[str, list[Timing]]) -> list[str]:
    """One line per path: each lane's median first token and the median complete time, with their
    ratio to the direct path and what the path adds in milliseconds."""

    def first(path: str, lane: str) -> float:
        return statistics.median(run[0][lane] for run in timings[path])

    def done(path: str) -> float:
        return statistics.median(run[1] for run in timings[path])

    lines = []
    for path in timings:
        cells = [
            f"{lane} first token {first(path, lane):6.3f} s ({first(path, lane) / first('direct', lane):4.2f}x, "
            f"{(first(path, lane) - first('direct', lane)) * 1000:+4.0f} ms)"
            for lane in LANES
        ]
        lines.append(
            f"{path:8s} " + "   ".join(cells) + f"   complete {done(path):6.3f} s ({done(path) / done('direct'):4.2f}x)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="the endpoint's seconds before each answer (a served model's time to first token)",
    )
    parser.add_argument(
        "--chunk-delay", type=float, default=0.01, help="the endpoint's seconds between streamed chunks"
    )
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument(
        "--shared-cores",
        action="store_true",
        help="let Chromium share the cores of the server and models (by default it gets one core "
        "of its own, as a user's browser runs on the user's machine)",
    )
    args = parser.parse_args()

    from browser_fixtures import ARGS, CHROMIUM
    from playwright.sync_api import sync_playwright

    from ui.arena_queries import SAMPLES, chosen_list, sample_lists

    source = next(iter(SAMPLES))
    qid = sample_lists(source)[0].query.qid
    candidates = chosen_list(source, qid, "", "", "", args.top_k)
    config = WindowConfig(
        window=10, step=5, top_k=args.top_k, generation=GenerationParams(max_new_tokens=args.max_new_tokens)
    )
    cores = sorted(os.sched_getaffinity(0))
    split = not args.shared_cores and len(cores) >= 2
    if split:  # Chromium (started now) inherits the last core; this process keeps the others
        os.sched_setaffinity(0, {cores[-1]})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        if split:
            os.sched_setaffinity(0, set(cores[:-1]))
        import torch

        torch.set_num_threads(len(os.sched_getaffinity(0)))  # the model's threads: this process's cores
        try:
            timings = measure(browser, candidates, qid, config, args)
            floors = gradio_floors(browser, args.repeats)
        finally:
            browser.close()
    windows = len(window_spans(len(candidates.candidates), config.window, config.step, config.top_k))
    print(
        f"DL19 query {qid}, top {config.top_k}, window {config.window} / step {config.step} ({windows} windows); tiny Qwen2 "
        f"(CPU, {args.max_new_tokens} new tokens) and an OpenAI-compatible server ({args.latency}s to answer, "
        f"{args.chunk_delay}s/chunk); medians of {args.repeats}"
    )
    print(
        f"cores: Chromium on {cores[-1]}, app and models on {cores[:-1]}"
        if split
        else f"cores: Chromium, app and models share {cores}"
    )
    for line in report(timings):
        print(line)
    print(
        f"Gradio alone, a trivial streaming endpoint, to its first output: a click {floors[0] * 1000:.0f} ms, "
        f"a gradio_client submit {floors[1] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
