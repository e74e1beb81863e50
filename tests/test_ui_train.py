"""The Train tab through gradio_client: an admin trains from an export as a real job, watches its
curves and finds the registered model; an annotator is refused; cancel stops the process; the
reward debugger answers with the core reward's numbers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from gradio_client import Client
from train_fixtures import dl19_windows, write_rl_export, write_sft_export
from ui_fixtures import ADMIN, PASSWORD, USERS, review_app  # noqa: F401 (fixture)

from db.engine import data_dir
from db.exports import ExportFilter, record_export
from db.registry import get_reranker
from reasonrank import jobs
from reasonrank.export_files import ExportFile
from reasonrank.metrics import reward_terms

#: /train_start inputs: stage, preset, finetune, export id, data path, model, output dir, hyperparameters, resume,
#: register as
SHORT_RUN = "max_steps: 3\n"


@pytest.fixture(scope="module")
def admin(review_app):
    url, _ = review_app
    return Client(url, auth=(ADMIN, PASSWORD), verbose=False)


@pytest.fixture(scope="module")
def exports(review_app, dl19):
    """An SFT and an RL export of 6 DL19 windows, recorded in the app's store as an admin made them."""
    _, engine = review_app
    labels = dl19_windows(dl19, 6)
    folder = data_dir() / "exports"
    recorded = {}
    for kind, write in (("sft", write_sft_export), ("rl", write_rl_export)):
        path = write(labels, folder, f"train-tab-{kind}")
        lines = path.read_bytes().splitlines()
        record = record_export(
            engine, path.stem, kind, ExportFilter(), ExportFile(path, len(lines), "0" * 64), created_by=ADMIN
        )
        recorded[kind] = record
    return recorded


