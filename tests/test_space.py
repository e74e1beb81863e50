"""Hugging Face Space readiness: the README front matter a Space reads, and the data directory on
a Space's persistent storage (/data) when it has one."""

from __future__ import annotations

from pathlib import Path

import pytest

from db import engine as db_engine

REPO = Path(__file__).resolve().parents[1]


def _front_matter() -> dict[str, str]:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "---", "README.md must open with YAML front matter"
    end = lines.index("---", 1)
    return {key.strip(): value.strip().strip('"') for key, _, value in (line.partition(":") for line in lines[1:end])}


def test_readme_front_matter_names_what_a_space_needs():
    meta = _front_matter()
    assert meta["sdk"] == "gradio"
    assert (REPO / meta["app_file"]).is_file()
    assert meta["python_version"] == "3.11"
    assert meta["suggested_hardware"]


@pytest.fixture
def space_storage(tmp_path, monkeypatch):
    storage = tmp_path / "persistent"
    storage.mkdir()
    monkeypatch.setattr(db_engine, "SPACE_STORAGE", storage)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REASONRANK_DATA", raising=False)
    return storage


def test_space_with_storage_uses_it(space_storage, monkeypatch):
    monkeypatch.setenv("SPACE_ID", "someone/reasonrank-studio")
    assert db_engine.data_dir() == space_storage
    assert db_engine.database_url() == f"sqlite:///{space_storage.resolve() / 'reasonrank.db'}"


def test_explicit_data_dir_wins_over_space_storage(space_storage, monkeypatch, tmp_path):
    monkeypatch.setenv("SPACE_ID", "someone/reasonrank-studio")
    monkeypatch.setenv("REASONRANK_DATA", str(tmp_path / "chosen"))
    assert db_engine.data_dir() == tmp_path / "chosen"


def test_local_run_or_space_without_storage_uses_local_data(space_storage, monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert db_engine.data_dir() == Path("data")  # not a Space: /data is someone else's folder
    monkeypatch.setenv("SPACE_ID", "someone/reasonrank-studio")
    monkeypatch.setattr(db_engine, "SPACE_STORAGE", space_storage / "absent")  # a Space without storage
    assert db_engine.data_dir() == Path("data")
    assert not (space_storage / "absent").exists()
