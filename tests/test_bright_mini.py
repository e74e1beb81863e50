"""The BRIGHT mini benchmark built from the real shared BRIGHT files, and `reasonrank eval` on it.

Facts checked against the sources themselves (not against numbers written here): the corpus is
exactly the union of RaDeR's gold documents, the examples are the official records, the qrels file
is the official one byte for byte, and the official excluded_ids survive for every document the
corpus holds — which matters, because 169 queries' own question text is another query's gold
document, so BM25 without the rule would retrieve it.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys

import pytest

from reasonrank.bright import load_bright_task
from reasonrank.bright_mini import MINI_TASK, build_bright_mini, ensure_bright_mini
from reasonrank.io import InputError, read_corpus, read_trec_run
from reasonrank.reproduce import EXCLUSION_RULE, file_sha256, prompt_sha256
from reasonrank.retrieve import bm25_retrieve

TOPICS = "topics.bright-theoremqa-questions-original.jsonl.gz"
QRELS = "qrels.bright-theoremqa-questions.txt"


@pytest.fixture(scope="session")
def official(test_data):
    """(examples, {docid: text}) straight from the shared files."""
    source = test_data / "bright"
    with gzip.open(source / "examples" / TOPICS, "rt", encoding="utf-8") as handle:
        examples = [json.loads(line) for line in handle]
    docs = {}
    for record in json.loads((source / "docs" / "theoremqa_questions_gold_docs.json").read_text()):
        docs.update(zip(record["gold_ids"], record["gold_contents"]))
    return examples, docs


@pytest.fixture(scope="session")
def mini(test_data, tmp_path_factory):
    return build_bright_mini(test_data / "bright", tmp_path_factory.mktemp("mini") / "bright-mini")


def _run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "reasonrank", *map(str, args)], capture_output=True, text=True, timeout=120
    )


def test_tree_holds_the_official_queries_judgments_and_gold_texts(mini, official, test_data):
    examples, docs = official
    root = mini.root
    assert (mini.queries, mini.documents) == (len(examples), len(docs)) == (194, 231)
    corpus = read_corpus(root / "documents" / f"{MINI_TASK}.jsonl")
    assert {d: p.text for d, p in corpus.items()} == docs
    assert (root / "qrels" / QRELS).read_bytes() == (test_data / "bright" / "qrels" / QRELS).read_bytes()
    written = [json.loads(line) for line in (root / "examples" / f"{MINI_TASK}.jsonl").read_text().splitlines()]
    assert [r["id"] for r in written] == [r["id"] for r in examples]
    for mine, theirs in zip(written, examples):
        assert mine["query"] == theirs["query"] and mine["gold_ids"] == theirs["gold_ids"]
        assert mine["excluded_ids"] == [d for d in theirs["excluded_ids"] if d in docs]
    assert mini.excluded_in_corpus == sum(len(r["excluded_ids"]) for r in written) > 100
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["sources"]["docs/theoremqa_questions_gold_docs.json"] == file_sha256(
        test_data / "bright" / "docs" / "theoremqa_questions_gold_docs.json"
    )
    assert "not BRIGHT" in (root / "README.md").read_text()


def test_build_is_byte_for_byte_reproducible(mini, test_data, tmp_path):
    again = build_bright_mini(test_data / "bright", tmp_path / "again").root
    files = sorted(p.relative_to(mini.root) for p in mini.root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((mini.root / f).read_bytes() == (again / f).read_bytes() for f in files)


def test_bm25_first_stage_honours_the_exclusions(mini, official):
    examples, docs = official
    excluded = {r["id"]: set(r["excluded_ids"]) for r in examples}
    stage = load_bright_task(mini.root, MINI_TASK)
    assert len(stage.qrels) == 194 and len(stage.lists) == 194
    assert all(not (set(d for d, _ in hits) & excluded[q]) for q, hits in stage.run.items())
    assert all(not (set(cl.docids) & excluded[cl.query.qid]) for cl in stage.lists)
    # without the rule BM25 would retrieve excluded documents (mostly the query's own text)
    unfiltered = bm25_retrieve(docs, {r["id"]: r["query"] for r in examples}, 100)
    leaking = [q for q, hits in unfiltered.items() if set(d for d, _ in hits) & excluded[q]]
    assert len(leaking) >= 100


def test_missing_gold_text_or_disagreeing_qrels_fail_with_one_line(test_data, tmp_path):
    source = tmp_path / "bright"
    for part in ("examples", "qrels"):
        shutil.copytree(test_data / "bright" / part, source / part)
    (source / "docs").mkdir()
    records = json.loads((test_data / "bright" / "docs" / "theoremqa_questions_gold_docs.json").read_text())
    dropped = records[0]["gold_ids"][0]
    for record in records:
        keep = [i for i, d in enumerate(record["gold_ids"]) if d != dropped]
        record["gold_ids"] = [record["gold_ids"][i] for i in keep]
        record["gold_contents"] = [record["gold_contents"][i] for i in keep]
    (source / "docs" / "theoremqa_questions_gold_docs.json").write_text(json.dumps(records))
    with pytest.raises(InputError, match=f"gold document '{dropped}' has no text"):
        build_bright_mini(source, tmp_path / "out")
    qrels = source / "qrels" / QRELS
    qrels.chmod(0o644)
    qrels.write_text("".join(qrels.read_text().splitlines(keepends=True)[1:]))
    with pytest.raises(InputError, match="official qrels and the examples' gold_ids disagree"):
        build_bright_mini(source, tmp_path / "out")


def test_ensure_builds_once(mini):
    before = {p: p.stat().st_mtime_ns for p in mini.root.rglob("*") if p.is_file()}
    assert ensure_bright_mini("/nonexistent", mini.root) == mini.root  # complete tree: source never read
    assert before == {p: p.stat().st_mtime_ns for p in mini.root.rglob("*") if p.is_file()}


def test_cli_builds_then_eval_records_what_reproduces_it(test_data, tmp_path):
    built = _run_cli("bright-mini", "--source", test_data / "bright", "--out", tmp_path / "mini")
    assert built.returncode == 0, built.stderr
    assert "not BRIGHT" in built.stdout and "194 queries" in built.stdout
    outs = []
    for name in ("a", "b"):
        proc = _run_cli(
            "eval",
            "--bright-root",
            tmp_path / "mini",
            "--task",
            MINI_TASK,
            "--seed",
            "7",
            "--top-k",
            "50",
            "--out",
            tmp_path / name,
        )
        assert proc.returncode == 0, proc.stderr
        outs.append(tmp_path / name)
    # the same command twice gives the same run, byte for byte
    assert (outs[0] / f"{MINI_TASK}.trec").read_bytes() == (outs[1] / f"{MINI_TASK}.trec").read_bytes()
    results = json.loads((outs[0] / "results.json").read_text())
    reproduce = results["reproduce"]
    assert (reproduce["seed"], reproduce["top_k"], reproduce["window"], reproduce["step"]) == (7, 50, 20, 10)
    assert reproduce["prompt_sha256"] == prompt_sha256() and len(reproduce["prompt_sha256"]) == 64
    assert reproduce["excluded_id_rule"] == EXCLUSION_RULE
    assert reproduce["reranker"] is None and reproduce["first_stage"][MINI_TASK]["kind"] == "bm25"
    documents = tmp_path / "mini" / "documents" / f"{MINI_TASK}.jsonl"
    assert reproduce["inputs"][str(documents)] == file_sha256(documents)
    assert (
        reproduce["versions"]["bm25s"]
        and reproduce["versions"]["python"]
        == f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    )
    assert results["runs"] == {MINI_TASK: str(outs[0] / f"{MINI_TASK}.trec")}
    assert len(read_trec_run(results["runs"][MINI_TASK])) == 194
