"""Sliding-window reranking: the window plan, cross-query batching, and what every call records.

The backend is the deterministic ScriptedBackend (a perfect ranker keyed on the relevance number
written in each passage), so the expected result of a sweep can be computed independently: sort
each span of the plan in turn. The property a single back-to-front sweep guarantees — the global
top `step` end up on top in true order — is checked against a plain sort, not the simulation.
"""

from __future__ import annotations

import random

import pytest
from scripted_backend import ScriptedBackend, window_passages

from reasonrank import prompts
from reasonrank.backends.base import Backend, BackendError
from reasonrank.io import InputError
from reasonrank.types import CandidateList, Passage, Query
from reasonrank.window import WindowConfig, rerank, window_spans


# ----------------------------------------------------------------------------- helpers
def reference_loop(n: int, window: int, step: int, top_k: int) -> list[tuple[int, int]]:
    """A literal reading of docs/method.md §4 (rank_start 0, window = min(window, n))."""
    rank_start, rank_end = 0, min(top_k, n)
    window = min(window, n)
    spans = []
    end = rank_end
    start = end - window
    while end > rank_start and start + step != rank_start:
        start = max(start, rank_start)
        spans.append((start, end))
        end -= step
        start -= step
    return spans


def make_list(qid: str, scores: list[int]) -> CandidateList:
    """Candidates in first-stage order; passage k states its relevance `scores[k]`."""
    return CandidateList(
        query=Query(qid, f"which passage of {qid} is best? see [3]"),
        candidates=[Passage(f"{qid}-d{k}", f"passage {k} [7] cafÃ© relevance {s}") for k, s in enumerate(scores)],
    )


def simulate(scores: list[int], spans: list[tuple[int, int]], passes: int = 1):
    """Expected order (candidate indices) and per-call (before, after) of a perfect ranker."""
    order = list(range(len(scores)))
    steps = []
    for _ in range(passes):
        for start, end in spans:
            before = order[start:end]
            order[start:end] = sorted(before, key=lambda i: -scores[i])
            steps.append((before, order[start:end]))
    return order, steps


def random_scores(rng: random.Random, n: int) -> list[int]:
    scores = list(range(n))
    rng.shuffle(scores)
    return scores


def docids(cl: CandidateList, indices: list[int]) -> list[str]:
    return [cl.candidates[i].docid for i in indices]


# ----------------------------------------------------------------------------- window_spans
PAPER_SPANS = [(80, 100), (70, 90), (60, 80), (50, 70), (40, 60), (30, 50), (20, 40), (10, 30), (0, 20)]


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (100, PAPER_SPANS),
        (20, [(0, 20)]),
        (7, [(0, 7)]),
        (35, [(15, 35), (5, 25), (0, 15)]),
        (21, [(1, 21), (0, 11)]),
        (99, [(s - 1, e - 1) for s, e in PAPER_SPANS[:-1]] + [(0, 19)]),
        (2, [(0, 2)]),
        (1, []),
        (0, []),
        (250, PAPER_SPANS),  # only the top 100 are reranked
    ],
)
def test_window_spans_table(n, expected):
    assert window_spans(n, 20, 10, 100) == expected


def test_window_spans_equal_the_reference_loop_minus_single_passage_windows():
    checked = 0
    for n in range(0, 131):
        for window in (2, 3, 5, 10, 20):
            for step in range(1, window + 1):
                for top_k in (window, 50, 100, 1000):
                    expected = [(s, e) for s, e in reference_loop(n, window, step, top_k) if e - s >= 2]
                    got = window_spans(n, window, step, top_k)
                    assert got == expected, (n, window, step, top_k)
                    checked += 1
    assert checked > 10_000


def test_window_spans_drop_the_reference_single_passage_window():
    assert reference_loop(21, 20, 20, 100) == [(1, 21), (0, 1)]
    assert window_spans(21, 20, 20, 100) == [(1, 21)]
    assert reference_loop(1, 20, 10, 100) == [(0, 1)]


