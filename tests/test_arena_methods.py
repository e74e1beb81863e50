"""Methods in the Arena (reasonrank.arena with_method / lane_config, ui.render_arena's method views):
the tiny local transformers model runs Rank1 (pointwise, raw text through the streaming wrapper's
`complete`) and Rank-R1 (setwise) side by side on a real DL19 query."""

from __future__ import annotations

import pytest

from reasonrank.arena import RerankerSpec, run_arena, with_method
from reasonrank.arena_specs import lane_config
from reasonrank.backends.pool import BackendPool
from reasonrank.io import InputError
from reasonrank.methods.rank_r1 import heap_sort
from reasonrank.types import CandidateList, GenerationParams
from reasonrank.window import WindowConfig
from ui.render_arena import board_html, inspector_html

TOP_K = 6
CONFIG = WindowConfig(window=6, step=3, top_k=TOP_K, generation=GenerationParams(max_new_tokens=8))


@pytest.fixture(scope="module")
def query(dl19) -> CandidateList:
    chosen = next(cl for cl in dl19 if any(cl.qrels.get(d, 0) > 0 for d in cl.docids[:TOP_K]))
    return CandidateList(chosen.query, chosen.candidates[:TOP_K], chosen.qrels, dataset="trec-dl19")


def replayed_sort(docids: list[str], calls) -> list[str]:
    """Heapsort over `docids` sent the winners the calls recorded; checks each call showed the
    comparison the sort asked for, and that every call was used."""
    sort, used = heap_sort(len(docids), 19, 10), 0
    try:
        pending = next(sort)
        while True:
            call = calls[used]
            shown = [docids[i] for i in pending]
            assert sorted(call.docids_before) == sorted(shown)
            used += 1
            pending = sort.send(shown.index(call.docids_after[0]))
    except StopIteration as done:
        assert used == len(calls)
        return [docids[i] for i in done.value]


def test_lane_config_takes_the_method_defaults_under_the_arena_form():
    own = lane_config(CONFIG, "rank-r1")
    assert (own.method, own.num_child, own.sort_k, own.max_query_tokens) == ("rank-r1", 19, 10, 32)
    assert (own.top_k, own.window, own.step, own.generation.max_new_tokens) == (TOP_K, 6, 3, 8)
    sampled = lane_config(CONFIG, "reasonrank-qwen3").generation
    assert (sampled.temperature, sampled.top_p, sampled.top_k) == (0.6, 0.95, 20)
    assert lane_config(CONFIG, "") is CONFIG


def test_with_method_names_the_lane_and_refuses_what_cannot_run():
    spec = RerankerSpec("tiny", "transformers", "m", {"device": "cpu"})
    lane = with_method(spec, "rank1")
    assert (lane.name, lane.method, lane.model, dict(lane.options)) == ("tiny · rank1", "rank1", "m", {"device": "cpu"})
    with pytest.raises(InputError, match="unknown method 'rank9'"):
        with_method(spec, "rank9")
    with pytest.raises(InputError, match="has no model"):
        with_method(RerankerSpec("BM25", "bm25"), "rank1")


def test_tiny_model_runs_pointwise_and_setwise_lanes_side_by_side(query, tiny_model_dir):
    spec = RerankerSpec("tiny", "transformers", str(tiny_model_dir), {"device": "cpu"})
    specs = [with_method(spec, "rank1"), with_method(spec, "rank-r1")]
    pool = BackendPool()
    snapshots = list(run_arena(query, specs, CONFIG, pool=pool, tick_s=0.01))
    pool.close()
    rank1, setwise = snapshots[-1]
    assert (rank1.status, setwise.status) == ("done", "done"), (rank1.error, setwise.error)
    assert (rank1.paradigm, setwise.paradigm) == ("pointwise", "setwise")
    for lane in (rank1, setwise):
        assert sorted(lane.ranking) == sorted(query.docids) and lane.tokens_out > 0
        assert set(lane.metrics) == {"ndcg@10", "recall@10", "mrr@10"}
    # Rank1: one first-pass judgement per passage, the ranking sorted by their final scores
    first = [call for call in rank1.calls if call.position == 0]
    assert [call.docids_before[0] for call in first] == query.docids
    final = {call.docids_before[0]: call.score for call in rank1.calls}
    assert all(0.0 <= score <= 1.0 for score in final.values())
    assert [final[d] for d in rank1.ranking] == sorted(final.values(), reverse=True)
    assert all(call.method == "rank1" and call.prompt[0]["role"] == "raw" for call in rank1.calls)
    # Rank-R1: the heapsort's comparisons over 6 passages (one set of all six, then extractions)
    assert replayed_sort(query.docids, setwise.calls) == setwise.ranking
    assert sorted(setwise.calls[0].docids_before) == sorted(query.docids)
    assert all(len(call.docids_after) == 1 and call.docids_after[0] in call.docids_before for call in setwise.calls)
    board = board_html([rank1, setwise], query)
    assert 'data-view="pointwise"' in board and 'data-view="setwise"' in board
    assert f"Tournament: {len(setwise.calls)} comparisons" in board and f"Scores: {TOP_K} passages" in board
    assert board.count('class="ar-score"') == TOP_K
    inspector = inspector_html(setwise, query)
    assert inspector.count('class="ar-window"') == len(setwise.calls) and "chose:" in inspector
    assert "score:" in inspector_html(rank1, query)


def test_a_method_on_a_baseline_is_refused(query):
    with pytest.raises(InputError, match="has no model"):
        next(run_arena(query, [RerankerSpec("b", "bm25", method="rank1")]))
    with pytest.raises(InputError, match="unknown method"):
        next(run_arena(query, [RerankerSpec("t", "transformers", "m", method="nope")]))
