"""The runner choice of the Synthesize and Eval tabs: every runner of the registry is offered, the
command shown is `reasonrank submit … --runner NAME` for a runner other than local, and a job
started with runner `ray` is submitted to a real Ray head (ray_fixtures) as a Ray job whose
progress, outputs and (synth) labels reach the app through the mirrored log."""

from __future__ import annotations

import shlex
import time

import pytest
from gradio_client import Client, handle_file
from openai_server import Answer, OpenAIServer
from ray_fixtures import ray_cluster  # noqa: F401 (fixture)
from sqlmodel import Session, select
from ui_fixtures import ADMIN, PASSWORD, review_app  # noqa: F401 (fixture)

from db.models import Dataset, Item, Label
from db.synth import dataset_names
from reasonrank.cli import parse_command
from reasonrank.runners import RUNNERS
from reasonrank.runners import ray as ray_runner

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
#: /eval_command's inputs up to the method: BRIGHT mini, BM25 only, seed 11
MINI_FORM = ["bright-mini", "", [], "BM25", "", "none (first stage only)", 20, 10, 100, "11", "", "", "reasonrank"]
RAY_SYNTH_DATASET = "ray-synth"


@pytest.fixture(scope="module")
def admin(review_app):
    url, _ = review_app
    return Client(url, auth=(ADMIN, PASSWORD), verbose=False)


@pytest.fixture
def on_ray(monkeypatch, ray_cluster, tmp_path):  # noqa: F811
    monkeypatch.setenv(ray_runner.ADDRESS_ENV, ray_cluster.address)
    monkeypatch.setenv(ray_runner.OUTPUT_ROOT_ENV, str(tmp_path / "cluster"))
    return ray_cluster


def synth_form(base_url: str, candidates, runner: str) -> list:
    """/synth_start's inputs: a candidate file named ray-synth, two lists, a local teacher, then the runner."""
    return [
        RAY_SYNTH_DATASET,
        "pending",
        "2",
        candidates,
        base_url,
        "test-model",
        "RAY_SYNTH_UNSET_KEY",
        "rankgpt",
        256,
        0.0,
        None,
        0.4,
        2,
        10,
        0,
        None,
        None,
        None,
        runner,
    ]


def _wait(client: Client, kind: str, job_id: int, timeout: float = 300.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        view = client.predict(job_id, api_name=f"/{kind}_job_view")
        if view["finished"] or time.monotonic() > deadline:
            return view
        time.sleep(0.5)


def _cluster_status(cluster, view: dict, timeout: float = 30.0) -> str:
    """The Ray job's status once terminal: the job's `end` event can arrive before its process exits."""
    from ray.job_submission import JobSubmissionClient

    client, sid = JobSubmissionClient(cluster.address), view["config"]["runner"]["submission_id"]
    deadline = time.monotonic() + timeout
    while True:
        status = str(client.get_job_info(sid).status.value)
        if status in ("SUCCEEDED", "FAILED", "STOPPED") or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


def _submitted(command: str) -> list[str]:
    """The argv `reasonrank submit --cmd …` runs, after checking that the shown command parses."""
    argv = shlex.split(command)
    assert argv[:2] == ["reasonrank", "submit"], command
    config = parse_command(argv)
    assert config.runner == "ray"
    return shlex.split(config.cmd)


def test_every_job_tab_offers_the_registry_runners(admin):
    components = {c["props"].get("elem_id"): c["props"] for c in admin.config["components"]}
    for tab in ("synth", "train", "eval"):
        choices = [choice[1] for choice in components[f"rr-{tab}-runner"]["choices"]]
        assert choices == list(RUNNERS) and components[f"rr-{tab}-runner"]["value"] == "local", tab


def test_eval_started_with_runner_ray_runs_as_a_ray_job(admin, on_ray):
    local = admin.predict(*MINI_FORM, "local", api_name="/eval_command")
    command = admin.predict(*MINI_FORM, "ray", api_name="/eval_command")
    assert local.startswith("reasonrank eval ") and "submit" not in local
    assert _submitted(command) == shlex.split(local)[1:]  # the same eval, handed to the runner
    job_id = int(admin.predict(*MINI_FORM, "mini on ray", "ray", api_name="/eval_start"))
    view = _wait(admin, "eval", job_id)
    assert view["status"] == "succeeded", (view["message"], view["log_tail"])
    runner = view["config"]["runner"]
    assert runner["name"] == "ray" and runner["address"] == on_ray.address
    assert _cluster_status(on_ray, view) == "SUCCEEDED"
    assert view["argv"][0] == "eval" and view["outputs"]["table"]  # the end event came through the log
    message, table = admin.predict(job_id, api_name="/eval_results")[:2]
    assert message.startswith(f"Job {job_id} succeeded") and table["data"], message


def test_synth_started_with_runner_ray_runs_as_a_ray_job(admin, review_app, on_ray, test_data):
    _, engine = review_app
    candidates = handle_file(str(test_data / "noveleval" / "candidates_with_text.json"))
    with OpenAIServer(
        lambda messages, request: Answer(content="[2] > [1]", reasoning_content="On the cluster.")
    ) as server:
        command = admin.predict(*synth_form(server.base_url, candidates, "ray"), api_name="/synth_command")
        assert _submitted(command)[:3] == ["synth", "--dataset", RAY_SYNTH_DATASET]
        job_id, message = admin.predict(*synth_form(server.base_url, candidates, "ray"), api_name="/synth_start")
        view = _wait(admin, "synth", int(job_id))
        assert len(server.chat_requests) == 2  # the worker called the teacher
    assert view["status"] == "succeeded", (view["message"], view["log_tail"])
    assert view["config"]["runner"]["name"] == "ray" and _cluster_status(on_ray, view) == "SUCCEEDED"
    assert view["progress"]["unit"] == "label" and view["progress"]["done"] == view["progress"]["total"] == 2
    # as the start message says: the worker sent its labels back and this app stored them in its store
    assert "not this app's store" not in message and "this app stores them" in message
    assert RAY_SYNTH_DATASET in dataset_names(engine)
    with Session(engine) as session:
        stored = session.exec(
            select(Label.reasoning, Item.status)
            .join(Item, Item.id == Label.item_id)
            .join(Dataset, Dataset.id == Item.dataset_id)
            .where(Dataset.name == RAY_SYNTH_DATASET)
        ).all()
    assert sorted(stored) == [("On the cluster.", "pending")] * 2  # in the Review queue, once each
    assert view["outputs"]["stored_by_app"] == {"stored": 2, "duplicates": 0, "refused": 0}
