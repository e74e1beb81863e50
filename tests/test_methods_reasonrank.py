"""ReasonRank-8B (prompt_mode rank_GPT_qwen3): prompt byte for byte, sampling settings, and the
default method left exactly as it was.

Expected strings are written from github.com/8421BCD/ReasonRank at
06721fd6ef3766c0e00d59a87d2696a0b4b0c17a:
- listwise_prompt_r1.toml line 1 (`system_prompt`, the system turn of rank_GPT_qwen3);
- rerank/rank_listwise_os_llm.py lines 191-216 (`create_prompt`: system turn, prefix + "\\n",
  "[i] {content}\\n" per passage, post prompt, chat template, ftfy) and lines 123-130 (`run_llm_batched` sampling
  for rank_GPT_qwen3: temperature 0.6, top_p 0.95, top_k 20, min_p 0, reasoning_maxlen + 100);
- utils.py lines 61-63 (`add_prefix_prompt`), 78-80 (`add_post_prompt` for rank_GPT_qwen3),
  89-109 (`convert_doc_to_prompt_content`: strip, ftfy, tokenizer truncation, [n] -> (n));
- run_rank_llm.sh lines 78-99 (reasonrank-8B: window 20, step 10, top 100, reasoning_maxlen 3072).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from scripted_backend import ScriptedBackend

from reasonrank.bright import load_bright_task
from reasonrank.io import InputError
from reasonrank.methods import METHOD_NAMES, get_method, with_defaults
from reasonrank.prompts import build_messages, fix_text, prepare_passages, prepare_query
from reasonrank.types import GenerationParams
from reasonrank.window import WindowConfig, rerank, sliding_window

REPO = Path(__file__).resolve().parents[1]
QWEN3_SYSTEM = "You are RankLLM, an intelligent assistant that can rank passages based on their relevance to the query."
QWEN3_TAIL = (
    ".\nRank the {num} passages above based on their relevance to the search query. All the passages should be "
    "included and listed using identifiers, in descending order of relevance. The final ranked list should be "
    "enclosed within <answer> </answer> tags, i.e., <answer> ranked list here </answer>. The format of ranked "
    "list should be [] > [], e.g., [2] > [1]. Only respond with the ranking results, do not say any word or "
    "explain."
)


def test_qwen3_prompt_on_dl19(dl19):
    first = dl19[0]
    texts = [p.text for p in first.candidates[:2]]  # single-spaced, < 512 tokens: unchanged
    messages = build_messages(
        prepare_query(first.query.text), prepare_passages(first.candidates[:2]), mode="rank_GPT_qwen3"
    )
    assert messages[0] == {"role": "system", "content": QWEN3_SYSTEM}
    assert messages[1]["content"] == (
        "I will provide you with 2 passages, each indicated by a numerical identifier []. Rank the passages based "
        "on their relevance to the search query: how long is life cycle of flea.\n\n"
        f"[1] {texts[0]}\n[2] {texts[1]}\n"
        "Search Query: how long is life cycle of flea" + QWEN3_TAIL.format(num=2)
    )


def test_qwen3_prompt_on_bright_mini_truncates_in_model_tokens(tiny_model_dir):
    """Each passage cut to 16 tokens the way convert_doc_to_prompt_content cuts it."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    [first, *_] = load_bright_task(REPO / "db" / "sample" / "bright-mini", "theoremqa_questions").require_lists()
    window = first.candidates[:3]
    cut = [
        re.sub(
            r"\[(\d+)\]", r"(\1)", tokenizer.convert_tokens_to_string(tokenizer.tokenize(fix_text(p.text.strip()))[:16])
        )
        for p in window
    ]
    assert all(len(c) < len(p.text) for c, p in zip(cut, window))
    messages = build_messages(
        prepare_query(first.query.text), prepare_passages(window, tokenizer, 16), "rank_GPT_qwen3"
    )
    query = first.query.text
    assert messages[1]["content"] == (
        "I will provide you with 3 passages, each indicated by a numerical identifier []. Rank the passages based "
        f"on their relevance to the search query: {query}.\n\n[1] {cut[0]}\n[2] {cut[1]}\n[3] {cut[2]}\n"
        f"Search Query: {query}" + QWEN3_TAIL.format(num=3)
    )


def test_qwen3_defaults_are_the_reference_sampling():
    config = with_defaults("reasonrank-qwen3", WindowConfig())
    assert config.generation == GenerationParams(max_new_tokens=3172, temperature=0.6, top_p=0.95, top_k=20, min_p=0.0)
    assert (config.window, config.step, config.top_k, config.passes, config.max_passage_tokens) == (20, 10, 100, 1, 512)


def test_qwen3_runs_the_sliding_window_with_its_prompt_and_sampling(dl19):
    backend = ScriptedBackend()
    config = with_defaults("reasonrank-qwen3", WindowConfig(top_k=30))
    results = rerank(dl19[:2], backend, config)
    assert backend.calls == [2, 2]  # windows (10, 30) and (0, 20), both queries in each call
    assert all(batch[0][0]["content"] == QWEN3_SYSTEM for batch in backend.batches)
    assert all(call.method == "reasonrank-qwen3" for r in results for call in r.calls)
    assert results[0].calls[0].prompt == build_messages(
        prepare_query(dl19[0].query.text), prepare_passages(dl19[0].candidates[10:30]), "rank_GPT_qwen3"
    )


def test_the_default_method_is_the_unchanged_sliding_window(dl19):
    a, b = ScriptedBackend(), ScriptedBackend()
    via_method = rerank(dl19[:3], a, WindowConfig())
    direct = sliding_window(dl19[:3], b, WindowConfig())
    assert [r.ranking for r in via_method] == [r.ranking for r in direct]
    assert a.batches == b.batches and a.calls == [3] * 9
    assert get_method("reasonrank").defaults(WindowConfig()) == WindowConfig()


def test_every_method_is_registered_with_its_source():
    assert set(METHOD_NAMES) >= {"reasonrank", "reasonrank-qwen3", "rank1", "rank-r1", "rank-r1-v0.2"}
    for name in METHOD_NAMES:
        method = get_method(name)
        assert re.search(r"@[0-9a-f]{40}$", method.source), name


def test_unknown_method_and_prompt_mode_are_input_errors(dl19):
    with pytest.raises(InputError, match="unknown method 'nope'; choose one of: reasonrank"):
        rerank(dl19[:1], ScriptedBackend(), WindowConfig(method="nope"))
    with pytest.raises(InputError, match="unknown prompt mode"):
        build_messages("q", ["p"], mode="rank_GPT")
