"""The Eval tab through gradio_client against the running app: a real `reasonrank eval` job on the
BRIGHT mini set (BM25 only), its table checked against pytrec_eval on the run file the tab offers
for download, the official exclusions checked on that run, and the run on the leaderboard."""

from __future__ import annotations

import os
import shlex
import statistics
import time
from pathlib import Path

import pytest
from gradio_client import Client
from ui_fixtures import ADMIN, PASSWORD, review_app  # noqa: F401 (fixture)

from db.evalruns import leaderboard, record_eval_run
from db.jobs import launch_job
from reasonrank.bright import load_bright_task, read_examples
from reasonrank.bright_mini import MINI_TASK
from reasonrank.cli import parse_command
from reasonrank.io import read_qrels, read_trec_run
from reasonrank.reproduce import prompt_sha256
from ui.eval_config import mini_root
from ui.evaluate import RESULT_OUTPUTS

RUN_NAME = "mini bm25 (test)"
# inputs of /eval_start: dataset, BRIGHT dir, tasks, first stage, run file, reranker, window, step, top-k, seed,
# max new tokens, passage length, method, name (empty: the defaults)
MINI_FORM = ["bright-mini", "", [], "BM25", "", "none (first stage only)", 20, 10, 100, "11", "", "", "reasonrank"]


def _results(client: Client, job_id: int) -> dict:
    """/eval_results by output name (ui.evaluate.RESULT_OUTPUTS)."""
    return dict(zip(RESULT_OUTPUTS, client.predict(job_id, api_name="/eval_results")))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, test_data):
    """Jobs, eval outputs and the built mini set go to $REASONRANK_DATA; the app and its job
    subprocesses (which inherit the environment) both see this one."""
    folder = tmp_path_factory.mktemp("eval-tab")
    saved = {key: os.environ.get(key) for key in ("REASONRANK_DATA",)}
    os.environ["REASONRANK_DATA"] = str(folder)
    yield folder
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def admin(review_app, data_dir):
    url, _ = review_app
    return Client(url, auth=(ADMIN, PASSWORD), verbose=False)


def _wait(client: Client, job_id: int, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        view = client.predict(job_id, api_name="/eval_job_view")
        if view["finished"] or time.monotonic() > deadline:
            return view
        time.sleep(0.5)


@pytest.fixture(scope="module")
def finished(admin):
    """(job id, job view, /eval_results outputs) of one BM25-only eval job on the mini set."""
    job_id = int(admin.predict(*MINI_FORM, RUN_NAME, api_name="/eval_start"))
    view = _wait(admin, job_id)
    assert view["status"] == "succeeded", view["log_tail"]
    return job_id, view, _results(admin, job_id)


def test_form_shows_the_command_the_job_runs(admin, finished, data_dir):
    command = admin.predict(*MINI_FORM, api_name="/eval_command")
    config = parse_command(command)
    assert config.bright.root == str(mini_root()) and config.bright.tasks == [MINI_TASK]
    assert config.reranker is None and config.window.generation.seed == 11
    _, view, _ = finished
    ran = parse_command(["eval", *view["argv"][1:]])
    assert (ran.bright, ran.window) == (config.bright, config.window)
    assert shlex.split(command)[:2] == ["reasonrank", "eval"]


def test_table_ndcg10_equals_pytrec_eval_on_the_downloaded_run(finished, data_dir):
    pytrec_eval = pytest.importorskip("pytrec_eval")
    _, _, outputs = finished
    table = outputs["table"]
    row = dict(zip(table["headers"], table["data"][0]))
    assert (row["dataset"], row["stage"], row["queries"]) == (MINI_TASK, "first-stage", 194)
    mini = mini_root()
    excluded = {ex.qid: set(ex.excluded_ids) for ex in read_examples(mini / "examples" / f"{MINI_TASK}.jsonl")}
    qrels = {
        q: {d: g for d, g in rels.items() if d not in excluded[q]}
        for q, rels in read_qrels(mini / "qrels" / "qrels.bright-theoremqa-questions.txt").items()
    }
    run = read_trec_run(Path(outputs["run_file"]))  # the file the tab offers, as downloaded by the client
    assert len(run) == 194
    reference = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10"}).evaluate(
        {q: dict(hits) for q, hits in run.items()}
    )
    assert row["nDCG@10"] == round(100 * statistics.mean(v["ndcg_cut_10"] for v in reference.values()), 2)
    assert row["Recall@10"] == round(100 * statistics.mean(v["recall_10"] for v in reference.values()), 2)
    # excluded ids never reach the run, though 169 of them are in this corpus
    assert sum(len(ids) for ids in excluded.values()) >= 169
    assert all(not ({d for d, _ in hits} & excluded[q]) for q, hits in run.items())
    assert outputs["calls_file"] is None  # nothing was reranked, so no model calls


