"""BRIGHT loader on a small real tree built from tests/data/bright (theoremqa_questions).

The tree has the official layout: examples from the released topics, documents = the full text
of every query's gold documents (231 real documents, the other queries' gold docs being the
negatives), and the ReasonIR first-stage run restricted to documents that have text. On top of
the real run, each query's own excluded documents that have text are put at the head of its
run (a first stage that ignored exclusions, as ReasonRank's shipped runs may), and one query gets
one of its gold ids excluded, so the official rule has something to remove from the qrels too.
"""

from __future__ import annotations

import gzip
import json
import statistics

import pytest

from reasonrank.bright import BrightSource, load_bright, load_bright_task, read_examples, task_name
from reasonrank.io import InputError, read_trec_run
from reasonrank.metrics import evaluate_run, mean_metrics

TASK = "theoremqa_questions"
TOPICS = "topics.bright-theoremqa-questions-original.jsonl.gz"


def _gold_documents(test_data) -> dict[str, str]:
    records = json.loads((test_data / "bright" / "docs" / "theoremqa_questions_gold_docs.json").read_text())
    docs = {}
    for record in records:
        for docid, text in zip(record["gold_ids"], record["gold_contents"]):
            docs[docid] = text
    return docs


@pytest.fixture(scope="session")
def bright_tree(test_data, tmp_path_factory):
    """(root, facts): the tree on disk and what was put into it, for the assertions."""
    source = test_data / "bright"
    root = tmp_path_factory.mktemp("bright")
    (root / "examples").mkdir()
    (root / "documents").mkdir()
    (root / "runs").mkdir()
    with gzip.open(source / "examples" / TOPICS, "rt", encoding="utf-8") as handle:
        examples = [json.loads(line) for line in handle]
    docs = _gold_documents(test_data)
    real_run = read_trec_run(source / "runs" / f"{TASK}.reasonir_top100.run")
    run = {q: [(d, s) for d, s in hits if d in docs] for q, hits in real_run.items()}
    run = {q: hits for q, hits in run.items() if hits}

    # one query whose run holds a gold document: exclude that gold id as well
    target = next(ex for ex in examples if any(d in ex["gold_ids"] for d, _ in run.get(ex["id"], [])))
    excluded_gold = next(d for d, _ in run[target["id"]] if d in target["gold_ids"])
    target["excluded_ids"] = target["excluded_ids"] + [excluded_gold]

    injected: dict[str, list[str]] = {}
    for ex in examples:
        if ex["id"] in run:
            extra = [d for d in ex["excluded_ids"] if d in docs and d not in dict(run[ex["id"]])][:3]
            if extra:
                injected[ex["id"]] = extra
                run[ex["id"]] = [(d, 1.0 + i) for i, d in enumerate(extra)] + run[ex["id"]]

    with (root / "examples" / f"{TASK}.jsonl").open("w", encoding="utf-8") as handle:
        for ex in examples:
            handle.write(json.dumps(ex) + "\n")
    with gzip.open(root / "documents" / f"{TASK}.jsonl.gz", "wt", encoding="utf-8") as handle:
        for docid, text in docs.items():
            handle.write(json.dumps({"id": docid, "content": text}) + "\n")
    with (root / "runs" / f"{TASK}.run").open("w", encoding="utf-8") as handle:
        for qid, hits in run.items():
            for rank, (docid, score) in enumerate(hits, 1):
                handle.write(f"{qid} Q0 {docid} {rank} {score} reasonir\n")
    facts = {
        "examples": {ex["id"]: ex for ex in examples},
        "docs": docs,
        "run": run,
        "injected": injected,
        "excluded_gold": (target["id"], excluded_gold),
    }
    return root, facts


def test_run_first_stage_drops_excluded_from_candidates_and_qrels(bright_tree):
    root, facts = bright_tree
    assert facts["injected"], "the real data should give some excluded documents with text"
    stage = load_bright_task(root, TASK, run=root / "runs" / f"{TASK}.run", top_k=100)
    assert stage.name == TASK
    lists = stage.require_lists()
    assert [cl.query.qid for cl in lists] == list(facts["run"])
    injected_total = sum(len(v) for v in facts["injected"].values())
    gold_qid, gold_doc = facts["excluded_gold"]
    total_hits = sum(len(h) for h in facts["run"].values())
    assert sum(len(cl.candidates) for cl in lists) == total_hits - injected_total - 1
    for cl in lists:
        excluded = set(facts["examples"][cl.query.qid]["excluded_ids"]) - {"N/A"}
        assert not excluded & set(cl.docids)
        assert not excluded & set(cl.qrels)
        assert cl.dataset == TASK and cl.query.text == facts["examples"][cl.query.qid]["query"]
        assert all(p.text == facts["docs"][p.docid] for p in cl.candidates)
        # candidates keep the run's order
        assert cl.docids == [d for d, _ in facts["run"][cl.query.qid] if d not in excluded]
    assert gold_doc not in stage.qrels[gold_qid]
    assert set(stage.qrels[gold_qid]) == set(facts["examples"][gold_qid]["gold_ids"]) - {gold_doc}
    # every query with gold ids is judged, not only those the run covers
    assert len(stage.qrels) == sum(1 for ex in facts["examples"].values() if ex["gold_ids"])


