"""First stage: BM25 over a passage collection (bm25s) or a TREC run file, turned into the
CandidateLists a reranker takes.

A reranker only reorders what the first stage found, so this module also owns the rules that
decide which candidates a query gets: top-k truncation and the removal of excluded ids (BRIGHT's
rule: an excluded document is neither retrieved nor judged).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from reasonrank.io import (
    InputError,
    read_candidate_file,
    read_corpus,
    read_qrels,
    read_queries_tsv,
    read_trec_run,
)
from reasonrank.types import CandidateList, Passage, Query

Run = dict[str, list[tuple[str, float]]]
Qrels = dict[str, dict[str, int]]

# Lucene BM25 with Anserini's defaults, the setting BRIGHT's BM25 baseline uses.
BM25_K1 = 0.9
BM25_B = 0.4
# bm25s ships English stopwords; its stemmer needs PyStemmer, which is not a dependency here.
_STOPWORDS = "en"


def index_text(doc: str | Passage) -> str:
    """The text BM25 sees: the title folded in front of the body, as the reranker prompt does."""
    if isinstance(doc, Passage):
        return f"{doc.title} {doc.text}" if doc.title else doc.text
    return doc


class BM25Index:
    """An in-memory BM25 index over {docid: text or Passage}; bm25s is imported on first use."""

    def __init__(self, corpus: Mapping[str, str | Passage], k1: float = BM25_K1, b: float = BM25_B):
        import logging

        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets DEBUG on import: log noise

        if not corpus:
            raise InputError("BM25 needs a non-empty corpus")
        self.docids = list(corpus)
        tokens = bm25s.tokenize(
            [index_text(corpus[d]) for d in self.docids],
            stopwords=_STOPWORDS,
            return_ids=False,
            show_progress=False,
        )
        self._model = bm25s.BM25(k1=k1, b=b)
        self._model.index(tokens, show_progress=False)
        self._vocab = {t for t in self._model.vocab_dict if t}

    def search(
        self,
        queries: Mapping[str, str],
        k: int,
        excluded_ids: Mapping[str, Iterable[str]] | None = None,
    ) -> Run:
        """Top-k (docid, score) per query, best first; only documents sharing a term are returned.

        Excluded ids are dropped after retrieving k + len(excluded), so a query still gets k
        results when some of its top hits are excluded (BRIGHT's procedure). Ties keep corpus
        order, so runs are reproducible.
        """
        import bm25s
        import numpy as np

        qids = list(queries)
        query_tokens = bm25s.tokenize(
            [queries[q] for q in qids], stopwords=_STOPWORDS, return_ids=False, show_progress=False
        )
        order = np.arange(len(self.docids))
        run: Run = {}
        for qid, tokens in zip(qids, query_tokens):
            known = [t for t in tokens if t in self._vocab]
            excluded = set((excluded_ids or {}).get(qid, ()))
            if not known:
                run[qid] = []
                continue
            scores = self._model.get_scores(known)
            ranked = np.lexsort((order, -scores))[: k + len(excluded)]
            hits = [(self.docids[i], float(scores[i])) for i in ranked if scores[i] > 0]
            run[qid] = [h for h in hits if h[0] not in excluded][:k]
        return run


def bm25_retrieve(
    corpus: Mapping[str, str | Passage],
    queries: Mapping[str, str],
    k: int = 100,
    excluded_ids: Mapping[str, Iterable[str]] | None = None,
) -> Run:
    """Index `corpus` and retrieve the top-k of every query in one call."""
    return BM25Index(corpus).search(queries, k, excluded_ids)


def drop_excluded(run: Run, excluded_ids: Mapping[str, Iterable[str]] | None, top_k: int | None = None) -> Run:
    """Remove each query's excluded docids, then keep the first `top_k` hits."""
    out: Run = {}
    for qid, hits in run.items():
        excluded = set((excluded_ids or {}).get(qid, ()))
        kept = [h for h in hits if h[0] not in excluded]
        out[qid] = kept[:top_k] if top_k is not None else kept
    return out


def judged_without(qrels: dict[str, int] | None, excluded: Iterable[str]) -> dict[str, int] | None:
    """A query's judgments minus its excluded ids (they must not be scored either)."""
    if qrels is None:
        return None
    excluded = set(excluded)
    return {d: g for d, g in qrels.items() if d not in excluded}


def build_candidate_lists(
    run: Run,
    corpus: Mapping[str, Passage],
    queries: Mapping[str, str],
    qrels: Qrels | None = None,
    top_k: int = 100,
    excluded_ids: Mapping[str, Iterable[str]] | None = None,
    dataset: str | None = None,
) -> list[CandidateList]:
    """One CandidateList per query of the run, in run order, with passage text from `corpus`.

    A docid or qid without text is an error naming it: silently dropping a candidate would
    change what the reranker sees and what the metrics mean.
    """
    lists = []
    for qid, hits in drop_excluded(run, excluded_ids, top_k).items():
        if qid not in queries:
            raise InputError(f"query {qid!r} of the run has no text in the queries")
        passages = []
        for docid, _ in hits:
            if docid not in corpus:
                raise InputError(f"docid {docid!r} (query {qid!r}) has no text in the corpus")
            passages.append(corpus[docid])
        excluded = list((excluded_ids or {}).get(qid, ()))
        lists.append(
            CandidateList(
                query=Query(qid, queries[qid]),
                candidates=passages,
                qrels=judged_without(qrels.get(qid, {}), excluded) if qrels is not None else None,
                excluded_ids=excluded,
                dataset=dataset,
            )
        )
    return lists


# ----------------------------------------------------------------------------- loading a source
@dataclass
class CandidateSource:
    """Where one dataset's first stage comes from; the CLI flags and the UI form map onto it.

    Exactly one of: `candidates` (our JSONL or RankLLM JSON, text included), `run` (a TREC
    run; add `corpus` + `queries` for passage text), or `corpus` + `queries` alone (BM25).
    """

    name: str = "dataset"
    candidates: str | None = None
    run: str | None = None
    corpus: str | None = None
    queries: str | None = None
    qrels: str | None = None


@dataclass
class FirstStage:
    """A dataset's first-stage result after exclusions and top-k truncation."""

    name: str
    run: Run
    qrels: Qrels | None
    lists: list[CandidateList] | None  # None when no passage text is known (a bare run file)

    def require_lists(self) -> list[CandidateList]:
        if self.lists is None:
            raise InputError(
                f"{self.name}: reranking needs passage text; give a corpus with the run (or a candidate file)"
            )
        return self.lists


def load_source(source: CandidateSource, top_k: int = 100) -> FirstStage:
    """Read the files a CandidateSource names and run BM25 when it names no ranking."""
    qrels = read_qrels(source.qrels) if source.qrels else None
    if source.candidates:
        if source.run or source.corpus:
            raise InputError("give either a candidate file or a run/corpus, not both")
        lists = [_truncated(cl, top_k) for cl in read_candidate_file(source.candidates, qrels, source.name)]
        if qrels is None and any(cl.qrels is not None for cl in lists):
            qrels = {cl.query.qid: cl.qrels for cl in lists if cl.qrels is not None}
        run = {cl.query.qid: [(d, float(len(cl.docids) - i)) for i, d in enumerate(cl.docids)] for cl in lists}
        return FirstStage(source.name, run, qrels, lists)
    corpus = read_corpus(source.corpus) if source.corpus else None
    queries = read_queries_tsv(source.queries) if source.queries else None
    if corpus is not None and queries is None:
        raise InputError("a corpus needs queries (a qid<TAB>query file) to build candidate lists")
    if source.run:
        run = drop_excluded(read_trec_run(source.run), None, top_k)
    elif corpus is not None:
        run = bm25_retrieve(corpus, queries, top_k)
    else:
        raise InputError("no first stage: give a candidate file, a run file, or a corpus with queries")
    lists = (
        build_candidate_lists(run, corpus, queries, qrels, top_k, dataset=source.name) if corpus is not None else None
    )
    return FirstStage(source.name, run, qrels, lists)


def _truncated(cl: CandidateList, top_k: int) -> CandidateList:
    """Apply a candidate file's own excluded_ids and the top-k cut."""
    excluded = set(cl.excluded_ids)
    cl.candidates = [p for p in cl.candidates if p.docid not in excluded][:top_k]
    cl.qrels = judged_without(cl.qrels, excluded)
    return cl
