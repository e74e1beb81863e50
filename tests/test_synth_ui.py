"""The Synthesize tab through gradio_client on the running app: an admin launches a synth job and
polls it to success, an annotator is refused; the API key, given only as an environment
variable's name, is nowhere in the database file, the job's log and events, or an export."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from gradio_client import Client
from openai_server import Answer, Fault, OpenAIServer
from sqlmodel import Session, select
from ui_fixtures import ADMIN, PASSWORD, USERS, review_app  # noqa: F401 (fixture)

from db.importer import import_batch
from db.jobs import refresh_job
from db.models import Dataset, Item, Job, Label
from db.queue import QueueFilter, next_item
from db.reviews import save_review
from reasonrank.cli.data import ExportConfig, run_export
from reasonrank.imports import ImportBatch
from reasonrank.io import read_candidate_file, read_qrels

DATASET = "synthui"
SECRET = "sk-ui-test-6c1f0e9a-never-stored"


def form(base_url: str, **changes) -> list:
    """/synth_start's inputs in order: dataset, status, limit, candidates, base url, model, key env,
    prompt, max tokens, temperature, answers, alpha, in flight, timeout, retries, budget, prices."""
    values = dict(
        dataset=DATASET,
        status="pending",
        limit=None,
        candidates=None,
        base_url=base_url,
        model="test-model",
        api_key_env="SYNTH_UI_KEY",
        prompt="rankgpt",
        max_tokens=256,
        temperature=0.0,
        answers=None,
        alpha=0.4,
        max_in_flight=2,
        timeout_s=10,
        max_retries=2,
        max_requests=None,
        price_in=1.0,
        price_out=2.0,
    )
    values.update(changes)
    return list(values.values())


@pytest.fixture(scope="module")
def store(review_app, test_data):
    """Four NovelEval lists, without labels, in the app's store."""
    url, engine = review_app
    root = test_data / "noveleval"
    lists = read_candidate_file(root / "candidates_with_text.json", read_qrels(root / "qrels.txt"), DATASET)[:4]
    import_batch(
        engine, ImportBatch(labels=[], candidates=lists, qrels={}, dataset=DATASET, kind="candidates", issues=[])
    )
    return url, engine


