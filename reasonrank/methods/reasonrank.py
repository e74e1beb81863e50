"""ReasonRank's listwise sliding window (8421BCD/ReasonRank), in its two prompt modes.

Source: github.com/8421BCD/ReasonRank at 06721fd6ef3766c0e00d59a87d2696a0b4b0c17a —
rerank/rank_listwise_os_llm.py (`create_prompt`, `run_llm_batched`), utils.py
(`add_prefix_prompt`, `add_post_prompt`, `convert_doc_to_prompt_content`),
listwise_prompt_r1.toml, rerank/rankllm.py (`_clean_response`, `receive_permutation`) and
run_rank_llm.sh (window 20, step 10, top 100, one pass, reasoning_maxlen 3072).

- "reasonrank" (liuwenhan/reasonrank-7B, -32B; Qwen2.5 base): prompt_mode rank_GPT_reasoning,
  greedy, 3072 + 100 new tokens. This is `reasonrank.window.sliding_window`, unchanged.
- "reasonrank-qwen3" (liuwenhan/reasonrank-8B; Qwen3-8B base): prompt_mode rank_GPT_qwen3 — the
  short system prompt, answer tags asked for in the user turn — and the reference's sampling
  settings for that mode: temperature 0.6, top-p 0.95, top-k 20, min-p 0, 3072 + 100 tokens. The
  reference sets no seed (vLLM then samples unseeded), so runs differ from each other unless
  `--seed` is given. The Qwen3 chat template is applied with its defaults (thinking on), as the
  reference's `apply_chat_template(..., add_generation_prompt=True)` does. The answer is read by
  the same parser as the 7B/32B model's (`reasonrank.parse`): `_clean_response` treats both
  modes alike.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from reasonrank.methods.base import Method, with_generation
from reasonrank.methods.budget import Thinking
from reasonrank.methods.listwise import sliding_window_runner

if TYPE_CHECKING:
    from reasonrank.window import ListwiseFormat, WindowConfig

SOURCE = "github.com/8421BCD/ReasonRank@06721fd6ef3766c0e00d59a87d2696a0b4b0c17a"
#: Under a reasoning budget the thought is closed as the prompt's format writes it; the answer
#: gets the 100 tokens the reference adds to its reasoning length (reasoning_maxlen + 100).
THINKING = Thinking(end="</think>", close="\n</think>\n<answer>", answer_tokens=100)


def _format_in(mode: str) -> ListwiseFormat:
    """ReasonRank's windows in one of its prompt modes (`prompts.PROMPT_MODES`)."""
    from reasonrank.window import reasonrank_format

    return reasonrank_format(mode)


def _qwen3_defaults(config: WindowConfig) -> WindowConfig:
    return with_generation(config, max_new_tokens=3072 + 100, temperature=0.6, top_p=0.95, top_k=20, min_p=0.0)


REASONRANK = Method(
    name="reasonrank",
    paradigm="listwise",
    summary="ReasonRank 7B/32B listwise sliding window (prompt_mode rank_GPT_reasoning), greedy",
    source=SOURCE,
    checkpoints=("liuwenhan/reasonrank-7B", "liuwenhan/reasonrank-32B"),
    run=sliding_window_runner(functools.partial(_format_in, "rank_GPT_reasoning")),
    thinking=THINKING,
)

REASONRANK_QWEN3 = Method(
    name="reasonrank-qwen3",
    paradigm="listwise",
    summary="ReasonRank-8B (Qwen3) listwise sliding window (prompt_mode rank_GPT_qwen3), sampled",
    source=SOURCE,
    checkpoints=("liuwenhan/reasonrank-8B",),
    run=sliding_window_runner(functools.partial(_format_in, "rank_GPT_qwen3")),
    defaults=_qwen3_defaults,
    thinking=Thinking(end="</think>", close="\n</think>\n\n<answer>", answer_tokens=100),
)
