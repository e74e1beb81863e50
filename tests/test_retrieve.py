"""BM25 first stage and candidate-list building, on a hand-made corpus and on real NovelEval."""

from __future__ import annotations

import statistics

import pytest

from reasonrank.evaluate import EvalConfig, evaluate
from reasonrank.io import InputError, read_corpus, read_qrels, read_queries_tsv, write_candidates_jsonl
from reasonrank.retrieve import (
    BM25Index,
    CandidateSource,
    bm25_retrieve,
    build_candidate_lists,
    load_source,
)
from reasonrank.types import Passage
from reasonrank.window import WindowConfig

MINI = {
    "cats": "Cats purr and chase mice around the barn.",
    "dogs": "Dogs bark at the mailman every morning.",
    "both": Passage("both", "Cats and dogs can live together peacefully.", title="Pets"),
    "fish": "Goldfish swim in small bowls of water.",
    "titled": Passage("titled", "A short note about feeding.", title="Goldfish care"),
}


def test_documents_sharing_query_terms_rank_first():
    run = bm25_retrieve(MINI, {"q1": "why do cats purr", "q2": "goldfish", "q3": "dogs"}, k=10)
    assert run["q1"][0][0] == "cats"  # two query terms (cats, purr) beat one
    assert {d for d, _ in run["q1"]} == {"cats", "both"}  # only documents sharing a term
    # the title is folded into the indexed text: "titled" matches only through its title
    assert {d for d, _ in run["q2"]} == {"fish", "titled"}
    assert [d for d, _ in run["q3"]][:2] in (["dogs", "both"], ["both", "dogs"])
    scores = [s for _, s in run["q1"]]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0


def test_stopword_and_unknown_queries_retrieve_nothing():
    run = bm25_retrieve(MINI, {"stop": "the and of", "oov": "zebra xylophone"}, k=5)
    assert run == {"stop": [], "oov": []}


def test_excluded_ids_are_dropped_but_k_is_kept():
    index = BM25Index(MINI)
    plain = index.search({"q": "cats dogs"}, k=2)["q"]
    assert [d for d, _ in plain][0] == "both"
    filtered = index.search({"q": "cats dogs"}, k=2, excluded_ids={"q": ["both"]})["q"]
    assert "both" not in {d for d, _ in filtered}
    assert len(filtered) == 2  # retrieved k + len(excluded) before dropping


def test_k_larger_than_corpus_is_fine():
    run = bm25_retrieve(MINI, {"q": "cats"}, k=1000)
    assert len(run["q"]) == 2


def test_empty_corpus_is_an_input_error():
    with pytest.raises(InputError, match="non-empty corpus"):
        BM25Index({})


@pytest.fixture(scope="session")
def noveleval(test_data):
    root = test_data / "noveleval"
    return (
        root,
        read_corpus(root / "corpus.tsv"),
        read_queries_tsv(root / "queries.tsv"),
        read_qrels(root / "qrels.txt"),
    )


def test_bm25_on_noveleval_finds_each_querys_own_pool(noveleval):
    _, corpus, queries, _ = noveleval
    run = bm25_retrieve(corpus, queries, k=20)
    assert set(run) == set(queries)
    # NovelEval docids are "<qid>-<n>": the 20 candidates judged for that query. The other
    # 400 documents are about other questions, so a sane BM25 fills its top 10 from the pool.
    own = [sum(d.split("-")[0] == qid for d, _ in hits[:10]) for qid, hits in run.items()]
    assert sum(own) / (10 * len(own)) >= 0.9


