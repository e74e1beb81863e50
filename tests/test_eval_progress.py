"""Eval progress: model calls are reported as they finish, inside a window position, so a slow
(CPU) reranker shows movement within minutes-long positions; the figures are the rerank's own."""

from __future__ import annotations

import dataclasses

from scripted_backend import ScriptedBackend

from reasonrank.backends.base import BackendConfig
from reasonrank.evaluate import EvalConfig, evaluate, model_calls
from reasonrank.io import read_qrels, read_rank_llm_json, write_candidates_jsonl
from reasonrank.retrieve import CandidateSource
from reasonrank.window import WindowConfig


def _config(test_data, tmp_path, reranker: BackendConfig | None) -> tuple[EvalConfig, list]:
    root = test_data / "trec-dl19"
    lists = read_rank_llm_json(root / "bm25_top100_with_text.json", qrels=read_qrels(root / "qrels.txt"))[:7]
    for cl in lists:
        cl.candidates = cl.candidates[:30]
    write_candidates_jsonl(lists, tmp_path / "lists.jsonl")
    source = CandidateSource(name="dl19", candidates=str(tmp_path / "lists.jsonl"), qrels=str(root / "qrels.txt"))
    window = WindowConfig(window=20, step=10, top_k=30)
    return EvalConfig(trec=source, window=window, reranker=reranker), lists


def test_a_transformers_reranker_reports_each_batch_inside_a_window_position(test_data, tmp_path):
    config, lists = _config(test_data, tmp_path, BackendConfig(kind="transformers", model="m", batch_size=3))
    steps: list[tuple[int, int]] = []
    backend = ScriptedBackend()
    evaluate(config, backend=backend, on_step=lambda done, total: steps.append((done, total)))
    total = model_calls(lists, config.window)
    assert total == 7 * 2  # 30 passages, window 20, step 10: two windows per query
    # two positions of 7 prompts each, generated 3, 3, 1 at a time (the backend's own batch size)
    assert backend.calls == [3, 3, 1, 3, 3, 1]
    assert steps == [(3, total), (6, total), (7, total), (10, total), (13, total), (14, total)]


def test_other_backends_report_each_position_in_model_calls(test_data, tmp_path):
    config, lists = _config(test_data, tmp_path, None)
    steps: list[tuple[int, int]] = []
    backend = ScriptedBackend()
    evaluate(config, backend=backend, on_step=lambda done, total: steps.append((done, total)))
    assert backend.calls == [7, 7]  # one batched call per position, as without progress
    assert steps == [(7, 14), (14, 14)]
    two_passes = dataclasses.replace(config.window, passes=2)
    assert model_calls(lists, two_passes) == 28
