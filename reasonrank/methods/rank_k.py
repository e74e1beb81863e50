"""Rank-K: listwise reasoning (QwQ-32B base) with sampled decoding and tie-aware answers.

Source: github.com/hltcoe/rank-k at ecdf232f239e2d7baa1671aab123abc9c484b7f3 — rerank.py
(`rank_k_prompt`, `rerank`, `parse_ranking_more`, `rerank_topic`) and utils.py
(`combine_passages`, `load_data`); the README's command: window 20, stride 10, depth 100,
passages cut to 450 tokens, temperature 0.5, at most 8000 new tokens (`--max-token`, a prefix of
the `--max-tokens` flag). Checkpoint: hltcoe/Rank-K-32B.

Prompt: one user turn, `rank_k_prompt.format(query=…, docs=…)` (it starts and ends with a
newline; several lines end in a space), the passages as "[i] {text}" joined by a blank line,
each cut to 450 tokens by `tokenizer.decode(tokenizer.encode(text)[:450])`. A passage is the
BRIGHT document's content, an ir_datasets document's default text, or "title text" from JSONL.

Parsing: the last line of the stripped reply; split on ">" into tiers and each tier on "=";
"[3]" -> 3; an id `int()` rejects or beyond the window is skipped; an id seen before ends the
parse; each passage scores 1 / (tier + 1), passages are sorted by score (stable, so a tie keeps
the answer's order) and every passage not named follows in window order. Reproduced quirk: "[0]"
names the window's last passage (Python's index -1).

What is not known from the code: the reference sends only temperature and max_tokens to a
`vllm serve` started without a reasoning parser, so top-p / top-k come from the server's
defaults (vLLM may load them from the checkpoint's generation_config); this backend sends top-p
1.0 unless told otherwise. Windows: the reference walks `range(depth, 0, -stride)` and slices
[end - window, end) even where that start is negative or beyond a short list (an empty or wrapped
window); here windows are `reasonrank.window.window_spans`, identical for lists of `depth` ≥
window passages in steps of the stride (top 100, 20, 10).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from reasonrank.backends.base import TokenizerLike
from reasonrank.methods.base import Method, with_generation
from reasonrank.methods.budget import Thinking
from reasonrank.methods.listwise import sliding_window_runner
from reasonrank.parse import ParsedRanking
from reasonrank.types import Message, Passage

if TYPE_CHECKING:
    from reasonrank.window import ListwiseFormat, WindowConfig

SOURCE = "github.com/hltcoe/rank-k@ecdf232f239e2d7baa1671aab123abc9c484b7f3"

PROMPT = (
    "\nDetermine a ranking of the passages based on how relevant they are to the query. \n"
    "If the query is a question, how relevant a passage is depends on how well it answers the question. \n"
    "If not, try analyze the intent of the query and assess how well each passage satisfy the intent. \n"
    "The query may have typos and passages may contain contradicting information. \n"
    "However, we do not get into fact-checking. We just rank the passages based on they relevancy to the query. \n"
    "\n"
    "Sort them from the most relevant to the least. \n"
    "Answer with the passage number using a format of `[3] > [2] > [4] = [1] > [5]`. \n"
    "Ties are acceptable if they are equally relevant. \n"
    "I need you to be accurate but overthinking it is unnecessary.\n"
    "Output only the ordering without any other text.\n"
    "\n"
    "Query: {query}\n"
    "\n"
    "{docs}\n"
)


def passage_text(passage: Passage, tokenizer: TokenizerLike | None, max_tokens: int) -> str:
    """The document text cut to `max_tokens`: encode, keep the first N ids, decode (words
    without a tokenizer)."""
    text = f"{passage.title} {passage.text}" if passage.title else passage.text
    encode, decode = getattr(tokenizer, "encode", None), getattr(tokenizer, "decode", None)
    if encode is None or decode is None:
        return " ".join(text.split()[:max_tokens])
    return decode(encode(text)[:max_tokens])


def prepare_passages(
    passages: Sequence[Passage], tokenizer: TokenizerLike | None = None, max_tokens: int = 450
) -> list[str]:
    return [passage_text(p, tokenizer, max_tokens) for p in passages]


def build_messages(query: str, passages: list[str]) -> list[Message]:
    docs = "\n\n".join(f"[{i}] {text}" for i, text in enumerate(passages, 1))
    return [Message(role="user", content=PROMPT.format(query=query, docs=docs))]


def parse_ranking(response: str, window_len: int) -> ParsedRanking:
    """`parse_ranking_more` on the last line, then the stable sort and the missing appended."""
    reasons: list[str] = []
    line = response.strip().split("\n")[-1]
    scores: dict[int, float] = {}
    out_of_range = False
    stopped = False
    for tier, part in enumerate(line.split(">")):
        for piece in part.split("="):
            label = piece.strip().replace("[", "").replace("]", "")
            try:
                pid = int(label)
            except ValueError:
                continue
            if not -window_len <= pid - 1 < window_len:
                out_of_range = True
                continue
            index = (pid - 1) % window_len
            if index in scores:
                stopped = True
                break
            scores[index] = 1 / (tier + 1)
        if stopped:
            break
    order = [index for index, _ in sorted(scores.items(), key=lambda item: -item[1])]
    missing = [i for i in range(window_len) if i not in scores]
    if stopped:
        reasons.append("duplicate_ids")
    if out_of_range:
        reasons.append("out_of_range")
    if missing:
        reasons.append("missing_ids")
    return ParsedRanking(order + missing, reasons, None, line)


def window_format() -> ListwiseFormat:
    """Rank-K's windows: its prompt and passage cut, the query as given, its tie-aware parser, no
    ftfy pass over the prompt."""
    from reasonrank.window import ListwiseFormat

    return ListwiseFormat(
        build=build_messages,
        prepare_query=lambda text: text,
        prepare_passages=prepare_passages,
        parse=parse_ranking,
        fix_text=False,
    )


def _defaults(config: WindowConfig) -> WindowConfig:
    config = replace(config, window=20, step=10, top_k=100, passes=1, max_passage_tokens=450)
    return with_generation(config, max_new_tokens=8000, temperature=0.5, top_p=1.0)


RANK_K = Method(
    name="rank-k",
    paradigm="listwise",
    summary="Rank-K listwise reasoning with ties, sliding window, sampled (temperature 0.5)",
    source=SOURCE,
    checkpoints=("hltcoe/Rank-K-32B",),
    run=sliding_window_runner(window_format),
    defaults=_defaults,
    # QwQ closes its thought with "</think>" and answers on the last line; the answer length is ours
    thinking=Thinking(end="</think>", close="\n</think>\n\n", answer_tokens=100),
)
