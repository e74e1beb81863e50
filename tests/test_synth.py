"""Teacher synthesis end to end: real NovelEval / BRIGHT lists in a migrated SQLite store, a real
OpenAI-compatible HTTP server on 127.0.0.1 speaking as the teacher, `run_synth` (what the CLI runs)
in between. Each test checks what ends up in the database, not what the pipeline says it did."""

from __future__ import annotations

import json
import re
import socket
import time

import pytest
from db_fixtures import sqlite_engine, sqlite_template  # noqa: F401 (fixture)
from openai_server import Answer, Fault, OpenAIServer
from sqlmodel import Session, select

from db.models import Dataset, Item, Label, Query
from db.synth import store_label
from reasonrank.cli import main
from reasonrank.cli.synth import SynthConfig, describe_synth, run_synth
from reasonrank.imports.consistency import self_consistency
from reasonrank.io import read_candidate_file, read_qrels, write_candidates_jsonl
from reasonrank.synth import PRICES, split_think
from reasonrank.types import Label as LabelData

FINAL_QUERY = re.compile(r"Search Query: (.*?)\. ?\n")


# ----------------------------------------------------------------------------- helpers
def query_of(messages: list[dict]) -> str:
    """The query a listwise request ranks for (both prompts end with "Search Query: …")."""
    return FINAL_QUERY.search(messages[-1]["content"]).group(1)


def ranked(order: list[int]) -> str:
    return " > ".join(f"[{i}]" for i in order)


def labels_by_qid(engine, dataset: str) -> dict[str, list[Label]]:
    with Session(engine) as session:
        rows = session.exec(
            select(Query.qid, Label)
            .join(Item, Item.id == Label.item_id)
            .join(Query, Query.id == Item.query_id)
            .join(Dataset, Dataset.id == Item.dataset_id)
            .where(Dataset.name == dataset)
        ).all()
    found: dict[str, list[Label]] = {}
    for qid, label in rows:
        found.setdefault(qid, []).append(label)
    return found


@pytest.fixture
def engine(sqlite_engine):  # noqa: F811
    return sqlite_engine


@pytest.fixture(scope="module")
def noveleval(test_data):
    """The 21 NovelEval lists (20 real passages each, every passage judged)."""
    root = test_data / "noveleval"
    return read_candidate_file(root / "candidates_with_text.json", read_qrels(root / "qrels.txt"), "noveleval")


def candidate_file(tmp_path, lists, name="lists.jsonl"):
    path = tmp_path / name
    write_candidates_jsonl(lists, path)
    return str(path)


def config(server: OpenAIServer, candidates: str, **changes) -> SynthConfig:
    settings = dict(
        candidates=candidates,
        base_url=server.base_url,
        model="test-model",
        api_key_env="SYNTH_TEST_KEY",
        max_in_flight=4,
        timeout_s=10,
        max_retries=3,
    )
    settings.update(changes)
    return SynthConfig(**settings)