def _wait(client: Client, job_id: int, until, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        view = client.predict(job_id, api_name="/train_job_view")
        if until(view) or time.monotonic() > deadline:
            return view
        time.sleep(0.5)


def _form(export_id, model, out, hyper=SHORT_RUN, register_as="", finetune="full"):
    return ("sft", "tiny-cpu", finetune, str(export_id), "", str(model), str(out), hyper, False, register_as)


def test_admin_trains_from_an_export_and_finds_the_registered_model(
    admin, review_app, exports, tiny_model_dir, tmp_path
):
    _, engine = review_app
    form = _form(exports["sft"].id, tiny_model_dir, tmp_path / "run", register_as="tab-sft")
    command = admin.predict(*form, api_name="/train_command")
    assert f"reasonrank train sft --model {tiny_model_dir}" in command
    assert f"--data export:{exports['sft'].id}" in command and "--max-steps 3" in command
    assert "--learning-rate" not in command and "--finetune" not in command  # only what differs from the preset
    job_id = int(admin.predict(*form, api_name="/train_start"))
    view = _wait(admin, job_id, lambda v: v["finished"])
    assert view["status"] == "succeeded", view["log_tail"]
    assert [m["step"] for m in view["metrics"]] == [1, 2, 3]
    assert all(isinstance(m["loss"], float) and "lr" in m for m in view["metrics"])
    assert view["progress"]["done"] == view["progress"]["total"] == 3
    assert view["argv"][:2] == ["train", "sft"] and view["lineage"] == {"export_id": exports["sft"].id}
    reranker = get_reranker(engine, view["outputs"]["reranker_name"])
    assert reranker.name == "tab-sft" and reranker.source == "trained" and reranker.job_id == job_id
    assert reranker.lineage["export_id"] == exports["sft"].id and reranker.lineage["job_id"] == job_id
    assert reranker.backend == "transformers" and reranker.model == str(tmp_path / "run" / "final")
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()


def test_the_form_offers_qlora_as_a_flag_the_cli_reads(admin, exports, tiny_model_dir, tmp_path):
    from reasonrank.cli import parse_command
    from reasonrank.cli.train import resolve_run_config

    command = admin.predict(
        *_form(exports["sft"].id, tiny_model_dir, tmp_path / "run", finetune="qlora"), api_name="/train_command"
    )
    assert "--finetune qlora" in command
    argv = command.strip("`\n").split()[1:]  # drop the program name
    assert resolve_run_config(parse_command(argv)).finetune == "qlora"
    refused = admin.predict(
        *_form(exports["sft"].id, tiny_model_dir, tmp_path / "run", hyper="finetune: lora\n"), api_name="/train_command"
    )
    assert "set finetune with the form fields above" in refused


def test_an_annotator_cannot_launch_training(review_app, exports, tiny_model_dir, tmp_path):
    url, _ = review_app
    annotator = Client(url, auth=(USERS[0], PASSWORD), verbose=False)
    with pytest.raises(Exception, match="not an admin"):
        annotator.predict(*_form(exports["sft"].id, tiny_model_dir, tmp_path / "run"), api_name="/train_start")
    assert not (tmp_path / "run").exists()


def test_cancel_stops_the_training_process(admin, review_app, exports, tiny_model_dir, tmp_path):
    from db.jobs import refresh_job

    _, engine = review_app
    job_id = int(
        admin.predict(
            *_form(exports["sft"].id, tiny_model_dir, tmp_path / "run", hyper="max_steps: 100000\n"),
            api_name="/train_start",
        )
    )
    running = _wait(admin, job_id, lambda v: v["progress"] is not None or v["finished"], timeout=120)
    assert running["status"] == "running", running["log_tail"]
    cancelled = admin.predict(job_id, api_name="/train_job_cancel")
    assert cancelled["status"] == "cancelled"
    from sqlmodel import Session

    from db.models import Job

    with Session(engine) as session:
        pid = session.get(Job, job_id).pid
    assert not jobs.is_alive(pid)
    assert refresh_job(engine, job_id).status == "cancelled"


def test_reward_debugger_matches_the_core_reward(admin, exports, dl19):
    label = dl19_windows(dl19, 6)[1]  # three passages
    teacher = " > ".join(f"[{label.candidates.docids.index(d) + 1}]" for d in label.ranking)
    texts = [
        f"<think>ok</think>\n<answer>{teacher}</answer>",
        "<think>x</think><answer>[1] > [2]</answer>",
        "no tags at all",
    ]
    about, table, figures = admin.predict(
        str(exports["rl"].id), "", 1, "\n---\n".join(texts), 0.0, api_name="/reward_debug"
    )
    expected = [reward_terms(t, label.candidates.docids, label.ranking, label.relevant_docids).total for t in texts]
    assert figures["rewards"] == pytest.approx(expected)
    assert expected[1:] == [0.0, -1.0] and "Row 1: 3 passages" in about
    assert sum(figures["advantages"]) == pytest.approx(0.0, abs=1e-9)
    assert figures["advantages"][0] > 0 > figures["advantages"][2]


def test_reward_debugger_generates_a_group_with_a_registered_reranker(admin, review_app, exports, dl19):
    """A registry reranker (a real local OpenAI-compatible server) samples the group; every request
    carries the row's own prompt, and the debugger's totals are the core reward of what came back."""
    import itertools
    import json

    from openai_server import OpenAIServer

    from db.registry import add_reranker
    from reasonrank.metrics import ranking_reward

    label = dl19_windows(dl19, 6)[1]  # three passages
    rl_row = json.loads(Path(exports["rl"].path).read_text().splitlines()[1])
    answers = itertools.cycle(
        [
            "<think>teacher</think>\n<answer>{}</answer>".format(
                " > ".join(f"[{label.candidates.docids.index(d) + 1}]" for d in label.ranking)
            ),
            "<think>reverse</think><answer>[3] > [2] > [1]</answer>",
            "<think>short</think><answer>[1]</answer>",
            "no tags",
        ]
    )
    _, engine = review_app
    with OpenAIServer(responder=lambda messages, request: next(answers)) as server:
        add_reranker(engine, "debug-sampler", "openai", "test-model", {"base_url": server.base_url, "max_retries": 0})
        text = admin.predict(str(exports["rl"].id), "", 1, "debug-sampler", 4, 0.7, 64, api_name="/reward_generate")
        requests = list(server.chat_requests)
    texts = text.split("\n---\n")
    assert len(texts) == 4 and len(requests) == 4 and len(set(texts)) == 4
    assert all(r.body["messages"] == rl_row["prompt"] and r.body["temperature"] == 0.7 for r in requests)
    _, _, figures = admin.predict(str(exports["rl"].id), "", 1, text, 0.0, api_name="/reward_debug")
    n = len(texts)
    expected = ranking_reward(
        texts, [rl_row["initial_list"]] * n, [rl_row["teacher_list"]] * n, [rl_row["relevant_docids"]] * n
    )
    assert figures["rewards"] == pytest.approx(expected)
    assert sorted(expected)[:2] == [-1.0, 0.0] and max(expected) > 0  # the group spans every kind of answer
    with pytest.raises(Exception, match="choose a registered transformers or openai reranker"):
        admin.predict(str(exports["rl"].id), "", 1, "nobody", 2, 1.0, 64, api_name="/reward_generate")


def _job_count(engine) -> int:
    from sqlmodel import Session, func, select

    from db.models import Job

    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Job)).one()