def test_outputs_say_how_to_reproduce_and_leaderboard_lists_the_run(admin, finished, review_app):
    job_id, view, outputs = finished
    reproduce = view["outputs"]["reproduce"]
    assert (reproduce["seed"], reproduce["window"], reproduce["step"], reproduce["top_k"]) == (11, 20, 10, 100)
    assert reproduce["prompt_sha256"] == prompt_sha256()
    assert reproduce["prompt_sha256"][:16] in outputs["reproduce"] and "excluded_ids" in outputs["reproduce"]
    _, engine = review_app
    run = record_eval_run(engine, job_id)
    assert run is not None and record_eval_run(engine, job_id).id == run.id  # one EvalRun per job
    assert run.name == RUN_NAME and run.reproduce == reproduce and Path(run.run_path).is_file()
    table = dict(zip(outputs["table"]["headers"], outputs["table"]["data"][0]))
    board = admin.predict(api_name="/eval_refresh")[1]
    mine = [dict(zip(board["headers"], r)) for r in board["data"] if r[board["headers"].index("job")] == job_id]
    assert len(mine) == 1 and mine[0]["nDCG@10"] == table["nDCG@10"] and mine[0]["reranker"] == "first stage only"
    assert mine[0]["method"] == "–" and mine[0]["calls / query"] is None  # nothing reranked: no method, no costs
    # the chart compares the leaderboard's runs: a first-stage and a final bar for each
    runs_shown = min(len(leaderboard(engine)), 12)
    assert outputs["chart"].count('class="rr-bar"') == 2 * runs_shown and RUN_NAME in outputs["chart"]
    best = leaderboard(engine, dataset=MINI_TASK)
    assert [r.final for r in best] == sorted((r.final for r in best), reverse=True)
    # the public Leaderboard tab shows the same run to anyone, annotators included, and draws its charts
    url, _ = review_app
    public_board, public_chart, public_frontier = Client(url, auth=("rev", PASSWORD), verbose=False).predict(
        api_name="/leaderboard"
    )
    shown = [dict(zip(public_board["headers"], r)) for r in public_board["data"]]
    assert [r["nDCG@10"] for r in shown if r["job"] == job_id] == [table["nDCG@10"]]
    assert public_chart.count('class="rr-bar"') == 2 * runs_shown and "rr-chart" in public_frontier


def test_annotators_cannot_start_and_failed_jobs_are_not_recorded(review_app, data_dir, admin):
    url, engine = review_app
    annotator = Client(url, auth=("rev", PASSWORD), verbose=False)
    with pytest.raises(Exception, match="not an admin"):
        annotator.predict(*MINI_FORM, "sneaky", api_name="/eval_start")
    with pytest.raises(Exception, match="BRIGHT directory"):
        admin.predict(
            "bright",
            "",
            [MINI_TASK],
            "BM25",
            "",
            "none (first stage only)",
            20,
            10,
            100,
            "",
            "",
            "",
            "reasonrank",
            "",
            api_name="/eval_start",
        )
    with pytest.raises(Exception, match="seed must be a whole number"):
        admin.predict(*MINI_FORM[:-4], "seven", "", "", "reasonrank", "", api_name="/eval_start")
    with pytest.raises(Exception, match="max new tokens: 0 is less than 1"):
        admin.predict(*MINI_FORM[:-3], "0", "", "reasonrank", "", api_name="/eval_start")
    with pytest.raises(Exception, match="rank9 is not in the list of choices"):
        admin.predict(*MINI_FORM[:-1], "rank9", "", api_name="/eval_start")
    database = Path(engine.url.database)
    for private in (database, Path(f"{database}-wal"), data_dir / "initial-admin-password.txt"):
        with pytest.raises(Exception, match="may not be the app's database or one of its own private files"):
            admin.predict(*MINI_FORM[:3], "TREC run file", str(private), *MINI_FORM[5:], "", api_name="/eval_start")
    job_id = launch_job(
        engine, "eval", ["eval", "--bright-root", str(data_dir / "absent"), "--task", MINI_TASK], {"form": "eval"}
    )
    view = _wait(admin, job_id)
    assert view["status"] == "failed" and "no BRIGHT examples" in view["message"]
    assert record_eval_run(engine, job_id) is None
    message = _results(admin, job_id)["message"]
    assert f"Job {job_id} failed" in message


