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
from ui.data import EXPORT_OUTPUTS, IMPORT_OUTPUTS

MALFORMED = Path(__file__).resolve().parent / "fixtures" / "malformed"
DATASET = "datatab"
# inputs of /import_file: upload, kind, dataset, run depth, model, candidate file, qrels file


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


def _import(client, path: Path, kind: str, dataset: str = "") -> dict:
    out = client.predict(handle_file(str(path)), kind, dataset, "", "", None, None, api_name="/import_file")
    return dict(zip(IMPORT_OUTPUTS, out))


def _export(client, fmt: str, name: str, datasets: str, statuses: list, without_reasoning: bool = False) -> dict:
    out = client.predict(fmt, name, datasets, statuses, "", False, without_reasoning, False, api_name="/write_export")
    return dict(zip(EXPORT_OUTPUTS, out))


def test_malformed_upload_lists_issues_and_writes_nothing(admin, review_app):
    _, engine = review_app
    before = _counts(engine)
    out = _import(admin, MALFORMED / "cand_duplicate_qid.jsonl", "candidates")
    assert "nothing was written" in out["message"] and "in cand_duplicate_qid.jsonl;" in out["message"]
    # the file is named as the admin named it, not by Gradio's temporary copy
    assert out["issues"].startswith("cand_duplicate_qid.jsonl:3: qid:"), out["issues"]
    assert "gradio" not in out["issues"] + out["message"] + out["command"]
    assert out["summary"] is None
    assert _counts(engine) == before
    bad_label = _import(admin, MALFORMED / "label_unknown_docid.jsonl", "labels")
    assert "label_unknown_docid.jsonl:2: ranking[1]:" in bad_label["issues"]
    assert _counts(engine) == before


def test_good_upload_imports_then_reimport_changes_nothing(admin, review_app, labels_file):
    _, engine = review_app
    first = _import(admin, labels_file, "labels", DATASET)
    assert first["issues"] == "" and first["summary"]["items_created"] == 3, first["message"]
    assert first["summary"]["datasets"] == [DATASET] and "3 new items" in first["message"]
    shown = parse_command(first["command"])
    assert isinstance(shown, ImportConfig) and shown.kind == "labels" and shown.dataset == DATASET
    assert shown.path == labels_file.name and shown.run_depth is None
    after_first = _counts(engine)
    again = _import(admin, labels_file, "labels", DATASET)
    assert again["summary"]["items_created"] == 0 and again["summary"]["items_unchanged"] == 3
    assert _counts(engine) == after_first


def test_command_preview_follows_the_form(admin):
    command = admin.predict(None, "trec-run", "dl19", "20", "RankVicuna-7B", None, None, api_name="/import_command")
    assert command == "reasonrank import --kind trec-run --dataset dl19 --run-depth 20 --model RankVicuna-7B"
    bad_depth = admin.predict(None, "trec-run", "", "0", "", None, None, api_name="/import_command")
    assert bad_depth.startswith("# not a valid form: Run depth") and "less than 1" in bad_depth
    export = admin.predict("rl", "x", "a, b", ["fixed"], "", True, False, False, api_name="/export_command")
    assert export == "reasonrank export --format rl --name x --dataset a --dataset b --status fixed --agreed-only"
    # an empty min consistency is no filter at all (0.0 would drop items without a score)
    assert "--min-consistency" not in export
    filtered = admin.predict("sft", "x", "", ["accepted"], "0.4", False, True, False, api_name="/export_command")
    assert filtered.endswith("--status accepted --min-consistency 0.4 --allow-empty-reasoning")


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
    out = _export(admin, "rl", "datatab-rl", DATASET, ["accepted", "fixed"])
    command, message, details, download, history = (out[name] for name in EXPORT_OUTPUTS)
    assert command == f"reasonrank export --format rl --name datatab-rl --dataset {DATASET}"
    assert details["count"] == 2 and "wrote 2 rl rows" in message
    assert Path(details["written_to"]).parent == data_dir / "exports"
    content = Path(download).read_bytes()
    assert len(content.splitlines()) == 2
    assert hashlib.sha256(content).hexdigest() == details["sha256"]
    rows = history["data"] if isinstance(history, dict) else history
    assert rows[0][1] == "datatab-rl" and rows[0][4] == details["sha256"] and rows[0][6] == ADMIN
    again = _export(admin, "rl", "datatab-rl", DATASET, ["accepted", "fixed"])
    assert again["message"].startswith("⚠️") and "already exists" in again["message"]
    assert hashlib.sha256(Path(details["written_to"]).read_bytes()).hexdigest() == details["sha256"]  # untouched


def test_annotator_is_refused(review_app, labels_file, data_dir):
    url, engine = review_app
    annotator = Client(url, auth=("other", PASSWORD), verbose=False)
    before = _counts(engine)
    with pytest.raises(Exception, match="not an admin"):
        _import(annotator, labels_file, "labels", "sneaky")
    with pytest.raises(Exception, match="not an admin"):
        _export(annotator, "rl", "sneaky", "", ["accepted"])
    with pytest.raises(Exception, match="not an admin"):
        annotator.predict(api_name="/past_exports")
    assert _counts(engine) == before
    assert not (data_dir / "exports" / "sneaky.jsonl").exists()