def test_launch_refuses_what_cannot_run_before_starting_a_job(admin, review_app, exports, monkeypatch):
    _, engine = review_app
    before = _job_count(engine)
    started = time.monotonic()
    with pytest.raises(Exception, match="no base model given"):
        admin.predict(*_form(exports["sft"].id, "", ""), api_name="/train_start")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the app runs in this process
    with pytest.raises(Exception, match="not in the Hugging Face cache, and the hub cannot be reached"):
        admin.predict(*_form(exports["sft"].id, "example-org/never-downloaded-7b", ""), api_name="/train_start")
    assert time.monotonic() - started < 20  # not a minute of retries
    two_nodes = (*_form(exports["sft"].id, "", ""), "local", 1, 2, "ddp")  # runner, processes, nodes, strategy
    with pytest.raises(Exception, match="2 nodes need --main-address"):
        admin.predict(*two_nodes, api_name="/train_start")
    assert _job_count(engine) == before


def test_each_launch_gets_a_fresh_output_dir_and_no_job_stays_a_zombie(admin, review_app, exports, tiny_model_dir):
    """Two launches of one unchanged form (output directory left empty) write to two new folders;
    once they end, no job process is left unreaped under the app (which runs in this process)."""
    form = _form(exports["sft"].id, tiny_model_dir, "", hyper="max_steps: 1\n", register_as="fresh-dir")
    job_ids = [int(admin.predict(*form, api_name="/train_start")) for _ in range(2)]
    views = [_wait(admin, job_id, lambda v: v["finished"]) for job_id in job_ids]
    assert [v["status"] for v in views] == ["succeeded", "succeeded"], views[0]["log_tail"]
    dirs = [Path(v["argv"][v["argv"].index("--output-dir") + 1]) for v in views]
    assert dirs[0] != dirs[1] and all(d.parent == data_dir() / "runs" for d in dirs)
    assert all((d / "final").is_dir() for d in dirs)
    time.sleep(0.5)
    zombies = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            zombies.append(stat.parent.name)
    assert zombies == []


def test_show_job_takes_only_training_jobs(review_app, tmp_path):
    """ "Show job #": empty shows none, a training job is shown, any other kind is refused."""
    import gradio as gr

    from db.engine import write_session
    from db.models import Job
    from ui.train import show_job

    _, engine = review_app
    ids = {}
    for kind in ("train", "eval"):
        with write_session(engine) as session:
            job = Job(kind=kind, config={"argv": [kind]}, status="failed", metrics_path=str(tmp_path / "none.jsonl"))
            session.add(job)
            session.flush()
            ids[kind] = job.id
    assert show_job(engine, "") is None
    assert show_job(engine, str(ids["train"])) == ids["train"]
    with pytest.raises(gr.Error, match=f"job {ids['eval']} is not a training job"):
        show_job(engine, str(ids["eval"]))
    with pytest.raises(gr.Error, match="Show job #: 'x' is not a number"):
        show_job(engine, "x")


def test_a_multi_node_start_goes_to_a_runner_that_starts_every_node(
    admin, review_app, exports, tiny_model_dir, monkeypatch
):
    """Nodes 2 on the slurm runner is not the local refusal: the job is recorded and handed to the
    runner (here without a cluster configured, so the runner's own message fails it at once)."""
    monkeypatch.delenv("REASONRANK_SLURM_WORK_ROOT", raising=False)
    form = (*_form(exports["sft"].id, tiny_model_dir, ""), "slurm", 1, 2, "ddp")
    job_id = int(admin.predict(*form, api_name="/train_start"))
    view = _wait(admin, job_id, lambda v: v["finished"])
    assert view["status"] == "failed" and "REASONRANK_SLURM_WORK_ROOT" in view["message"], view["message"]
    assert view["argv"][view["argv"].index("--nodes") + 1] == "2" and "--main-address" not in view["argv"]
