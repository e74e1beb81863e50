"""Rerankers declared in configuration: parsed with clear messages, secrets only by name, and a
missing secret failing in its own Arena lane (the launched-Space test drives it through the page)."""

from __future__ import annotations

import json

import pytest

from reasonrank.arena import RerankerSpec, run_arena
from reasonrank.declared import ENV, declared_specs, parse_declared
from reasonrank.io import InputError
from reasonrank.types import CandidateList, Passage, Query
from reasonrank.window import WindowConfig

ENTRY = {
    "name": "ep",
    "backend": "openai",
    "model": "m",
    "base_url": "http://127.0.0.1:9/v1",
    "api_key_env": "RR_KEY_X",
}


def test_entries_become_specs_with_their_options():
    [spec] = parse_declared(json.dumps([ENTRY]), "cfg.json")
    assert (spec.name, spec.backend, spec.model, spec.secret_env) == ("ep", "openai", "m", "RR_KEY_X")
    assert spec.options == {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "RR_KEY_X"}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{**ENTRY, "api_key": "sk-literal-123"}], "cfg.json entry 1: field 'api_key' is not allowed"),
        ([{**ENTRY, "options": {"api_key": "sk-literal-123"}}], "field 'api_key' is not allowed"),
        ([{**ENTRY, "colour": "red"}], "entry 1: unknown field(s) colour"),
        ([ENTRY, {**ENTRY, "backend": "tpu"}], "entry 2 (ep): field 'backend' must be one of"),
        ([{"backend": "openai"}], "entry 1: field 'name' is required"),
        ([ENTRY, ENTRY], "names must be unique, repeated: ep"),
        ([{**ENTRY, "options": {"temperature": 1}}], "unknown option(s) temperature"),
        ({"name": "x"}, "expected a list"),
    ],
)
def test_bad_entries_are_refused_with_where_and_why(entries, message):
    with pytest.raises(InputError) as caught:
        parse_declared(json.dumps(entries), "cfg.json")
    assert message in str(caught.value)
    assert "sk-literal-123" not in str(caught.value)


def test_bad_json_names_line_and_column_and_yaml_files_work(tmp_path, monkeypatch):
    with pytest.raises(InputError, match=r"cfg.json: not valid JSON: .* line 2 column"):
        parse_declared('[\n{"name": }]', "cfg.json")
    path = tmp_path / "rerankers.yaml"
    path.write_text("- name: ep\n  backend: openai\n  model: m\n  api_key_env: RR_KEY_X\n", encoding="utf-8")
    monkeypatch.setenv(ENV, str(path))
    assert [spec.name for spec in declared_specs()] == ["ep"]
    monkeypatch.setenv(ENV, str(tmp_path / "absent.json"))
    with pytest.raises(InputError, match="absent.json not found"):
        declared_specs()


def test_missing_secret_fails_only_its_lane(monkeypatch):
    monkeypatch.delenv("RR_KEY_X", raising=False)
    [spec] = parse_declared(json.dumps([ENTRY]), "cfg.json")
    candidates = CandidateList(Query("q", "fleas"), [Passage(f"d{i}", f"fleas {i}") for i in range(3)])
    *_, last = run_arena(candidates, [spec, RerankerSpec("BM25", "bm25")], WindowConfig(window=3, step=1, top_k=3))
    failed, bm25 = last
    assert failed.status == "error" and "set the secret RR_KEY_X" in failed.error
    assert bm25.status == "done"