def test_registry_reranker_reranks_and_its_calls_are_offered(admin, review_app, data_dir):
    """An OpenAI-compatible reranker from the registry (a real local server that answers every window
    with the reverse order): the job reranks the BM25 top-20, the run and calls are offered."""
    from openai_server import OpenAIServer

    from db.registry import add_reranker

    def reverse(messages, request) -> str:
        count = int(messages[-1]["content"].split("I will provide you with ")[1].split()[0])
        return "<think>reverse</think><answer>" + " > ".join(f"[{i}]" for i in range(count, 0, -1)) + "</answer>"

    _, engine = review_app
    with OpenAIServer(responder=reverse) as server:
        add_reranker(
            engine,
            "eval-tab-reverse",
            "openai",
            "test-model",
            {"base_url": server.base_url, "max_retries": 2, "max_in_flight": 4, "timeout_s": 60.0},
        )
        admin.predict(api_name="/eval_refresh")
        job_id = int(
            admin.predict(
                "bright-mini",
                "",
                [],
                "BM25",
                "",
                "eval-tab-reverse",
                20,
                10,
                20,
                "",
                "64",
                "128",
                "reasonrank",
                "",
                api_name="/eval_start",
            )
        )
        view = _wait(admin, job_id)
    assert view["status"] == "succeeded", view["log_tail"]
    outputs = _results(admin, job_id)
    stages = [dict(zip(outputs["table"]["headers"], r))["stage"] for r in outputs["table"]["data"]]
    assert stages == ["first-stage", "reranked"]
    reranked = read_trec_run(Path(outputs["run_file"]))
    bm25 = load_bright_task(mini_root(), MINI_TASK, top_k=20).run
    assert {q: [d for d, _ in hits] for q, hits in reranked.items()} == {
        q: [d for d, _ in hits][::-1] for q, hits in bm25.items()
    }
    assert Path(outputs["calls_file"]).read_text().count("\n") == 194  # one window per query
    assert view["outputs"]["reproduce"]["backend"] == "openai"
    assert "--max-passage-tokens 128 --max-new-tokens 64" in " ".join(view["argv"])
    assert view["progress"]["unit"] == "model call" and view["progress"]["done"] == view["progress"]["total"] == 194
    board = admin.predict(api_name="/eval_refresh")[1]
    mine = [dict(zip(board["headers"], r)) for r in board["data"] if r[board["headers"].index("job")] == job_id]
    assert mine[0]["reranker"] == "eval-tab-reverse"


@pytest.mark.parametrize("dataset, name, queries", [("dl19", "trec-dl19", 43), ("noveleval", "noveleval", 21)])
def test_bundled_sets_give_runnable_commands(admin, dataset, name, queries):
    from reasonrank.evaluate import evaluate

    command = admin.predict(
        dataset,
        "",
        [],
        "BM25",
        "",
        "none (first stage only)",
        20,
        10,
        100,
        "",
        "",
        "",
        "reasonrank",
        api_name="/eval_command",
    )
    config = parse_command(command)
    assert config.trec.name == name and config.rel_level == (2 if dataset == "dl19" else 1)  # TREC: grade 2+ relevant
    (scores,) = evaluate(config).scores
    assert len(scores.per_query) == queries and 0 < scores.mean["ndcg@10"] < 1