def test_bm25_eval_matches_pytrec_eval(noveleval):
    pytrec_eval = pytest.importorskip("pytrec_eval")
    root, corpus, queries, qrels = noveleval
    config = EvalConfig(
        trec=CandidateSource(
            name="noveleval",
            corpus=str(root / "corpus.tsv"),
            queries=str(root / "queries.tsv"),
            qrels=str(root / "qrels.txt"),
        ),
        window=WindowConfig(top_k=20),
    )
    report = evaluate(config)
    (scores,) = report.scores
    run = bm25_retrieve(corpus, queries, k=20)
    ours = {q: dict(hits) for q, hits in run.items()}
    reference = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recip_rank"}).evaluate(ours)
    assert scores.mean["ndcg@10"] == pytest.approx(
        statistics.mean(v["ndcg_cut_10"] for v in reference.values()), abs=1e-9
    )
    for qid, values in reference.items():
        assert scores.per_query[qid]["ndcg@10"] == pytest.approx(values["ndcg_cut_10"], abs=1e-9)
    # BM25 must beat its own reversal by a wide margin, or the ranking is noise
    reversed_run = {q: [d for d, _ in hits][::-1] for q, hits in run.items()}
    rev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(
        {q: {d: float(len(ds) - i) for i, d in enumerate(ds)} for q, ds in reversed_run.items()}
    )
    assert scores.mean["ndcg@10"] > statistics.mean(v["ndcg_cut_10"] for v in rev.values()) + 0.2


def test_build_candidate_lists_carries_text_qrels_and_exclusions(noveleval):
    _, corpus, queries, qrels = noveleval
    run = bm25_retrieve(corpus, {"0": queries["0"], "1": queries["1"]}, k=20)
    excluded_doc = run["0"][0][0]
    lists = build_candidate_lists(run, corpus, queries, qrels, top_k=5, excluded_ids={"0": [excluded_doc]})
    assert [cl.query.qid for cl in lists] == ["0", "1"]
    first = lists[0]
    assert excluded_doc not in first.docids and len(first.candidates) == 5
    assert first.docids == [d for d, _ in run["0"] if d != excluded_doc][:5]
    assert first.candidates[0].text == corpus[first.docids[0]].text
    assert excluded_doc not in first.qrels and first.excluded_ids == [excluded_doc]
    assert lists[1].qrels == qrels["1"]


def test_missing_text_names_the_docid_and_the_query(noveleval):
    _, corpus, queries, _ = noveleval
    with pytest.raises(InputError, match="'ghost-doc'.*'0'"):
        build_candidate_lists({"0": [("0-1", 2.0), ("ghost-doc", 1.0)]}, corpus, queries)
    with pytest.raises(InputError, match="query '99'"):
        build_candidate_lists({"99": [("0-1", 1.0)]}, corpus, queries)


def test_load_source_variants(noveleval, tmp_path):
    root, corpus, queries, qrels = noveleval
    run_path = tmp_path / "first.run"
    run = bm25_retrieve(corpus, queries, k=20)
    run_path.write_text(
        "".join(f"{q} Q0 {d} {r} {s} bm25\n" for q, hits in run.items() for r, (d, s) in enumerate(hits, 1))
    )
    bare = load_source(CandidateSource(run=str(run_path), qrels=str(root / "qrels.txt")), top_k=7)
    assert bare.lists is None and all(len(h) == 7 for h in bare.run.values())
    with pytest.raises(InputError, match="reranking needs passage text"):
        bare.require_lists()
    with_text = load_source(
        CandidateSource(run=str(run_path), corpus=str(root / "corpus.tsv"), queries=str(root / "queries.tsv")),
        top_k=7,
    )
    assert [cl.docids for cl in with_text.lists] == [[d for d, _ in h] for h in bare.run.values()]
    # a candidate file with its own excluded_ids: they leave the candidates and the judgments
    lists = with_text.require_lists()
    lists[0].excluded_ids = [lists[0].docids[0]]
    lists[0].qrels = {lists[0].docids[0]: 2, lists[0].docids[1]: 1}
    write_candidates_jsonl(lists, tmp_path / "c.jsonl")
    from_file = load_source(CandidateSource(candidates=str(tmp_path / "c.jsonl")), top_k=5)
    assert len(from_file.lists[0].candidates) == 5 and from_file.lists[0].docids[0] == lists[0].docids[1]
    assert from_file.qrels[lists[0].query.qid] == {lists[0].docids[1]: 1}
    with pytest.raises(InputError, match="not both"):
        load_source(CandidateSource(candidates=str(tmp_path / "c.jsonl"), run=str(run_path)))
    with pytest.raises(InputError, match="no first stage"):
        load_source(CandidateSource(queries=str(root / "queries.tsv")))
    with pytest.raises(InputError, match="needs queries"):
        load_source(CandidateSource(corpus=str(root / "corpus.tsv")))