# ----------------------------------------------------------------------------- answers → labels
def test_teacher_answers_become_labels_with_reasoning_and_repair_reasons(engine, noveleval, tmp_path):
    lists = noveleval[:6]
    reverse = ranked(list(range(20, 0, -1)))
    script = {
        lists[0].query.text: Answer(content=reverse, reasoning_content="Split out: [20] answers it."),
        lists[1].query.text: Answer(content=f"<think>Inline: [20] first.</think>\n\n{reverse}"),
        lists[2].query.text: Answer(content=f"Only closed: [20] first.</think>{reverse}"),  # R1 template opens it
        lists[3].query.text: Answer(content="<think>Passage [3] looks relevant, but", finish_reason="length"),
        lists[4].query.text: Answer(content="[2] > [2] > [1]", reasoning_content="short"),
        lists[5].query.text: Answer(content="", reasoning_content="I ran out of", finish_reason="length"),
    }
    with OpenAIServer(lambda messages, request: script[query_of(messages)]) as server:
        report = run_synth(config(server, candidate_file(tmp_path, lists)), engine)
        requests = server.chat_requests
    stored = labels_by_qid(engine, "noveleval")
    assert {qid: len(found) for qid, found in stored.items()} == {cl.query.qid: 1 for cl in lists}
    label = {qid: found[0] for qid, found in stored.items()}
    docids = [cl.docids for cl in lists]
    qid = [cl.query.qid for cl in lists]

    for i, reasoning in enumerate(["Split out: [20] answers it.", "Inline: [20] first.", "Only closed: [20] first."]):
        assert label[qid[i]].ranking == docids[i][::-1] and label[qid[i]].reasons == []
        assert label[qid[i]].reasoning == reasoning and label[qid[i]].model == "test-model"
        assert label[qid[i]].source == "teacher"
    assert label[qid[3]].reasoning == "Passage [3] looks relevant, but"
    assert label[qid[3]].ranking == docids[3]  # ids in a cut-off trace are not an answer
    assert label[qid[3]].reasons == ["reasoning_truncated", "missing_ids"] and not label[qid[3]].kept
    assert label[qid[4]].ranking == [docids[4][1], docids[4][0], *docids[4][2:]]
    assert label[qid[4]].reasons == ["duplicate_ids", "missing_ids"]
    assert label[qid[5]].reasons == ["reasoning_truncated", "missing_ids"] and label[qid[5]].reasoning == "I ran out of"
    for i, cl in enumerate(lists):  # scored against the list's qrels, kept only when usable and >= alpha
        score = self_consistency(label[qid[i]].ranking, cl.qrels)
        assert label[qid[i]].consistency == pytest.approx(score)
        assert label[qid[i]].kept == (i not in (3, 5) and score >= 0.4)
    # the paper's multi-turn prompt: intro, ack, 20 × (passage, receipt), final question
    first = requests[0].body["messages"]
    assert len(first) == 2 + 2 * 20 + 1 and [m["role"] for m in first[:4]] == ["user", "assistant"] * 2
    assert requests[0].body["max_tokens"] == SynthConfig().max_tokens
    # tokens are the server's usage (words here) of the one request behind each label
    assert label[qid[0]].tokens_out == len(reverse.split()) + len("Split out: [20] answers it.".split())
    assert report.tally.outcomes["failed"] == 0 and report.tally.done == 6


def test_single_turn_prompt_expects_answer_tags(engine, noveleval, tmp_path):
    lists = noveleval[6:8]
    script = {
        lists[0].query.text: Answer(content="<answer>[2] > [1]</answer>", reasoning_content="tagged"),
        lists[1].query.text: Answer(content="<think>bare</think> [2] > [1]"),
    }
    with OpenAIServer(lambda messages, request: script[query_of(messages)]) as server:
        run_synth(config(server, candidate_file(tmp_path, lists), prompt="reasonrank"), engine)
        roles = [m["role"] for m in server.chat_requests[0].body["messages"]]
    label = {qid: found[0] for qid, found in labels_by_qid(engine, "noveleval").items()}
    assert roles == ["system", "user"]
    assert label[lists[0].query.qid].reasons == ["missing_ids"]
    assert label[lists[1].query.qid].reasons == ["no_answer_tag", "missing_ids"]
    assert label[lists[1].query.qid].reasoning == "bare"
    assert label[lists[1].query.qid].ranking[:2] == [lists[1].docids[1], lists[1].docids[0]]


def test_split_think_reads_every_layout():
    assert split_think("<think> a </think> b") == ("a", " b", True)
    assert split_think("a</think>b") == ("a", "b", True)
    assert split_think("<THINK>cut") == ("cut", "", False)
    assert split_think("[1] > [2]") == (None, "[1] > [2]", True)
    assert split_think("a</think> b <think>") == ("a", " b <think>", True)  # a later <think> opens nothing