def test_window_spans_with_top_k_below_window_still_rerank_the_head():
    # The literal reference loop yields nothing here; we rerank [0, 10) in one window.
    assert reference_loop(100, 20, 10, 10) == []
    assert window_spans(100, 20, 10, 10) == [(0, 10)]
    assert window_spans(100, 20, 10, 30) == [(10, 30), (0, 20)]


@pytest.mark.parametrize(
    "kwargs",
    [dict(window=1), dict(step=0), dict(step=21), dict(top_k=0), dict(passes=0), dict(max_passage_tokens=0)],
)
def test_window_config_rejects_bad_values_with_a_clear_message(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        WindowConfig(**kwargs)


def test_window_config_errors_are_input_errors():
    with pytest.raises(InputError, match="step must be between 1 and the window size 5, got 6"):
        WindowConfig(window=5, step=6)


# ----------------------------------------------------------------------------- rerank
@pytest.fixture(scope="module")
def batch_of_37():
    """37 top-100 lists: 36 random first-stage orders and one worst case (best passage last)."""
    rng = random.Random(2508)
    scores = [random_scores(rng, 100) for _ in range(36)] + [list(range(100))]
    lists = [make_list(f"q{i}", s) for i, s in enumerate(scores)]
    backend = ScriptedBackend()
    steps = []
    results = rerank(lists, backend, on_step=lambda done, total: steps.append((done, total)))
    return lists, scores, backend, results, steps


def test_37_queries_cost_9_generate_calls_of_37_prompts(batch_of_37):
    _, _, backend, results, steps = batch_of_37
    assert backend.calls == [37] * 9
    assert steps == [(k, 9) for k in range(1, 10)]
    assert [len(r.calls) for r in results] == [9] * 37


def test_one_sweep_puts_the_true_top_10_on_top_in_true_order(batch_of_37):
    lists, scores, _, results, _ = batch_of_37
    for cl, s, result in zip(lists, scores, results):
        true_order = sorted(range(100), key=lambda i: -s[i])
        assert result.ranking[:10] == docids(cl, true_order[:10]), cl.query.qid
        # the final window [0, 20) was sorted last: the top 20 are in descending relevance
        top20 = [s[cl.docids.index(d)] for d in result.ranking[:20]]
        assert top20 == sorted(top20, reverse=True)
        assert sorted(result.ranking) == sorted(cl.docids)
    # The data makes the check meaningful: many true top-10 passages started far down.
    started_low = sum(1 for s in scores for i in range(100) if s[i] >= 90 and i >= 20)
    assert started_low > 200
    # ...and one sweep is not a full sort: in the worst-case list (relevance = first-stage rank)
    # the ten least relevant passages, last seen by the final window, end at ranks 11-20.
    worst = lists[-1]
    assert results[-1].ranking[10:20] == docids(worst, list(range(9, -1, -1)))


def test_final_order_and_every_call_record_match_the_simulation(batch_of_37):
    lists, scores, backend, results, _ = batch_of_37
    spans = window_spans(100, 20, 10, 100)
    for q, (cl, s, result) in enumerate(zip(lists, scores, results)):
        expected_order, expected_steps = simulate(s, spans)
        assert result.qid == cl.query.qid
        assert result.ranking == docids(cl, expected_order)
        for position, (call, (before, after)) in enumerate(zip(result.calls, expected_steps)):
            assert (call.qid, call.pass_index, call.position) == (cl.query.qid, 0, position)
            assert (call.start, call.end) == spans[position]
            assert call.docids_before == docids(cl, before)
            assert call.docids_after == docids(cl, after)
            assert [call.docids_before[j] for j in call.parsed] == call.docids_after
            assert call.reasons == []
            assert call.reasoning == "Ordered the passages by the relevance each one states."
            assert call.raw_output.endswith("</answer>")
            assert call.prompt is backend.batches[position][q]  # recorded, not copied
            assert call.tokens_in > 200 and call.tokens_out == len(call.raw_output.split())
            assert call.finish_reason == "stop"
            assert call.seconds >= 0


def test_first_call_prompts_are_exactly_build_messages_of_the_prepared_window(batch_of_37):
    lists, _, backend, _, _ = batch_of_37
    for cl, sent in zip(lists, backend.batches[0]):
        expected = prompts.build_messages(
            prompts.prepare_query(cl.query.text),
            [prompts.prepare_passage(p, None, 512) for p in cl.candidates[80:100]],
        )
        assert sent == expected
    user = backend.batches[0][0][1]["content"]
    # prepare_query / prepare_passage really ran: [n] -> (n), mojibake repaired
    assert "see (3)." in user and "(7) café" in user
    assert "[7] café" not in user and "Ã" not in user


def test_lists_of_mixed_lengths_share_calls_and_each_is_correct():
    rng = random.Random(7)
    lengths = [7, 23, 55, 100, 1, 0, 41]
    scores = [random_scores(rng, n) for n in lengths]
    lists = [make_list(f"m{n}", s) for n, s in zip(lengths, scores)]
    backend = ScriptedBackend()
    results = rerank(lists, backend)

    spans = [window_spans(n, 20, 10, 100) for n in lengths]
    assert [len(s) for s in spans] == [1, 2, 5, 9, 0, 0, 4]
    assert backend.calls == [5, 4, 3, 3, 2, 1, 1, 1, 1]  # lists still sliding at each position
    for cl, s, sp, result in zip(lists, scores, spans, results):
        expected_order, _ = simulate(s, sp)
        assert result.ranking == docids(cl, expected_order)
        assert [(c.start, c.end) for c in result.calls] == sp
    # every window prompt names exactly its span's passages
    assert [len(window_passages(p)) for p in backend.batches[0]] == [7, 20, 20, 20, 20]


def test_candidates_beyond_top_k_keep_their_first_stage_order():
    rng = random.Random(11)
    scores = random_scores(rng, 100)
    cl = make_list("k", scores)
    backend = ScriptedBackend()
    [result] = rerank([cl], backend, WindowConfig(top_k=30))
    assert backend.calls == [1, 1]
    expected_order, _ = simulate(scores, [(10, 30), (0, 20)])
    assert result.ranking == docids(cl, expected_order)
    assert result.ranking[30:] == cl.docids[30:]
    # passages no window shows are never sent to the model
    sent = {text for batch in backend.batches for p in batch for text in window_passages(p)}
    assert len(sent) == 30


def test_two_passes_repeat_the_full_sweep_on_the_first_pass_result():
    rng = random.Random(3)
    scores = [random_scores(rng, 100) for _ in range(5)]
    lists = [make_list(f"p{i}", s) for i, s in enumerate(scores)]
    backend = ScriptedBackend()
    steps = []
    results = rerank(lists, backend, WindowConfig(passes=2), lambda done, total: steps.append((done, total)))
    assert backend.calls == [5] * 18
    assert steps == [(k, 18) for k in range(1, 19)]
    spans = window_spans(100, 20, 10, 100)
    changed = 0
    for cl, s, result in zip(lists, scores, results):
        two, _ = simulate(s, spans, passes=2)
        one, _ = simulate(s, spans, passes=1)
        assert result.ranking == docids(cl, two)
        changed += two != one
        assert [c.pass_index for c in result.calls] == [0] * 9 + [1] * 9
        assert [c.position for c in result.calls] == list(range(9)) * 2
        assert result.calls[9].docids_before == docids(cl, one[80:100])  # pass 2 sees pass 1
    assert changed == 5  # the second pass really moved passages


def test_dropped_ids_are_repaired_and_the_reason_recorded():
    rng = random.Random(5)
    scores = random_scores(rng, 40)
    cl = make_list("drop", scores)
    [result] = rerank([cl], ScriptedBackend(fault="drop_best"))
    assert len(result.calls) == 3
    for call in result.calls:
        assert call.reasons == ["missing_ids"]
        assert sorted(call.parsed) == list(range(call.end - call.start))
        best = max(call.docids_before, key=lambda d: scores[cl.docids.index(d)])
        assert call.docids_after[-1] == best  # the forgotten id is appended last
    assert sorted(result.ranking) == sorted(cl.docids)


def test_duplicated_ids_are_repaired_without_changing_the_ranking():
    rng = random.Random(6)
    scores = random_scores(rng, 60)
    cl = make_list("dup", scores)
    [result] = rerank([cl], ScriptedBackend(fault="duplicate"))
    assert all(call.reasons == ["duplicate_ids"] for call in result.calls)
    expected, _ = simulate(scores, window_spans(60, 20, 10, 100))
    assert result.ranking == docids(cl, expected)


def test_truncated_reasoning_is_flagged_and_its_mentioned_ids_used():
    rng = random.Random(8)
    scores = random_scores(rng, 30)
    cl = make_list("trunc", scores)
    [result] = rerank([cl], ScriptedBackend(fault="truncated"))
    for call in result.calls:
        assert call.reasons == ["reasoning_truncated", "no_answer_tag"]
        assert call.finish_reason == "length"
        assert call.reasoning.startswith("Ordered the passages")
    expected, _ = simulate(scores, window_spans(30, 20, 10, 100))
    assert result.ranking == docids(cl, expected)


def test_separately_returned_reasoning_is_stored_and_the_answer_parsed():
    rng = random.Random(9)
    scores = random_scores(rng, 100)
    cl = make_list("sep", scores)
    [result] = rerank([cl], ScriptedBackend(separate_reasoning=True))
    expected, _ = simulate(scores, window_spans(100, 20, 10, 100))
    assert result.ranking == docids(cl, expected)
    for call in result.calls:
        assert call.raw_output.startswith("<answer>[")
        assert call.reasoning == "Ordered the passages by the relevance each one states."


def test_a_backend_returning_too_few_completions_is_a_backend_error():
    lists = [make_list(f"s{i}", list(range(30))) for i in range(3)]
    with pytest.raises(BackendError, match="'scripted' returned 2 completions for 3 prompts"):
        rerank(lists, ScriptedBackend(fault="short_batch"))


def test_tokenizer_of_the_backend_truncates_passages():
    class FirstCharsTokenizer:
        """A character 'tokenizer': max_passage_tokens then means characters."""

        def tokenize(self, text: str) -> list[str]:
            return list(text)

        def convert_tokens_to_string(self, tokens: list[str]) -> str:
            return "".join(tokens)

    cl = make_list("tok", [5, 1, 9])
    backend = ScriptedBackend(tokenizer=FirstCharsTokenizer())
    rerank([cl], backend, WindowConfig(max_passage_tokens=13))
    sent = window_passages(backend.batches[0][0])
    assert sent == ["passage 0 (7)", "passage 1 (7)", "passage 2 (7)"]


def test_empty_input_and_unrankable_lists_make_no_calls():
    backend = ScriptedBackend()
    assert rerank([], backend) == []
    results = rerank([make_list("one", [3]), make_list("none", [])], backend)
    assert backend.calls == []
    assert [(r.qid, r.ranking, r.calls) for r in results] == [
        ("one", ["one-d0"], []),
        ("none", [], []),
    ]


def test_scripted_backend_is_a_real_backend():
    assert isinstance(ScriptedBackend(), Backend)


# ----------------------------------------------------------------------------- real data
def test_an_oracle_ranker_on_trec_dl19_bm25_top100_gets_the_ideal_top_10(dl19):
    """Real passages (brackets, unicode, long text) through the real prompt, judged by qrels.

    The scripted ranker looks each prepared passage up in the qrels, so one sweep must bring the
    ten highest grades of each list to the top in descending order.
    """
    grade_of_text: dict[str, int] = {}
    for cl in dl19:
        for p in cl.candidates:
            text = prompts.prepare_passage(p)
            grade = (cl.qrels or {}).get(p.docid, 0)
            grade_of_text[text] = max(grade, grade_of_text.get(text, 0))
    backend = ScriptedBackend(key=lambda text: grade_of_text[text])
    results = rerank(dl19, backend)
    assert backend.calls == [len(dl19)] * 9 and len(dl19) == 43
    improved = 0
    for cl, result in zip(dl19, results):
        grades = cl.qrels or {}
        ideal = sorted((grades.get(d, 0) for d in cl.docids), reverse=True)[:10]
        got = [grades.get(d, 0) for d in result.ranking[:10]]
        assert got == ideal, cl.query.qid
        improved += [grades.get(d, 0) for d in cl.docids[:10]] != ideal
    assert improved >= 40  # BM25's own top 10 is rarely ideal, so the sweep did the work
