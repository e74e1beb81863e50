"""The Data tab (imports, exports) through gradio_client against the running app, as admin and annotator."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from db_fixtures import make_label
from gradio_client import Client, handle_file
from sqlalchemy import inspect, text
from ui_fixtures import ADMIN, PASSWORD, review_app  # noqa: F401 (fixture)

from db.queue import QueueFilter, next_item
from db.reviews import save_review
from reasonrank.cli import parse_command
from reasonrank.cli.data import ImportConfig
from reasonrank.io import write_labels_jsonl

MALFORMED = Path(__file__).resolve().parent / "fixtures" / "malformed"
DATASET = "datatab"
# inputs of /import_file: upload, kind, dataset, run depth, model, candidate file, qrels file
# outputs of /import_file: command, message, issues, summary
CMD, MSG, ISSUES, SUMMARY = range(4)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Exports go to $REASONRANK_DATA/exports; the app runs in this process, so it sees this one."""
    folder = tmp_path_factory.mktemp("data-tab")
    old = os.environ.get("REASONRANK_DATA")
    os.environ["REASONRANK_DATA"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("REASONRANK_DATA")
    else:
        os.environ["REASONRANK_DATA"] = old


@pytest.fixture(scope="module")
def admin(review_app, data_dir):
    url, _ = review_app
    return Client(url, auth=(ADMIN, PASSWORD), verbose=False)


@pytest.fixture(scope="module")
def labels_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("labels") / "datatab_labels.jsonl"
    labels = [
        make_label(
            f"q{i}",
            [f"dt{i}-d{j}" for j in range(4)],
            relevant=[f"dt{i}-d{i % 4}"],
            dataset=DATASET,
            reasoning=f"[1] and [2] answer question {i}",
        )
        for i in range(3)
    ]
    write_labels_jsonl(labels, path)
    return path


def _counts(engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table: connection.execute(text(f'SELECT COUNT(*) FROM "{table}"')).scalar_one()
            for table in inspect(engine).get_table_names()
        }


def _import(client, path: Path, kind: str, dataset: str = ""):
    return client.predict(handle_file(str(path)), kind, dataset, None, "", None, None, api_name="/import_file")


def test_malformed_upload_lists_issues_and_writes_nothing(admin, review_app):
    _, engine = review_app
    before = _counts(engine)
    out = _import(admin, MALFORMED / "cand_duplicate_qid.jsonl", "candidates")
    assert "nothing was written" in out[MSG]
    assert "cand_duplicate_qid.jsonl:3: qid:" in out[ISSUES]
    assert out[SUMMARY] is None
    assert _counts(engine) == before
    bad_label = _import(admin, MALFORMED / "label_unknown_docid.jsonl", "labels")
    assert "label_unknown_docid.jsonl:2: ranking[1]:" in bad_label[ISSUES]
    assert _counts(engine) == before


def test_good_upload_imports_then_reimport_changes_nothing(admin, review_app, labels_file):
    _, engine = review_app
    first = _import(admin, labels_file, "labels", DATASET)
    assert first[ISSUES] == "" and first[SUMMARY]["items_created"] == 3, first[MSG]
    assert first[SUMMARY]["datasets"] == [DATASET] and "3 new items" in first[MSG]
    shown = parse_command(first[CMD])
    assert isinstance(shown, ImportConfig) and shown.kind == "labels" and shown.dataset == DATASET
    assert Path(shown.path).name == labels_file.name
    after_first = _counts(engine)
    again = _import(admin, labels_file, "labels", DATASET)
    assert again[SUMMARY]["items_created"] == 0 and again[SUMMARY]["items_unchanged"] == 3
    assert _counts(engine) == after_first


def test_command_preview_follows_the_form(admin):
    command = admin.predict(None, "trec-run", "dl19", 20, "RankVicuna-7B", None, None, api_name="/import_command")
    assert command == "reasonrank import --kind trec-run --dataset dl19 --run-depth 20 --model RankVicuna-7B"
    export = admin.predict("rl", "x", "a, b", ["fixed"], None, True, False, api_name="/export_command")
    assert export == "reasonrank export --format rl --name x --dataset a --dataset b --status fixed --agreed-only"


def test_export_after_review_downloads_the_reported_file(admin, review_app, labels_file, data_dir):
    _, engine = review_app
    _import(admin, labels_file, "labels", DATASET)
    for decision in ("accept", "fix", "reject"):
        item = next_item(engine, ADMIN, QueueFilter(dataset=DATASET))
        ranking = list(reversed(item.teacher_ranking)) if decision == "fix" else None
        save_review(
            engine,
            item.item_id,
            ADMIN,
            decision,
            item.version,
            ranking=ranking,
            note="off topic" if decision == "reject" else None,
        )
    out = admin.predict(
        "rl", "datatab-rl", DATASET, ["accepted", "fixed"], None, False, False, api_name="/write_export"
    )
    command, message, details, download, history = out
    assert command == f"reasonrank export --format rl --name datatab-rl --dataset {DATASET}"
    assert details["count"] == 2 and "wrote 2 rl rows" in message
    assert Path(details["written_to"]).parent == data_dir / "exports"
    content = Path(download).read_bytes()
    assert len(content.splitlines()) == 2
    assert hashlib.sha256(content).hexdigest() == details["sha256"]
    rows = history["data"] if isinstance(history, dict) else history
    assert rows[0][1] == "datatab-rl" and rows[0][4] == details["sha256"] and rows[0][6] == ADMIN
    with pytest.raises(Exception, match="already exists"):
        admin.predict("rl", "datatab-rl", DATASET, ["accepted", "fixed"], None, False, False, api_name="/write_export")


def test_annotator_is_refused(review_app, labels_file, data_dir):
    url, engine = review_app
    annotator = Client(url, auth=("other", PASSWORD), verbose=False)
    before = _counts(engine)
    with pytest.raises(Exception, match="not an admin"):
        _import(annotator, labels_file, "labels", "sneaky")
    with pytest.raises(Exception, match="not an admin"):
        annotator.predict("rl", "sneaky", "", ["accepted"], None, False, False, api_name="/write_export")
    with pytest.raises(Exception, match="not an admin"):
        annotator.predict(api_name="/past_exports")
    assert _counts(engine) == before
    assert not (data_dir / "exports" / "sneaky.jsonl").exists()