# ----------------------------------------------------------------------------- faults
def test_transient_faults_are_retried_and_each_item_ends_with_its_own_status(engine, noveleval, tmp_path):
    lists = noveleval[:7]
    doomed = lists[6].query.text

    def teacher(messages, request):
        if query_of(messages) == doomed:
            return Fault(status=503, message="overloaded")
        return Answer(content="[2] > [1]", reasoning_content="ok")

    with OpenAIServer(teacher) as server:
        server.faults.extend(
            [Fault(status=429, retry_after=0.4), Fault(status=500), Fault(hang_s=3.0), Fault(malformed=True)]
        )
        cfg = config(server, candidate_file(tmp_path, lists), max_in_flight=2, timeout_s=1.0, max_retries=2)
        report = run_synth(cfg, engine)
        requests = server.chat_requests
    stored = labels_by_qid(engine, "noveleval")
    assert sorted(stored) == sorted(cl.query.qid for cl in lists[:6])  # the doomed list has no label
    assert all(len(found) == 1 for found in stored.values())
    tally = report.tally
    assert tally.outcomes["failed"] == 1 and dict(tally.errors) == {"server_error": 1}
    assert tally.retries["rate_limit"] == 1 and tally.retries["timeout"] == 1 and tally.retries["malformed"] == 1
    assert tally.retries["server_error"] >= 3  # the injected 500 and the doomed list's two retries
    # Retry-After honoured: the same request came back no sooner than the server asked
    limited = requests[0]
    again = next(r for r in requests[1:] if r.body == limited.body)
    assert again.started - limited.started >= 0.4
    assert "1 failed (1 server_error)" in describe_synth(cfg, report)

    with OpenAIServer(lambda messages, request: Answer(content="[1] > [2]", reasoning_content="later")) as server:
        again_report = run_synth(config(server, candidate_file(tmp_path, lists)), engine)
        assert len(server.chat_requests) == 1  # only the list that had failed is asked again
    assert again_report.tally.outcomes["kept"] + again_report.tally.outcomes["filtered"] == 1
    assert all(len(found) == 1 for found in labels_by_qid(engine, "noveleval").values())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("failure", ["bad key", "unknown model", "unreachable"])
def test_a_failing_endpoint_stops_early_with_one_clear_line(engine, noveleval, tmp_path, capsys, monkeypatch, failure):
    secret = "sk-right-9f8e7d"
    monkeypatch.setenv("SYNTH_TEST_KEY", "sk-wrong-1a2b3c" if failure == "bad key" else secret)
    with OpenAIServer(lambda messages, request: "[1] > [2]", api_key=secret) as server:
        base_url = f"http://127.0.0.1:{_closed_port()}/v1" if failure == "unreachable" else server.base_url
        model = "no-such-model" if failure == "unknown model" else "test-model"
        db = engine.url.render_as_string(hide_password=False)
        started = time.monotonic()
        code = main(
            [
                "synth",
                "--candidates",
                candidate_file(tmp_path, noveleval),
                "--base-url",
                base_url,
                "--model",
                model,
                "--api-key-env",
                "SYNTH_TEST_KEY",
                "--max-in-flight",
                "4",
                "--max-retries",
                "5",
                "--db",
                db,
            ]
        )
        elapsed = time.monotonic() - started
        sent = len(server.chat_requests)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1
    expected = {
        "bad key": "rejected the API key",
        "unknown model": "unknown model 'no-such-model'",
        "unreachable": "cannot connect",
    }[failure]
    assert expected in lines[0] and "sk-" not in lines[0]
    if failure == "bad key":
        assert "SYNTH_TEST_KEY is set" in lines[0]
    assert sent <= 8 and elapsed < 15  # a handful of requests, not 21 lists × 6 attempts
    assert labels_by_qid(engine, "noveleval") == {}


# ----------------------------------------------------------------------------- positives, budget, cost
@pytest.fixture(scope="module")
def theoremqa(test_data):
    """Three real BRIGHT theoremqa questions, each with its gold documents and two negatives."""
    from reasonrank.types import CandidateList, Passage
    from reasonrank.types import Query as QueryData

    records = json.loads((test_data / "bright" / "docs" / "theoremqa_questions_gold_docs.json").read_text())
    chosen, used = [], set()
    for record in records:  # four questions whose first two gold documents are all different
        ids = set(record["gold_ids"][:2])
        if len(ids) == 2 and not ids & used:
            chosen.append(record)
            used |= ids
    records = chosen[:4]
    lists, answers = [], {}
    for i, record in enumerate(records[:3]):
        gold = [Passage(d, t) for d, t in zip(record["gold_ids"], record["gold_contents"])][:2]
        negatives = [Passage(d, t) for d, t in zip(records[i + 1]["gold_ids"], records[i + 1]["gold_contents"])][:2]
        lists.append(CandidateList(QueryData(f"tq{i}", record["problem"]), negatives + gold, dataset="tq"))
        answers[f"tq{i}"] = str(record["gold_answer"])
    return lists, answers