def test_bm25_first_stage_over_documents_respects_exclusions(bright_tree):
    root, facts = bright_tree
    (stage,) = load_bright(BrightSource(root=str(root), tasks=[TASK]), top_k=10)
    assert len(stage.lists) == len(facts["examples"])
    for cl in stage.lists:
        excluded = set(facts["examples"][cl.query.qid]["excluded_ids"])
        assert 0 < len(cl.candidates) <= 10
        assert not excluded & set(cl.docids)
    scores = mean_metrics(evaluate_run({q: dict(h) for q, h in stage.run.items()}, stage.qrels))
    # gold documents of a query are other TheoremQA problems with the same theorem: BM25 over
    # the 231 gold documents must find some of them (all-zero would mean a broken pipeline)
    assert scores["ndcg@10"] > 0.1


def test_anserini_layout_of_the_test_data(test_data):
    """The shared folder has topics.bright-*-original.jsonl.gz and no documents: a run-only eval."""
    pytrec_eval = pytest.importorskip("pytrec_eval")
    root = test_data / "bright"
    run_path = root / "runs" / f"{TASK}.reasonir_top100.run"
    stage = load_bright_task(root, "theoremqa-questions", run=run_path)
    assert stage.lists is None
    assert len(stage.run) == 194 and all(len(h) == 100 for h in stage.run.values())
    with pytest.raises(InputError, match="passage text"):
        stage.require_lists()
    per_query = evaluate_run({q: dict(h) for q, h in stage.run.items()}, stage.qrels)
    reference = pytrec_eval.RelevanceEvaluator(stage.qrels, {"ndcg_cut.10"}).evaluate(
        {q: dict(h) for q, h in stage.run.items()}
    )
    assert statistics.mean(v["ndcg@10"] for v in per_query.values()) == pytest.approx(
        statistics.mean(v["ndcg_cut_10"] for v in reference.values()), abs=1e-9
    )
    with pytest.raises(InputError, match="no first-stage run given and no documents"):
        load_bright_task(root, TASK)


def test_na_placeholders_are_ignored(test_data):
    examples = read_examples(test_data / "bright" / "examples" / "topics.bright-biology-original.jsonl.gz")
    assert len(examples) == 103
    assert all(ex.excluded_ids == [] for ex in examples)  # every record says ["N/A"]
    assert all(ex.gold_ids and "N/A" not in ex.gold_ids for ex in examples)


def test_anserini_exclude_file_is_honoured(test_data, tmp_path):
    """Leetcode's exclusions also ship as qrels/exclude.bright-leetcode.txt; a tree whose
    examples lack them still drops them."""
    root = tmp_path
    (root / "examples").mkdir()
    (root / "qrels").mkdir()
    source = test_data / "bright"
    with gzip.open(source / "examples" / "topics.bright-leetcode-original.jsonl.gz", "rt") as handle:
        first = json.loads(handle.readline())
    listed = first["excluded_ids"][:2]
    first["excluded_ids"] = []
    (root / "examples" / "leetcode.jsonl").write_text(json.dumps(first) + "\n")
    (root / "qrels" / "exclude.bright-leetcode.txt").write_text("".join(f"{first['id']} {d}\n" for d in listed))
    hits = [listed[0], first["gold_ids"][0], listed[1]]
    (root / "run.txt").write_text("".join(f"{first['id']} Q0 {d} {i} {9 - i} x\n" for i, d in enumerate(hits, 1)))
    stage = load_bright_task(root, "leetcode", run=root / "run.txt")
    assert [d for d, _ in stage.run[first["id"]]] == [first["gold_ids"][0]]


def test_missing_task_files_name_the_paths(tmp_path):
    with pytest.raises(InputError, match="examples for task 'pony'.*pony.jsonl"):
        load_bright_task(tmp_path, "pony")
    with pytest.raises(InputError, match="no BRIGHT task"):
        load_bright(BrightSource(root=str(tmp_path)))


def test_task_names_accept_hyphens():
    assert task_name("theoremqa-questions") == "theoremqa_questions"
    assert task_name(" earth_science ") == "earth_science"