def _poll(client: Client, job_id: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = client.predict(job_id, api_name="/synth_job_view")
        if view["finished"]:
            return view
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still running: {view}")


def _holds(path: Path, secret: str) -> bool:
    """Whether the file's bytes contain `secret`, read by another process: closing any descriptor
    of an open SQLite file drops this process's POSIX locks on it, and another process may then
    take itself for the last connection and remove the WAL under the app (a "disk I/O error")."""
    probe = "import sys; sys.exit(0 if sys.argv[2].encode() in open(sys.argv[1], 'rb').read() else 1)"
    return subprocess.run([sys.executable, "-c", probe, str(path), secret]).returncode == 0


def test_admin_runs_a_synth_job_and_the_key_is_never_stored(store, monkeypatch):
    url, engine = store
    monkeypatch.setenv("SYNTH_UI_KEY", SECRET)  # the app's environment: the job inherits it
    admin = Client(url, auth=(ADMIN, PASSWORD), verbose=False)
    with OpenAIServer(
        lambda messages, request: Answer(content="[2] > [1]", reasoning_content="The second one."), api_key=SECRET
    ) as server:
        command = admin.predict(*form(server.base_url), api_name="/synth_command")
        assert command.startswith("reasonrank synth --dataset synthui") and "--api-key-env SYNTH_UI_KEY" in command
        job_id, message = admin.predict(*form(server.base_url), api_name="/synth_start")
        view = _poll(admin, int(job_id))
        assert all(r.authorized for r in server.chat_requests) and len(server.chat_requests) == 4
    assert message == f"Started job {int(job_id)}."
    assert view["status"] == "succeeded", view["log_tail"]
    assert view["progress"]["unit"] == "label" and view["progress"]["done"] == view["progress"]["total"] == 4
    assert view["outputs"]["kept"] + view["outputs"]["filtered"] == 4 and view["outputs"]["tokens_out"] > 0
    assert view["outputs"]["cost_usd"] > 0 and view["argv"][:3] == ["synth", "--dataset", DATASET]

    with Session(engine) as session:
        labels = session.exec(
            select(Label)
            .join(Item, Item.id == Label.item_id)
            .join(Dataset, Dataset.id == Item.dataset_id)
            .where(Dataset.name == DATASET)
        ).all()
        job = session.get(Job, int(job_id))
    assert len(labels) == 4 and {label.reasoning for label in labels} == {"The second one."}

    # an export of a reviewed synthesized label carries the teacher's text, never the key
    item = next_item(engine, ADMIN, QueueFilter(dataset=DATASET))
    save_review(engine, item.item_id, ADMIN, "accept", item.version)
    export = run_export(ExportConfig(name="synth-key-check", datasets=[DATASET], statuses=["accepted"]), engine)
    exported = Path(export.file.path).read_bytes()
    assert b"The second one." in exported
    database = Path(engine.url.database)
    files = [database, *database.parent.glob(database.name + "-*"), Path(job.log_path), Path(job.metrics_path)]
    for path in files:  # the SQLite file with its WAL, the job's log and events
        assert not _holds(path, SECRET), path
    assert SECRET.encode() not in exported and SECRET not in str(job.config)
    assert refresh_job(engine, int(job_id)).status == "succeeded"


def test_an_annotator_cannot_start_synthesis(store):
    url, engine = store
    annotator = Client(url, auth=(USERS[0], PASSWORD), verbose=False)
    with Session(engine) as session:
        before = len(session.exec(select(Job.id)).all())
    with pytest.raises(Exception, match="not an admin"):
        annotator.predict(*form("http://127.0.0.1:9/v1"), api_name="/synth_start")
    with Session(engine) as session:
        assert len(session.exec(select(Job.id)).all()) == before


def test_an_admin_cancels_a_running_synth_job(store, monkeypatch):
    url, engine = store
    monkeypatch.setenv("SYNTH_UI_KEY", SECRET)
    admin = Client(url, auth=(ADMIN, PASSWORD), verbose=False)
    with Session(engine) as session:
        before = len(session.exec(select(Label.id)).all())
    with OpenAIServer(lambda messages, request: Fault(hang_s=60), api_key=SECRET) as server:
        job_id, _ = admin.predict(*form(server.base_url, status="any", temperature=0.3), api_name="/synth_start")
        deadline = time.monotonic() + 60
        while not server.chat_requests and time.monotonic() < deadline:
            time.sleep(0.2)
        assert admin.predict(int(job_id), api_name="/synth_job_view")["status"] == "running"
        view = admin.predict(int(job_id), api_name="/synth_job_cancel")
    assert view["status"] == "cancelled" and view["finished"], view
    assert view["message"] == "cancelled"  # the job's own end event: SIGTERM stopped the request loop
    with Session(engine) as session:
        assert len(session.exec(select(Label.id)).all()) == before


def test_an_unset_key_variable_is_named_when_the_job_starts(store, monkeypatch):
    """The newcomer's case: the key variable is not set where the app runs. The job still starts
    (a local teacher may need no key) and the start message names the variable."""
    url, _ = store
    monkeypatch.delenv("SYNTH_UI_UNSET_KEY", raising=False)
    admin = Client(url, auth=(ADMIN, PASSWORD), verbose=False)
    with OpenAIServer(lambda messages, request: Answer(content="[2] > [1]", reasoning_content="Keyless.")) as server:
        values = form(server.base_url, api_key_env="SYNTH_UI_UNSET_KEY", status="any", limit=1)
        job_id, message = admin.predict(*values, api_name="/synth_start")
        view = _poll(admin, int(job_id))
    assert message.startswith(f"Started job {int(job_id)}.")
    assert "SYNTH_UI_UNSET_KEY is not set where the app runs" in message
    assert view["status"] == "succeeded", view["log_tail"]
