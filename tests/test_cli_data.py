"""`reasonrank import | export | user | seed` as a user runs them: real subprocesses on a real
SQLite file, reviews saved through the db layer in between, exports read back with `datasets`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reasonrank.cli import config_to_command, parse_command
from reasonrank.cli.data import ExportConfig, ImportConfig, UserConfig

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "db" / "sample"
MALFORMED = REPO / "tests" / "fixtures" / "malformed"


def _cli(data_dir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "REASONRANK_DATA": str(data_dir), **(env or {})}
    full_env.pop("REASONRANK_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "reasonrank.cli", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def _db_digest(data_dir: Path) -> str:
    """Row counts of every table plus a hash of their content (order-independent)."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(f"sqlite:///{data_dir / 'reasonrank.db'}")
    parts = []
    with engine.connect() as connection:
        for table in sorted(inspect(engine).get_table_names()):
            rows = sorted(repr(tuple(row)) for row in connection.execute(text(f'SELECT * FROM "{table}"')))
            parts.append(f"{table}:{len(rows)}:" + hashlib.sha256("\n".join(rows).encode()).hexdigest())
    engine.dispose()
    return "\n".join(parts)


def test_import_review_export_round_trip(tmp_path):
    data = tmp_path / "data"
    run = SAMPLE / "trec-dl19"
    args = [
        "import",
        str(run / "rankvicuna7b_rerank_top20.run"),
        "--kind",
        "trec-run",
        "--candidates",
        str(run / "bm25_top100_with_text.json"),
        "--qrels",
        str(run / "qrels.txt"),
        "--run-depth",
        "20",
        "--dataset",
        "dl19",
        "--model",
        "RankVicuna-7B",
    ]
    first = _cli(data, *args)
    assert first.returncode == 0, first.stderr
    assert "43 new items" in first.stdout
    again = _cli(data, *args)
    assert again.returncode == 0 and "0 new items" in again.stdout and "43 already stored" in again.stdout

    from db.engine import get_engine
    from db.queue import next_item
    from db.reviews import save_review
    from db.users import add_user

    engine = get_engine(f"sqlite:///{data / 'reasonrank.db'}")
    add_user(engine, "ann", "annotator", "pw-ann-123")
    decisions = {}
    for decision in ("accept", "fix", "reject"):
        item = next_item(engine, "ann")
        ranking = list(reversed(item.teacher_ranking)) if decision == "fix" else None
        save_review(
            engine,
            item.item_id,
            "ann",
            decision,
            item.version,
            ranking=ranking,
            note="off topic" if decision == "reject" else None,
        )
        decisions[item.qid] = (decision, ranking or item.teacher_ranking)
    engine.dispose()

    exported = _cli(data, "export", "--format", "rl", "--name", "dl19-rl")
    assert exported.returncode == 0, exported.stderr
    path = data / "exports" / "dl19-rl.jsonl"
    assert f"wrote 2 rl rows to {path}" in exported.stdout

    import datasets

    rows = datasets.load_dataset("json", data_files=str(path), split="train")
    assert len(rows) == 2
    by_qid = {qid: ranking for qid, (decision, ranking) in decisions.items() if decision != "reject"}
    targets = sorted(tuple(row["teacher_list"]) for row in rows)
    assert targets == sorted(tuple(ranking) for ranking in by_qid.values())

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest in exported.stdout
    refused = _cli(data, "export", "--format", "rl", "--name", "dl19-rl")
    assert refused.returncode == 2 and "error:" in refused.stderr
    rewritten = _cli(data, "export", "--format", "rl", "--name", "dl19-rl", "--overwrite")
    assert rewritten.returncode == 0 and hashlib.sha256(path.read_bytes()).hexdigest() == digest

    # RankVicuna labels carry no reasoning: an SFT export says why it has nothing to write.
    sft = _cli(data, "export", "--format", "sft", "--name", "dl19-sft")
    assert sft.returncode == 2 and "error:" in sft.stderr
    assert "2 reviewed item(s) matched the filters, 2 left out; 2: no reasoning text" in sft.stderr
    assert "--allow-empty-reasoning" in sft.stderr and not (data / "exports" / "dl19-sft.jsonl").exists()
    empty = _cli(data, "export", "--format", "sft", "--name", "dl19-sft", "--allow-empty-reasoning")
    assert empty.returncode == 0, empty.stderr
    assert "wrote 2 sft rows" in empty.stdout and "2 reviewed item(s) matched the filters, 0 left out" in empty.stdout
    sft_rows = [json.loads(line) for line in (data / "exports" / "dl19-sft.jsonl").read_text().splitlines()]
    assert all(row["messages"][-1]["content"].startswith("<think></think>") for row in sft_rows)


@pytest.mark.parametrize("name", ["cand_duplicate_qid.jsonl", "cand_invalid_utf8.jsonl", "cand_empty_text.jsonl"])
def test_bad_import_lists_every_issue_and_writes_nothing(tmp_path, name):
    data = tmp_path / "data"
    assert _cli(data, "seed").returncode == 0
    before = _db_digest(data)
    result = _cli(data, "import", str(MALFORMED / name), "--kind", "candidates")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error:") and "nothing was written" in lines[-1]
    assert any(f"{name}:" in line for line in lines[:-1])
    assert "Traceback" not in result.stderr
    assert _db_digest(data) == before


def test_user_add_and_list(tmp_path):
    data = tmp_path / "data"
    added = _cli(data, "user", "add", "alice", "--role", "admin", "--password-env", "PW", env={"PW": "s3cret-pw"})
    assert added.returncode == 0, added.stderr
    assert "added admin alice" in added.stdout
    listed = _cli(data, "user", "list")
    assert listed.stdout.split() == ["alice", "admin"]
    duplicate = _cli(data, "user", "add", "alice", "--password-env", "PW", env={"PW": "x"})
    assert duplicate.returncode == 2 and duplicate.stderr.startswith("error:")
    no_password = _cli(data, "user", "add", "bob")
    assert no_password.returncode == 2 and "--password-env" in no_password.stderr

    from db.engine import get_engine
    from db.users import verify

    engine = get_engine(f"sqlite:///{data / 'reasonrank.db'}")
    assert verify(engine, "alice", "s3cret-pw") is not None
    assert verify(engine, "alice", "wrong") is None
    engine.dispose()
    assert b"s3cret-pw" not in (data / "reasonrank.db").read_bytes()


def test_seed_is_idempotent(tmp_path):
    data = tmp_path / "data"
    first = _cli(data, "seed")
    assert first.returncode == 0, first.stderr
    assert "trec-dl19: 43 new items" in first.stdout and "noveleval: 21 new items" in first.stdout
    second = _cli(data, "seed")
    assert "trec-dl19: 0 new items, 43 already there" in second.stdout


@pytest.mark.parametrize(
    "config",
    [
        ImportConfig(path="runs/x.run", kind="trec-run", candidates="c.json", run_depth=20, model="m"),
        ExportConfig(format="alpaca", name="n", datasets=["a", "b"], statuses=["fixed"], agreed_only=True),
        ExportConfig(name="n", allow_empty_reasoning=True, min_consistency=0.4),
        UserConfig(action="add", name="carol", role="admin", password_env="PW"),
    ],
)
def test_data_configs_round_trip_through_the_command_line(config):
    assert parse_command(config_to_command(config)) == config
