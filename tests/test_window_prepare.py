"""Passage preparation ahead of the model: prompts prepared in a background thread equal the
synchronous and per-passage reference prompts, the thread uses its own tokenizer copy, and a
failing backend leaves no thread behind."""

from __future__ import annotations

import copy
import threading

import pytest
from scripted_backend import ScriptedBackend, window_passages

from reasonrank import prompts
from reasonrank.backends.base import BackendError
from reasonrank.window import WindowConfig, rerank


class RecordingTokenizer:
    """A real HF tokenizer behind the per-text `TokenizerLike` protocol that logs who uses it.

    Every `tokenize` call logs (id of this object, thread name) and every deep copy logs
    "copy" into one list shared by all copies; `copyable=False` makes deep copies fail.
    """

    def __init__(self, inner, log: list, copyable: bool = True) -> None:
        self.inner, self.log, self.copyable = inner, log, copyable

    def tokenize(self, text: str) -> list[str]:
        self.log.append((id(self), threading.current_thread().name))
        return self.inner.tokenize(text)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return self.inner.convert_tokens_to_string(tokens)

    def __deepcopy__(self, memo):
        if not self.copyable:
            raise TypeError("this tokenizer cannot be copied")
        self.log.append("copy")
        return RecordingTokenizer(copy.deepcopy(self.inner, memo), self.log)


@pytest.fixture(scope="module")
def qwen_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def length_key(text: str) -> float:
    """A ranker that reorders real passages deterministically: by length modulo 7."""
    return float(len(text) % 7)


def test_prepared_ahead_prompts_equal_synchronous_and_reference_prompts(dl19, qwen_tokenizer):
    config = WindowConfig(max_passage_tokens=40)
    ahead = ScriptedBackend(key=length_key, tokenizer=qwen_tokenizer)  # batched, in a thread
    results = rerank(dl19, ahead, config)
    log: list = []
    uncopyable = RecordingTokenizer(qwen_tokenizer, log, copyable=False)
    in_line = ScriptedBackend(key=length_key, tokenizer=uncopyable)
    assert [r.ranking for r in rerank(dl19, in_line, config)] == [r.ranking for r in results]
    assert ahead.batches == in_line.batches
    assert {thread for _, thread in log} == {threading.current_thread().name}  # no copy: in line
    # every prompt shows exactly the reference preparation of its window's passages
    by_docid = {p.docid: p for cl in dl19 for p in cl.candidates}
    for result in results:
        for call in result.calls:
            passages = [by_docid[d] for d in call.docids_before]
            expected = [prompts.prepare_passage(p, qwen_tokenizer, 40) for p in passages]
            assert window_passages(call.prompt) == expected
    assert sum(r.ranking[:20] != cl.docids[:20] for r, cl in zip(results, dl19)) > 30


def test_preparation_runs_in_one_thread_on_a_reused_private_copy(dl19, qwen_tokenizer):
    log: list = []
    original = RecordingTokenizer(qwen_tokenizer, log)
    backend = ScriptedBackend(key=length_key, tokenizer=original, latency_s=0.01)
    first = rerank(dl19[:5], backend, WindowConfig(max_passage_tokens=30))
    second = rerank(dl19[:5], backend, WindowConfig(max_passage_tokens=30))
    assert [r.ranking for r in first] == [r.ranking for r in second]
    calls = [entry for entry in log if entry != "copy"]
    assert log.count("copy") == 1  # copied once, then reused by the second rerank
    assert len(calls) == 2 * 5 * 100  # each shown passage tokenized once per rerank
    assert {thread.split("_")[0] for _, thread in calls} == {"reasonrank-prepare"}
    assert id(original) not in {owner for owner, _ in calls}


def test_a_failing_backend_stops_the_preparation_thread(dl19, qwen_tokenizer):
    log: list = []
    tokenizer = RecordingTokenizer(qwen_tokenizer, log)
    backend = ScriptedBackend(fault="short_batch", tokenizer=tokenizer)
    with pytest.raises(BackendError, match="returned 42 completions for 43 prompts"):
        rerank(dl19, backend)
    assert not [t for t in threading.enumerate() if t.name.startswith("reasonrank-prepare")]
    # the failed call gave its copy back: the next rerank makes none
    rerank(dl19[:2], ScriptedBackend(tokenizer=tokenizer))
    assert log.count("copy") == 1
