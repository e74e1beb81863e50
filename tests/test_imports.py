"""reasonrank.imports on real files, a ReasonRank release built from NovelEval, and the malformed
corpus in tests/fixtures/malformed (each file one defect, its expected line and field in the
folder's README table); plus the label metrics the store relies on (self-consistency, Kendall τ)."""

from __future__ import annotations

import gzip
import itertools
import json
import random
from pathlib import Path

import pytest
import pytrec_eval

from reasonrank.imports import (
    ALPHA,
    MAX_ISSUES,
    ImportIssue,
    label_consistency,
    self_consistency,
    validate_file,
)
from reasonrank.io import (
    InputError,
    read_candidates_jsonl,
    read_labels_jsonl,
    read_qrels,
    read_queries_tsv,
    read_rank_llm_json,
    read_trec_run,
    write_candidates_jsonl,
    write_labels_jsonl,
)
from reasonrank.metrics import kendall_tau
from reasonrank.types import Label

MALFORMED = Path(__file__).parent / "fixtures" / "malformed"


# ----------------------------------------------------------------------------- shared fixtures
@pytest.fixture(scope="session")
def noveleval(test_data):
    """NovelEval: 21 queries × 20 judged passages, candidates in BM25 order, graded qrels."""
    root = test_data / "noveleval"
    qrels = read_qrels(root / "qrels.txt")
    return read_rank_llm_json(root / "candidates_with_text.json", qrels=qrels, dataset="noveleval")


