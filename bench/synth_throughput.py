"""Teacher-synthesis throughput: labels per second over the ideal, at 1, 8 and 64 requests in flight.

The teacher is tests/openai_server.py in its own process, answering every request after a fixed
latency, so the ideal rate is in-flight ÷ latency; whatever falls short of it is the pipeline's
overhead (prompt building, HTTP client, parsing, one committed SQLite transaction per label).
Lists are real TREC DL19 passages, 20 per list; the store is a fresh SQLite file per setting.
Goal: ≥ 0.9 of the ideal at 64 in flight.

    .venv/bin/python bench/synth_throughput.py [--items 500] [--latency 1.0] [--in-flight 1 8 64]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
DL19 = REPO / "tests" / "data" / "trec-dl19" / "bm25_top100_with_text.json"


def _serve(latency: float, port_out) -> None:
    """The teacher: answers `[2] > [1]` with a short reasoning after `latency` seconds (the test
    server, which like real servers has Nagle's algorithm off and a deep listen backlog)."""
    from openai_server import Answer, OpenAIServer

    server = OpenAIServer(
        lambda messages, request: Answer(content="[2] > [1]", reasoning_content="Passage 2 fits."), latency_s=latency
    ).start()
    port_out.send(server.port)
    while True:
        time.sleep(3600)


def _lists(count: int, size: int = 20):
    from reasonrank.io import read_rank_llm_json
    from reasonrank.types import CandidateList, Query

    passages = [p for cl in read_rank_llm_json(DL19) for p in cl.candidates]
    unique = list({p.docid: p for p in passages}.values())
    return [
        CandidateList(
            Query(f"b{i}", f"benchmark question {i}"),
            [unique[(i * size + j) % len(unique)] for j in range(size)],
            dataset="bench",
        )
        for i in range(count)
    ]


def run_once(base_url: str, in_flight: int, lists, store: Path) -> float:
    """Seconds to label every list with `in_flight` requests at once (store set up beforehand)."""
    from db.importer import import_batch
    from reasonrank.cli.common import open_store
    from reasonrank.cli.synth import SynthConfig, run_synth
    from reasonrank.imports import ImportBatch

    engine = open_store(f"sqlite:///{store}")
    import_batch(
        engine, ImportBatch(labels=[], candidates=lists, qrels={}, dataset="bench", kind="candidates", issues=[])
    )
    config = SynthConfig(
        dataset="bench", base_url=base_url, model="test-model", max_in_flight=in_flight, timeout_s=60, max_retries=0
    )
    started = time.perf_counter()
    report = run_synth(config, engine)
    elapsed = time.perf_counter() - started
    engine.dispose()
    if report.tally is None or report.tally.outcomes["failed"] or report.tally.done != len(lists):
        raise SystemExit(f"run at {in_flight} in flight did not label every list: {report.summary()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--latency", type=float, default=1.0, help="teacher seconds per request")
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 8, 64])
    args = parser.parse_args()

    # what a run imports lazily, imported once here instead of inside the first timed run
    import openai.types.chat  # noqa: F401

    import db.synth  # noqa: F401
    import reasonrank.backends.openai  # noqa: F401

    receive, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(args.latency, send), daemon=True)
    server.start()
    base_url = f"http://127.0.0.1:{receive.recv()}/v1"
    lists = _lists(args.items)
    print(f"{args.items} lists of 20 DL19 passages, teacher latency {args.latency:g}s per request")
    print(f"{'in flight':>9}  {'seconds':>8}  {'items/s':>8}  {'ideal/s':>8}  {'ratio':>6}")
    with tempfile.TemporaryDirectory() as folder:
        for run, in_flight in enumerate(args.in_flight):
            seconds = run_once(base_url, in_flight, lists, Path(folder) / f"bench-{run}.db")
            rate, ideal = args.items / seconds, in_flight / args.latency
            print(f"{in_flight:>9}  {seconds:>8.2f}  {rate:>8.2f}  {ideal:>8.2f}  {rate / ideal:>6.3f}")
    server.terminate()


if __name__ == "__main__":
    main()
