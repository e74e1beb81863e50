"""The Arena's queries: the bundled samples (db/sample: TREC DL19 BM25 top-100, NovelEval) with
their graded judgments, the BRIGHT mini set (BM25 over its small corpus, excluded ids removed), or
a pasted query with its passages; and the candidate list a run gets from the chosen one.

Everything a person typed or picked is checked here and refused with an InputError.
"""

from __future__ import annotations

import functools

from db.seed import SAMPLE
from reasonrank.io import InputError, read_qrels, read_rank_llm_json
from reasonrank.types import CandidateList, Passage, Query

#: label -> (dataset name as seeded into the label store, candidate file in db/sample/<dataset>/)
SAMPLES = {
    "TREC DL19 (bundled)": ("trec-dl19", "bm25_top100_with_text.json"),
    "NovelEval (bundled)": ("noveleval", "candidates_with_text.json"),
}
BRIGHT_MINI = "BRIGHT mini (theoremqa stand-in)"
PASTE = "Paste your own"
SOURCES = (*SAMPLES, BRIGHT_MINI, PASTE)


@functools.lru_cache(maxsize=len(SAMPLES) + 1)
def sample_lists(source: str) -> tuple[CandidateList, ...]:
    """A sample's candidate lists with their judgments, read once per app.

    The BRIGHT mini set (the Eval tab builds it once from the shared BRIGHT files) gets its
    candidates from BM25 over its 231-document corpus, excluded ids left out.
    """
    if source == BRIGHT_MINI:
        from reasonrank.bright import load_bright_task
        from reasonrank.bright_mini import MINI_TASK
        from ui.eval_config import mini_root

        return tuple(load_bright_task(mini_root(), MINI_TASK, top_k=100).lists or ())
    dataset, candidates_file = SAMPLES[source]
    root = SAMPLE / dataset
    return tuple(read_rank_llm_json(root / candidates_file, read_qrels(root / "qrels.txt"), dataset))


def query_choices(source: str) -> list[tuple[str, str]]:
    if source not in (*SAMPLES, BRIGHT_MINI):
        return []
    return [(f"{cl.query.qid} · {cl.query.text[:160]}", cl.query.qid) for cl in sample_lists(source)]


def pasted_list(query: str, passages: str, qrels: str) -> CandidateList:
    """A query and one passage per line (`docid<TAB>text`, or just text: ids p1, p2, …);
    optional judgments as `docid grade` lines."""
    if not (query or "").strip():
        raise InputError("type a query to rank the pasted passages for")
    found = []
    for number, line in enumerate((line for line in (passages or "").splitlines() if line.strip()), 1):
        docid, text = line.split("\t", 1) if "\t" in line else (f"p{number}", line)
        found.append(Passage(docid.strip(), text.strip()))
    if len(found) < 2:
        raise InputError("paste at least two passages, one per line")
    if len({p.docid for p in found}) != len(found):
        raise InputError("each pasted passage needs its own docid")
    judged: dict[str, int] = {}
    for line in (qrels or "").splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise InputError(f"judgment lines are 'docid grade', got {line.strip()!r}")
        judged[parts[0]] = int(parts[1])
    return CandidateList(Query("pasted", query.strip()), found, qrels=judged or None, dataset=None)


def chosen_list(source: str, qid: str, query: str, passages: str, qrels: str, top_k: int) -> CandidateList:
    """The list the rerankers get: the chosen query's first `top_k` candidates."""
    if source == PASTE:
        chosen = pasted_list(query, passages, qrels)
    elif source in (*SAMPLES, BRIGHT_MINI):
        chosen = next((cl for cl in sample_lists(source) if cl.query.qid == str(qid)), None)
        if chosen is None:
            raise InputError(f"no query {qid!r} in {source}")
    else:
        raise InputError(f"unknown query source {source!r}; choose one of {', '.join(SOURCES)}")
    return CandidateList(
        chosen.query,
        chosen.candidates[:top_k],
        qrels=chosen.qrels,
        excluded_ids=list(chosen.excluded_ids),
        dataset=chosen.dataset,
    )


def source_dataset(source: str) -> str | None:
    """The dataset name a query source's lists carry (None for pasted lists)."""
    if source in SAMPLES:
        return SAMPLES[source][0]
    if source == BRIGHT_MINI:
        from reasonrank.bright_mini import MINI_TASK

        return MINI_TASK
    return None