def build_release(root: Path, test_data: Path, maps: str = "dir-json", rows: int = 4) -> Path:
    """A small ReasonRank release from real NovelEval text: `rows` queries, their 20 BM25
    candidates as initial_list, a 'teacher' final_list (judged grade first, BM25 order within a
    grade; on odd rows the least relevant passage is put first, so not every label is perfect), grade ≥ 1 as
    relevant_docids. `maps` picks the on-disk shape of id_query/ and id_doc/."""
    source = test_data / "noveleval"
    queries = read_queries_tsv(source / "queries.tsv")
    qrels = read_qrels(source / "qrels.txt")
    lists = read_rank_llm_json(source / "candidates_with_text.json")[:rows]
    root.mkdir(parents=True)
    data = []
    for n, cl in enumerate(lists):
        grades = qrels[cl.query.qid]
        final = sorted(cl.docids, key=lambda d: -grades.get(d, 0))
        if n % 2:
            final.insert(0, final.pop())
        data.append(
            {
                "dataset": "noveleval",
                "qid": f"noveleval_{cl.query.qid}",
                "initial_list": cl.docids,
                "final_list": final,
                "relevant_docids": [d for d in cl.docids if grades.get(d, 0) >= 1],
                "reasoning": f"Okay, I need to rank the 20 passages for “{queries[cl.query.qid]}”. "
                f"[{cl.docids.index(final[0]) + 1}] answers it most directly.",
            }
        )
    (root / "training_data_all.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in data))
    query_map = {f"noveleval_{cl.query.qid}": queries[cl.query.qid] for cl in lists}
    doc_map = {p.docid: p.text for cl in lists for p in cl.candidates}
    if maps == "dir-json":  # one JSON object per dataset file
        (root / "id_query").mkdir()
        (root / "id_doc").mkdir()
        (root / "id_query" / "noveleval.json").write_text(json.dumps(query_map, ensure_ascii=False, indent=1))
        (root / "id_doc" / "noveleval.json").write_text(json.dumps(doc_map, ensure_ascii=False))
    elif maps == "dir-jsonl":  # JSONL lines, split over two files
        (root / "id_query").mkdir()
        (root / "id_doc").mkdir()
        (root / "id_query" / "q.jsonl").write_text(
            "".join(json.dumps({"qid": k, "query": v}) + "\n" for k, v in query_map.items())
        )
        items = list(doc_map.items())
        for part, chunk in enumerate((items[:30], items[30:])):
            (root / "id_doc" / f"part{part}.jsonl").write_text(
                "".join(json.dumps({"docid": k, "contents": v}) + "\n" for k, v in chunk)
            )
    else:  # single TSV files beside the data file
        (root / "id_query.tsv").write_text("".join(f"{k}\t{v}\n" for k, v in query_map.items()))
        (root / "id_doc.tsv").write_text("".join(f"{k}\t{v}\n" for k, v in doc_map.items()))
    return root


@pytest.fixture(scope="session")
def release_dir(tmp_path_factory, test_data) -> Path:
    return build_release(tmp_path_factory.mktemp("release") / "reasonrank_data", test_data)


# ----------------------------------------------------------------------------- the malformed corpus
def malformed_cases() -> list[dict]:
    rows = []
    for line in (MALFORMED / "README.md").read_text().splitlines():
        if line.startswith("| ") and not line.startswith(("| file", "| ---")):
            file, kind, options, lineno, field, defect = (c.strip() for c in line.strip().strip("|").split("|"))
            rows.append(
                {
                    "file": file,
                    "kind": kind,
                    "line": int(lineno),
                    "field": field,
                    "defect": defect,
                    "options": dict(o.split("=", 1) for o in options.split(",") if o),
                }
            )
    return rows


CASES = malformed_cases()


def test_the_corpus_holds_at_least_30_different_defects():
    assert len(CASES) >= 30
    assert len({c["defect"] for c in CASES}) == len(CASES)
    listed = {c["file"].split("/")[0] for c in CASES} | {"README.md", "support"}
    assert {p.name for p in MALFORMED.iterdir()} == listed  # every file is described


@pytest.mark.parametrize("kind_given", [True, False], ids=["kind", "auto"])
@pytest.mark.parametrize("case", CASES, ids=[c["file"].split("/")[0] for c in CASES])
def test_each_malformed_file_is_rejected_naming_line_and_field(case, kind_given):
    options = case["options"]
    target = MALFORMED / options.get("dir", case["file"])
    batch = validate_file(
        target,
        kind=case["kind"] if kind_given else "auto",
        max_field_chars=int(options.get("max_field_chars", 100_000)),
        candidates_path=MALFORMED / options["candidates"] if "candidates" in options else None,
    )
    assert batch.kind == case["kind"]
    assert not batch.ok and batch.labels == [] and batch.candidates == [] and batch.qrels == {}
    assert len(batch.issues) == 1, [str(i) for i in batch.issues]  # one defect, one issue
    issue = batch.issues[0]
    assert (issue.line, issue.field) == (case["line"], case["field"])
    assert issue.path == str(MALFORMED / case["file"])
    assert str(issue).startswith(f"{MALFORMED / case['file']}:{case['line']}: {case['field']}: ")


def test_a_file_with_every_defect_at_once_reports_them_all(tmp_path):
    """Issues are collected across lines, not stopped at the first."""
    jsonl = [
        c for c in CASES if c["kind"] == "candidates" and not c["options"] and c["file"] != "cand_duplicate_qid.jsonl"
    ]
    bad_lines = [(MALFORMED / c["file"]).read_bytes().splitlines()[c["line"] - 1] for c in jsonl]
    unique = [line.replace(b'"q2"', b'"q%d"' % i) for i, line in enumerate(bad_lines, 10)]
    (tmp_path / "all.jsonl").write_bytes(b"\n".join(unique) + b"\n")
    batch = validate_file(tmp_path / "all.jsonl", kind="candidates")
    assert len(jsonl) >= 20
    assert [(i.line, i.field) for i in batch.issues] == [(n, c["field"]) for n, c in enumerate(jsonl, 1)]


# ----------------------------------------------------------------------------- good files
def test_trec_run_imports_as_43_model_labels_of_20_passages(test_data):
    root = test_data / "trec-dl19"
    batch = validate_file(
        root / "rankvicuna7b_rerank_top20.run",
        candidates_path=root / "bm25_top100_with_text.json",
        run_depth=20,
        qrels_path=root / "qrels.txt",
        dataset="dl19",
        model="rankvicuna-7b",
    )
    assert batch.ok, batch.issues[:3]
    assert batch.kind == "trec-run" and len(batch.labels) == 43
    run = read_trec_run(root / "rankvicuna7b_rerank_top20.run")
    bm25 = {cl.query.qid: cl for cl in read_rank_llm_json(root / "bm25_top100_with_text.json")}
    qrels = read_qrels(root / "qrels.txt")
    for label in batch.labels:
        qid = label.candidates.query.qid
        assert (label.source, label.model, label.reasoning, label.candidates.dataset) == (
            "model",
            "rankvicuna-7b",
            None,
            "dl19",
        )
        assert label.ranking == [docid for docid, _ in run[qid][:20]]
        # the window's passages, in first-stage order: here exactly the BM25 top 20
        assert label.candidates.candidates == bm25[qid].candidates[:20]
        assert label.candidates.qrels == {d: g for d, g in qrels[qid].items() if d in set(label.ranking)}
    # without a depth the label covers every docid the run ranks (RankLLM writes back the tail)
    whole = validate_file(root / "rankvicuna7b_rerank_top20.run", candidates_path=root / "bm25_top100_with_text.json")
    assert whole.ok and {len(label.ranking) for label in whole.labels} == {100}
    assert whole.labels[0].model == "rank" and whole.dataset == "rankvicuna7b_rerank_top20"


def test_candidate_and_label_files_written_by_io_import_unchanged(noveleval, tmp_path):
    write_candidates_jsonl(noveleval, tmp_path / "cands.jsonl")
    batch = validate_file(tmp_path / "cands.jsonl")
    assert batch.ok and batch.kind == "candidates"
    assert batch.candidates == read_candidates_jsonl(tmp_path / "cands.jsonl") == noveleval
    labels = [
        Label(
            cl,
            list(reversed(cl.docids)),
            source="human" if n == 1 else "teacher",
            reasoning="Okay, [20] first." if n != 2 else None,
            model="r1" if n == 0 else None,
            relevant_docids=cl.docids[:2] if n == 0 else None,
            raw_output="<think>…</think>" if n == 0 else None,
            reasons=["missing_ids"] if n == 0 else [],
            tokens_in=10 * n,
            tokens_out=n,
        )
        for n, cl in enumerate(noveleval[:4])
    ]
    write_labels_jsonl(labels, tmp_path / "labels.jsonl")
    batch = validate_file(tmp_path / "labels.jsonl")
    assert batch.ok and batch.kind == "labels"
    assert batch.labels == read_labels_jsonl(tmp_path / "labels.jsonl") == labels


def test_defaults_dataset_source_model_and_gzip(noveleval, tmp_path):
    rows = [
        {
            "qid": "a",
            "query": "q",
            "candidates": [{"docid": "1", "text": "x"}, {"docid": "2", "text": "y"}],
            "ranking": ["2", "1"],
        },
        {
            "qid": 7,
            "query": "q",
            "candidates": [{"docid": 1, "text": "x"}],
            "ranking": [1],
            "dataset": "other",
            "source": "human",
        },
    ]
    payload = "\ufeff" + "\r\n".join(json.dumps(r) for r in rows) + "\r\n\r\n"  # BOM, CRLF, blank line
    with gzip.open(tmp_path / "mine.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(payload)
    batch = validate_file(tmp_path / "mine.jsonl.gz", model="m1")
    assert batch.ok, batch.issues
    first, second = batch.labels
    assert (batch.dataset, first.candidates.dataset, second.candidates.dataset) == ("mine", "mine", "other")
    assert (first.source, second.source, first.model) == ("teacher", "human", "m1")
    assert second.candidates.query.qid == "7" and second.ranking == ["1"]
    # the same qid in two datasets is not a duplicate
    (tmp_path / "two.jsonl").write_text(json.dumps(rows[0]) + "\n" + json.dumps({**rows[0], "dataset": "x"}) + "\n")
    assert validate_file(tmp_path / "two.jsonl").ok


@pytest.mark.parametrize("maps", ["dir-json", "dir-jsonl", "file-tsv"])
def test_reasonrank_release_layout(maps, tmp_path, test_data, noveleval):
    root = build_release(tmp_path / "release", test_data, maps)
    batch = validate_file(root)
    assert batch.ok, batch.issues[:3]
    assert (batch.kind, batch.dataset, len(batch.labels)) == ("reasonrank", "release", 4)
    rows = [json.loads(line) for line in (root / "training_data_all.jsonl").read_text().splitlines()]
    for label, row, cl in zip(batch.labels, rows, noveleval):
        assert label.candidates.query.qid == row["qid"] and label.candidates.query.text == cl.query.text
        assert label.candidates.candidates == cl.candidates  # initial_list order, real text
        assert (label.ranking, label.relevant_docids, label.reasoning) == (
            row["final_list"],
            row["relevant_docids"],
            row["reasoning"],
        )
        assert (label.source, label.model, label.candidates.dataset) == ("teacher", "DeepSeek-R1", "noveleval")
    # the data file itself names the release too
    assert validate_file(root / "training_data_all.jsonl").labels == batch.labels


def test_release_map_conflicts_and_missing_maps(tmp_path, test_data):
    root = build_release(tmp_path / "r", test_data, "dir-jsonl", rows=2)
    first = json.loads((root / "id_doc" / "part0.jsonl").read_text().splitlines()[0])
    with (root / "id_doc" / "part1.jsonl").open("a") as handle:
        handle.write(json.dumps({"docid": first["docid"], "contents": "another text"}) + "\n")
    batch = validate_file(root)
    assert [(Path(i.path).name, i.field) for i in batch.issues] == [("part1.jsonl", "docid")]
    assert "already has a different text (part0.jsonl:1)" in batch.issues[0].message
    (root / "id_query" / "q.jsonl").unlink()
    issues = validate_file(root).issues
    assert any(i.field == "id_query" and "no id_query/ map" in i.message for i in issues)


def test_qrels_files_import(test_data):
    batch = validate_file(test_data / "trec-dl19" / "qrels.txt", dataset="dl19")
    assert batch.ok and batch.kind == "qrels" and batch.qrels == read_qrels(test_data / "trec-dl19" / "qrels.txt")
    assert len(validate_file(test_data / "noveleval" / "qrels.txt").qrels) == 21


# ----------------------------------------------------------------------------- failure behaviour
def test_missing_path_is_one_issue_and_never_raises(tmp_path):
    batch = validate_file(tmp_path / "absent.jsonl")
    assert batch.issues == [ImportIssue(str(tmp_path / "absent.jsonl"), None, None, "file not found")]
    assert str(batch.issues[0]) == f"{tmp_path / 'absent.jsonl'}: file not found"
    run = tmp_path / "r.run"
    run.write_text("q1 Q0 d1 1 1.0 x\n")
    assert [i.field for i in validate_file(run).issues] == ["candidates_path"]
    assert [i.message for i in validate_file(tmp_path, kind="labels").issues] == [
        "is a directory; only kind 'reasonrank' imports a directory"
    ]
    (tmp_path / "empty.jsonl").write_text("\n\n")
    assert [i.message for i in validate_file(tmp_path / "empty.jsonl", kind="labels").issues] == ["no records found"]


def test_argument_mistakes_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="unknown import kind 'csv'") as kind:
        validate_file(tmp_path, kind="csv")
    with pytest.raises(InputError, match="unknown label source") as source:
        validate_file(tmp_path, source="robot")
    with pytest.raises(InputError, match="run_depth") as depth:
        validate_file(tmp_path, run_depth=0)
    for error in (kind, source, depth):  # the CLI prints each as its one `error:` line
        assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []  # refused before reading or writing anything


def test_issues_are_capped_with_a_count_of_the_rest(tmp_path):
    (tmp_path / "bad.jsonl").write_text("not json\n" * (MAX_ISSUES + 300))
    issues = validate_file(tmp_path / "bad.jsonl", kind="candidates").issues
    assert len(issues) == MAX_ISSUES + 1
    assert issues[MAX_ISSUES - 1].line == MAX_ISSUES
    assert issues[-1].message == "… and 300 more issues" and issues[-1].line is None


def test_one_bad_line_rejects_the_whole_file(tmp_path):
    good = (MALFORMED / "label_not_permutation.jsonl").read_text().splitlines()[0]
    (tmp_path / "l.jsonl").write_text(
        good + "\n" + good.replace('"q1"', '"q9"').replace('"d1", "d2", "d3"', '"d3"') + "\n"
    )
    batch = validate_file(tmp_path / "l.jsonl")
    assert not batch.ok and batch.labels == [] and [i.line for i in batch.issues] == [2]


# ----------------------------------------------------------------------------- self-consistency
def _trec_ndcg10(ranking, qrels):
    run = {"q": {d: float(len(ranking) - i) for i, d in enumerate(ranking)}}
    return pytrec_eval.RelevanceEvaluator({"q": qrels}, {"ndcg_cut.10"}).evaluate(run)["q"]["ndcg_cut_10"]


def test_self_consistency_hand_cases():
    ranking = [f"d{i}" for i in range(1, 21)]
    assert self_consistency(ranking, ["d1"]) == 1.0
    assert self_consistency(ranking, ["d3"]) == pytest.approx(0.5)  # 1 / log2(4)
    assert self_consistency(ranking, ["d11"]) == 0.0  # below the cut-off
    assert self_consistency(ranking, []) == 0.0  # judged, no positives
    assert self_consistency(ranking, None) is None and self_consistency(ranking, {}) is None
    graded = {"d1": 0, "d2": 2, "d3": 1, "d15": 3}
    assert self_consistency(ranking, graded) == pytest.approx(_trec_ndcg10(ranking, graded), abs=1e-12)
    assert self_consistency(ranking, ["d2", "d5"]) == pytest.approx(
        _trec_ndcg10(ranking, {"d2": 1, "d5": 1}), abs=1e-12
    )


def test_alpha_line():
    """α = 0.4 (docs/method.md §7): one positive at rank 3 is kept (0.5), at rank 6 dropped (1/log2 7 ≈ 0.356)."""
    assert ALPHA == 0.4
    ranking = [f"d{i}" for i in range(1, 21)]
    assert self_consistency(ranking, ["d3"]) >= ALPHA > self_consistency(ranking, ["d6"])


def test_label_consistency_on_imported_labels(release_dir, test_data):
    batch = validate_file(release_dir)
    scores = [label_consistency(label) for label in batch.labels]
    assert scores[0] == 1.0 and scores[2] == 1.0  # judged-first order
    assert 0 < scores[1] < 1 and 0 < scores[3] < 1  # an irrelevant passage first
    root = test_data / "trec-dl19"
    dl19 = validate_file(
        root / "rankvicuna7b_rerank_top20.run",
        candidates_path=root / "bm25_top100_with_text.json",
        run_depth=20,
        qrels_path=root / "qrels.txt",
    )
    label = dl19.labels[0]
    assert label.relevant_docids is None
    assert label_consistency(label) == pytest.approx(_trec_ndcg10(label.ranking, label.candidates.qrels), abs=1e-12)
    unjudged = validate_file(
        root / "rankvicuna7b_rerank_top20.run", candidates_path=root / "bm25_top100_with_text.json"
    )
    assert label_consistency(unjudged.labels[0]) is None


# ----------------------------------------------------------------------------- Kendall τ
def _pair_count_tau(a, b):
    pos = {x: i for i, x in enumerate(b)}
    pairs = list(itertools.combinations(a, 2))
    sign = sum(1 if pos[x] < pos[y] else -1 for x, y in pairs)
    return sign / len(pairs)


def test_kendall_tau_against_pair_counting_and_scipy():
    rng = random.Random(3)
    cases = [(list("abcd"), list("abcd")), (list("abcd"), list("dcba")), (list("abcd"), list("bacd"))]
    for n in (2, 3, 5, 20, 100):
        for _ in range(20):
            a = [f"d{i}" for i in range(n)]
            b = a[:]
            rng.shuffle(b)
            cases.append((a, b))
    for a, b in cases:
        assert kendall_tau(a, b) == pytest.approx(_pair_count_tau(a, b), abs=1e-12)
    assert kendall_tau(list("abcd"), list("dcba")) == -1.0 and kendall_tau(["x"], ["x"]) == 1.0
    from scipy import stats  # installed with pytrec_eval-terrier: this half never silently skips

    for a, b in cases:
        expected = stats.kendalltau([a.index(x) for x in a], [b.index(x) for x in a]).statistic
        assert kendall_tau(a, b) == pytest.approx(expected, abs=1e-12)


def test_kendall_tau_refuses_different_items():
    with pytest.raises(InputError, match="same items"):
        kendall_tau(["a", "b"], ["a", "c"])
    with pytest.raises(InputError, match="repeat"):
        kendall_tau(["a", "a"], ["a", "b"])
    assert kendall_tau(["a", "b"], ["b", "a"]) == -1.0  # the same items in any order are fine


def test_paused_gc_restores_the_collector_and_nests():
    import gc

    from reasonrank.gc_pause import paused_gc

    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block did not turn it back on early
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # it stays as the caller left it
    finally:
        gc.enable()
