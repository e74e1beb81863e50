"""REARANK: listwise reasoning over RankGPT-style turns, one passage a turn, sliding window.

Source: github.com/lezhang7/Rearank at abb4bd024b1ec65567f2a86195a62c3573d90d54 — rank_gpt.py
(`create_permutation_instruction_rearank`, `clean_response`, `receive_permutation`,
`sliding_windows_batch`, `process_rank_results_in_batches`, `run_retriever`), agent.py
(`QwenClient`: greedy, top-p 1, repetition penalty 1, 2048 new tokens) and run_evaluation.py
(the README's benchmark command, `--enable_thinking`, which selects the REARANK prompt for
le723z models; window 20, step 10, top 100). Checkpoint: le723z/Rearank-7B (Qwen2.5-7B base).

Prompt: system turn, a user instruction, the assistant's "Okay, please provide the passages.",
then per passage a user turn `[i] {text}` and an assistant turn `Received passage [i].`, then the
final user turn asking for <think> analysis and an <answer> ranking. The passage is
"Title: {title} Content: {text}" when the index has a title (run_retriever), whitespace
collapsed, "Title: Content: " removed, stripped, collapsed again and cut to its first 400
characters (not tokens). The query is used as given. The chat template is applied by the
tokenizer and the text sent to vLLM's `generate` (no ftfy).

Parsing (`clean_response`): the text inside the first <answer>…</answer> when there is an
<answer> (the whole response when it is not closed); then, if a "<think>" remains, what follows
the last "</think>"; digit runs become ids, ids `int()` rejects are skipped, duplicates dropped,
out-of-range ids dropped, missing ids appended in window order.

Differences, knowingly:
- The reference's windows come from `while start >= 0` over min(len(first query's hits), 100)
  for a whole batch of queries; here each query uses its own length. For a list shorter than
  the window the reference makes no call at all; so does this.
- Digit runs longer than 64 digits are treated as out of range without `int()` (they cannot
  be window ids; the reference skips them or drops them as out of range alike).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reasonrank.backends.base import TokenizerLike
from reasonrank.methods.base import Method, with_generation
from reasonrank.methods.budget import Thinking
from reasonrank.methods.listwise import sliding_window_runner
from reasonrank.parse import ParsedRanking
from reasonrank.types import Message, Passage

if TYPE_CHECKING:
    from reasonrank.window import ListwiseFormat, WindowConfig

SOURCE = "github.com/lezhang7/Rearank@abb4bd024b1ec65567f2a86195a62c3573d90d54"
MAX_CHARS = 400

SYSTEM = (
    "You are DeepRerank, an intelligent assistant that can rank passages based on their relevancy to the search "
    "query. You first thinks about the reasoning process in the mind and then provides the user with the answer."
)
# Three f-strings concatenated in the reference, so "query.Search" and "query.The" have no space.
INSTRUCTION = (
    "I will provide you with passages, each indicated by number identifier []. Rank the passages based on their "
    "relevance to the search query."
    "Search Query: {query}. \nRank the {num} passages above based on their relevance to the search query."
    "The passages should be listed in descending order using identifiers. The most relevant passages should be "
    "listed first. The output format should be <answer> [] > [] </answer>, e.g., <answer> [1] > [2] </answer>."
)
ACK = "Okay, please provide the passages."
RECEIVED = "Received passage [{i}]."
# A triple-quoted f-string in the reference: its source indentation (12 spaces) is part of the text.
FINAL = (
    'Please rank these passages according to their relevance to the search query: "{query}"\n'
    "            Follow these steps exactly:\n"
    "            1. First, within <think> tags, analyze EACH passage individually:\n"
    "            - Evaluate how well it addresses the query\n"
    "            - Note specific relevant information or keywords\n"
    "\n"
    "            2. Then, within <answer> tags, provide ONLY the final ranking in descending order of relevance "
    "using the format: [X] > [Y] > [Z]"
)


def passage_text(passage: Passage) -> str:
    """The passage as a window shows it: title fold, whitespace collapsed, first 400 characters."""
    content = f"Title: {passage.title} Content: {passage.text}" if passage.title is not None else passage.text
    content = " ".join(content.split())
    content = content.replace("Title: Content: ", "").strip()
    return " ".join(content.split())[:MAX_CHARS]


def prepare_passages(
    passages: Sequence[Passage], tokenizer: TokenizerLike | None = None, max_tokens: int = 0
) -> list[str]:
    """Window texts (character cut; the token budget is not REARANK's unit and is ignored)."""
    return [passage_text(p) for p in passages]


def build_messages(query: str, passages: list[str]) -> list[Message]:
    num = len(passages)
    messages = [
        Message(role="system", content=SYSTEM),
        Message(role="user", content=INSTRUCTION.format(query=query, num=num)),
        Message(role="assistant", content=ACK),
    ]
    for i, content in enumerate(passages, 1):
        messages.append(Message(role="user", content=f"[{i}] {content}"))
        messages.append(Message(role="assistant", content=RECEIVED.format(i=i)))
    messages.append(Message(role="user", content=FINAL.format(query=query)))
    return messages


_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_THINK = re.compile(r"<think>(.*?)(?:</think>|\Z)", re.DOTALL)
_MAX_DIGITS = 64


def parse_ranking(response: str, window_len: int) -> ParsedRanking:
    """`clean_response` + `receive_permutation`, with what had to be repaired as reasons."""
    reasons: list[str] = []
    text = response
    answer = None
    if "<answer>" in text:
        match = _ANSWER.search(text)
        text = match.group(1).strip() if match else text.strip()
        answer = text
    else:
        reasons.append("no_answer_tag")
    if "<think>" in response and "</think>" not in response:
        reasons.insert(0, "reasoning_truncated")
    if "<think>" in text:
        text = text.split("</think>")[-1]
    ids: list[int] = []
    duplicate = out_of_range = False
    for group in "".join(c if c.isdigit() else " " for c in text).split():
        if len(group) > _MAX_DIGITS:
            out_of_range = True
            continue
        try:
            value = int(group) - 1
        except ValueError:
            continue
        if value in ids:
            duplicate = True
        elif not 0 <= value < window_len:
            out_of_range = True
            ids.append(value)
        else:
            ids.append(value)
    order = [i for i in ids if 0 <= i < window_len]
    missing = [i for i in range(window_len) if i not in order]
    if duplicate:
        reasons.append("duplicate_ids")
    if out_of_range:
        reasons.append("out_of_range")
    if missing:
        reasons.append("missing_ids")
    think = _THINK.search(response)
    return ParsedRanking(order + missing, reasons, think.group(1).strip() if think else None, answer)


def rearank_spans(n: int, window: int, step: int, top_k: int) -> list[tuple[int, int]]:
    """`sliding_windows_batch`'s positions: from min(n, top_k) back, while the start is >= 0."""
    end = min(n, top_k)
    start = end - window
    spans = []
    while start >= 0:
        spans.append((start, end))
        end, start = end - step, start - step
    return spans


def window_format() -> ListwiseFormat:
    """REARANK's windows: one passage per turn cut to MAX_CHARS, the query as given, its parser,
    its window positions, no ftfy pass over the prompt."""
    from reasonrank.window import ListwiseFormat

    return ListwiseFormat(
        build=build_messages,
        prepare_query=lambda text: text,
        prepare_passages=prepare_passages,
        parse=parse_ranking,
        spans=rearank_spans,
        fix_text=False,
    )


def _defaults(config: WindowConfig) -> WindowConfig:
    """run_evaluation.py / QwenClient: window 20, step 10, top 100, greedy, 2048 new tokens."""
    from dataclasses import replace

    config = replace(config, window=20, step=10, top_k=100, passes=1)
    return with_generation(config, max_new_tokens=2048, temperature=0.0, top_p=1.0)


REARANK = Method(
    name="rearank",
    paradigm="listwise",
    summary="REARANK listwise reasoning, one passage per turn, sliding window, greedy",
    source=SOURCE,
    checkpoints=("le723z/Rearank-7B",),
    run=sliding_window_runner(window_format),
    defaults=_defaults,
    # the format the prompt asks for ("<answer> [] > [] </answer>"); the answer length is ours
    thinking=Thinking(end="</think>", close="\n</think>\n<answer>", answer_tokens=100),
)