def test_positive_selection_gives_relevant_docids_and_the_consistency_score(engine, theoremqa, tmp_path):
    lists, answers = theoremqa
    answers_file = tmp_path / "answers.jsonl"
    answers_file.write_text("".join(json.dumps({"qid": q, "answer": a}) + "\n" for q, a in answers.items()))

    def teacher(messages, request):
        if "Reference answer:" in messages[-1]["content"]:
            return Answer(content="[3] [4]", reasoning_content="3 and 4 use the theorem")
        return Answer(content="[3] > [1] > [4] > [2]", reasoning_content="ranked")

    with OpenAIServer(teacher) as server:
        run_synth(config(server, candidate_file(tmp_path, lists), answers=str(answers_file), max_in_flight=2), engine)
        bodies = [r.body["messages"] for r in server.chat_requests]
    listwise = [m for m in bodies if len(m) > 1]
    pointwise = [m for m in bodies if len(m) == 1]
    assert len(listwise) == len(pointwise) == 3
    for cl in lists:  # the gold answer reaches the pointwise request only (docs/method.md §7)
        answer = answers[cl.query.qid]
        assert any(f"Reference answer: {answer}" in m[0]["content"] for m in pointwise)
        assert not any(f"Reference answer: {answer}" in turn["content"] for m in listwise for turn in m)
    stored = {qid: found[0] for qid, found in labels_by_qid(engine, "tq").items()}
    for cl in lists:
        label = stored[cl.query.qid]
        assert label.relevant_docids == cl.docids[2:]
        assert label.ranking == [cl.docids[i] for i in (2, 0, 3, 1)]
        assert label.consistency == pytest.approx(self_consistency(label.ranking, cl.docids[2:]))
        assert label.kept


def test_request_budget_stops_new_items_and_cost_follows_the_price_table(engine, noveleval, tmp_path):
    with OpenAIServer(lambda messages, request: Answer(content="[1] > [2]", reasoning_content="two words")) as server:
        cfg = config(
            server, candidate_file(tmp_path, noveleval), max_in_flight=4, max_requests=3, price_in=1.5, price_out=4.0
        )
        report = run_synth(cfg, engine)
        assert len(server.chat_requests) == 3
    summary = report.summary()
    stored = [found[0] for found in labels_by_qid(engine, "noveleval").values()]
    assert len(stored) == 3 and report.budget_spent and summary["not_started"] == 18
    assert summary["tokens_in"] == sum(label.tokens_in for label in stored) > 0
    assert summary["tokens_out"] == sum(label.tokens_out for label in stored) == 3 * 5
    assert summary["cost_usd"] == pytest.approx((summary["tokens_in"] * 1.5 + 15 * 4.0) / 1e6, abs=1e-6)
    assert "request budget spent, 18 items not started" in describe_synth(cfg, report)
    assert PRICES["deepseek-reasoner"].cost(1_000_000, 1_000_000) == pytest.approx(0.55 + 2.19)


def test_a_second_run_over_the_same_items_adds_nothing(engine, noveleval, tmp_path):
    lists = noveleval[:5]
    with OpenAIServer(lambda messages, request: Answer(content="[1] > [2]", reasoning_content="r")) as server:
        cfg = config(server, candidate_file(tmp_path, lists))
        run_synth(cfg, engine)
        again = run_synth(cfg, engine)
        assert len(server.chat_requests) == 5
    assert again.tally is None and again.already_labelled == 5
    assert describe_synth(cfg, again).startswith("nothing to label")
    assert sorted(len(found) for found in labels_by_qid(engine, "noveleval").values()) == [1] * 5
    # storing directly is refused too (the unique constraint): what two racing runs rely on
    first = labels_by_qid(engine, "noveleval")[lists[0].query.qid][0]
    label = LabelData(candidates=lists[0], ranking=lists[0].docids, source="teacher", model="test-model")
    assert store_label(engine, first.item_id, label, None, False, first.fingerprint) is False
    assert sorted(len(found) for found in labels_by_qid(engine, "noveleval").values()) == [1] * 5
    # another teacher configuration is another label per item
    with OpenAIServer(lambda messages, request: Answer(content="[2] > [1]", reasoning_content="r")) as server:
        run_synth(config(server, candidate_file(tmp_path, lists), temperature=0.0, status="any"), engine)
    assert sorted(len(found) for found in labels_by_qid(engine, "noveleval").values()) == [2] * 5
