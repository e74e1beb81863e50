"""Recorded rerankers (reasonrank.replay) and the Arena's relevance convention, on the bundled
sample: the real RankVicuna-7B recording of TREC DL19 replays to RankLLM's stored run, refuses
lists it was not recorded on, and streams at its recorded pace; DL19 figures use grade >= 2."""

from __future__ import annotations

import json
import shutil
import time

import pytest
import pytrec_eval

from db.seed import SAMPLE
from reasonrank.arena import RerankerSpec, judged_metrics, run_arena
from reasonrank.arena_figures import rel_level_for
from reasonrank.io import read_qrels, read_rank_llm_json, read_trec_run
from reasonrank.replay import CALLS_FILE, find_recordings, load_recording, replay_ranking
from reasonrank.types import CandidateList
from reasonrank.window import WindowConfig

RECORDING = SAMPLE / "recorded" / "rankvicuna7b-dl19"
TOP20 = WindowConfig(window=20, step=10, top_k=20)


@pytest.fixture(scope="module")
def dl19_sample() -> list[CandidateList]:
    root = SAMPLE / "trec-dl19"
    return read_rank_llm_json(root / "bm25_top100_with_text.json", read_qrels(root / "qrels.txt"), "trec-dl19")


def top(cl: CandidateList, k: int) -> CandidateList:
    return CandidateList(cl.query, cl.candidates[:k], qrels=cl.qrels, dataset=cl.dataset)


def recorded(pace: str = "instant", path=RECORDING) -> RerankerSpec:
    return RerankerSpec("RankVicuna-7B (recorded)", "recorded", str(path), {"pace": pace})


def test_recording_replays_rank_llms_stored_run(dl19_sample):
    recording = load_recording(RECORDING)
    assert find_recordings(SAMPLE / "recorded") == [RECORDING]
    assert recording.dataset == "trec-dl19" and len(recording.calls) == 43 and not recording.has_reasoning
    assert "2023-09-13" in recording.provenance() and "castorini/rank_llm @ a372617" in recording.provenance()
    stored = read_trec_run(SAMPLE / "trec-dl19" / "rankvicuna7b_rerank_top20.run")
    for cl in dl19_sample:
        replayed = replay_ranking(recording.calls[cl.query.qid], cl.docids[:20])
        assert replayed == [docid for docid, _ in stored[cl.query.qid]][:20]


def test_recorded_lane_shows_the_recorded_answer_and_its_provenance(dl19_sample):
    cl = top(dl19_sample[0], 20)
    *_, (lane,) = run_arena(cl, [recorded("recorded")], TOP20, tick_s=0.01)
    call = load_recording(RECORDING).calls[cl.query.qid][0]
    assert lane.status == "done", lane.error
    assert lane.ranking == call.docids_after and lane.calls == [call]
    assert lane.live_text == call.raw_output and lane.live_text.startswith("[")
    assert "recorded" in lane.note and "2023-09-13" in lane.note and "writes no reasoning" in lane.note
    assert "no timings were recorded, so it replays at once" in lane.note
    assert lane.metrics == judged_metrics(call.docids_after, cl)


def test_recording_is_refused_on_lists_it_was_not_recorded_on(dl19_sample):
    *_, (short,) = run_arena(top(dl19_sample[0], 10), [recorded()], WindowConfig(window=10, step=5, top_k=10))
    assert short.status == "error" and "show at least 20 passages" in short.error
    novel = read_rank_llm_json(SAMPLE / "noveleval" / "candidates_with_text.json", dataset="noveleval")[0]
    *_, (other,) = run_arena(novel, [recorded()], TOP20)
    assert other.status == "error" and "recorded on trec-dl19, not on noveleval" in other.error
    reordered = dl19_sample[0]
    swapped = CandidateList(
        reordered.query, reordered.candidates[1::-1] + reordered.candidates[2:20], dataset="trec-dl19"
    )
    *_, (moved,) = run_arena(swapped, [recorded()], TOP20)
    assert moved.status == "error" and "differ from the passages the recorded model saw" in moved.error
    *_, (bad,) = run_arena(top(reordered, 20), [recorded(pace="fast")], TOP20)
    assert bad.status == "error" and "pace must be one of recorded, instant" in bad.error


def test_recorded_pace_spreads_the_text_over_the_recorded_seconds(dl19_sample, tmp_path):
    """A copy of the recording with a timing set (the real one has none) streams in steps."""
    timed = tmp_path / "timed"
    shutil.copytree(RECORDING, timed)
    lines = (timed / CALLS_FILE).read_text().splitlines()
    calls = [json.loads(line) for line in lines]
    for call in calls:
        call["seconds"] = 0.6
    (timed / CALLS_FILE).write_text("".join(json.dumps(call) + "\n" for call in calls))
    cl = top(dl19_sample[0], 20)
    started = time.monotonic()
    snapshots = list(run_arena(cl, [recorded("recorded", timed)], TOP20, tick_s=0.01))
    assert time.monotonic() - started >= 0.6
    partial = [s[0].live_text for s in snapshots if s[0].status == "running" and s[0].live_text]
    full = snapshots[-1][0].live_text
    assert len(partial) >= 3 and all(full.startswith(text) for text in partial) and partial[0] != full
    started = time.monotonic()
    *_, (instant,) = run_arena(cl, [recorded("instant", timed)], TOP20, tick_s=0.01)
    assert instant.live_text == full and time.monotonic() - started < 0.5


def test_dl19_counts_grade_two_as_relevant_like_eval(dl19_sample):
    assert rel_level_for("trec-dl19") == 2 and rel_level_for("noveleval") == rel_level_for(None) == 1
    cl = next(c for c in dl19_sample if any(c.qrels.get(d) == 1 for d in c.docids[:10]))
    ranking = cl.docids
    evaluator = pytrec_eval.RelevanceEvaluator({"q": cl.qrels}, {"recall.10"}, relevance_level=2)
    expected = evaluator.evaluate({"q": {d: float(len(ranking) - i) for i, d in enumerate(ranking)}})["q"]["recall_10"]
    figures = judged_metrics(ranking, cl)
    assert figures["recall@10"] == pytest.approx(expected, abs=1e-12)
    loose = judged_metrics(ranking, CandidateList(cl.query, cl.candidates, qrels=cl.qrels, dataset="noveleval"))
    assert loose["recall@10"] != figures["recall@10"]  # grade-1 passages count only under the loose rule
