"""The prompts the models see: ReasonRank's listwise reasoning prompt and the teacher's prompt.

The strings are compatibility constants, not style choices: the released ReasonRank checkpoints
were trained on exactly this text, so every byte (including the grammar slip "you first thinks")
is reproduced from the reference (docs/method.md §1 and §7). Passage and query
preprocessing follow the reference's order, because truncation and the `[n]` -> `(n)` rewrite interact
with the window-local `[i]` identifiers the model answers with.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import ftfy

from reasonrank.backends.base import TokenizerLike
from reasonrank.io import InputError
from reasonrank.types import Message, Passage

SYSTEM_PROMPT = (
    "You are RankLLM, an intelligent assistant that can rank passages based on their relevance "
    "to the query. Given a query and a passage list, you first thinks about the reasoning process "
    "in the mind and then provides the answer (i.e., the reranked passage list). The reasoning "
    "process and answer are enclosed within <think> </think> and <answer> </answer> tags, "
    "respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>."
)

_USER_PREFIX = (
    "I will provide you with {num} passages, each indicated by a numerical identifier []. "
    "Rank the passages based on their relevance to the search query: {query}.\n"
)
_USER_SUFFIX = (
    "Search Query: {query}.\nRank the {num} passages above based on their relevance to the search "
    "query. All the passages should be included and listed using identifiers, in descending order "
    "of relevance. The format of the answer should be [] > [], e.g., [2] > [1]."
)

# ReasonRank-8B (Qwen3-8B base, prompt_mode rank_GPT_qwen3): the model thinks on its own (Qwen3
# chat template), so the system turn is the short `system_prompt` of listwise_prompt_r1.toml and
# the answer tags move into the user turn's last paragraph (utils.add_post_prompt). The prefix is
# the same as the 7B/32B prompt's.
SYSTEM_PROMPT_QWEN3 = (
    "You are RankLLM, an intelligent assistant that can rank passages based on their relevance to the query."
)
_USER_SUFFIX_QWEN3 = (
    "Search Query: {query}.\nRank the {num} passages above based on their relevance to the search "
    "query. All the passages should be included and listed using identifiers, in descending order "
    "of relevance. The final ranked list should be enclosed within <answer> </answer> tags, i.e., "
    "<answer> ranked list here </answer>. The format of ranked list should be [] > [], e.g., "
    "[2] > [1]. Only respond with the ranking results, do not say any word or explain."
)
#: ReasonRank prompt modes: (system turn, user-turn suffix) per `prompt_mode` of the reference.
PROMPT_MODES = {
    "rank_GPT_reasoning": (SYSTEM_PROMPT, _USER_SUFFIX),
    "rank_GPT_qwen3": (SYSTEM_PROMPT_QWEN3, _USER_SUFFIX_QWEN3),
}

# Teacher (DeepSeek-R1) listwise labelling prompt, RankGPT multi-turn layout (docs/method.md §7).
# The paper's Fig. 8 elides words; they are filled in from ReasonRank's own R1 code path
# (rerank/rank_gpt.py, the branch used for deepseek models): R1 gets no system turn, so the
# "intelligent assistant" sentence opens the first user turn. That code's example ordering is
# "[2] > [1]" (the paper's Fig. 8 shows "[4] > [2]"); we follow the code, which is what runs.
# The original RankGPT wording ("You are RankGPT, …" as a system turn, "e.g., [1] > [2]")
# differs; the paper describes the R1 layout, with the intro as a user turn.
_TEACHER_INTRO = (
    "You are an intelligent assistant that can rank passages based on their relevance to the "
    "query. I will provide you with {num} passages, each indicated by number identifier []. "
    "\nRank the passages based on their relevance to query: {query}."
)
_TEACHER_ACK = "Okay, please provide the passages."
_TEACHER_RECEIVED = "Received passage [{i}]."
_TEACHER_FINAL = (
    "Search Query: {query}. \nRank the {num} passages above based on their relevance to the search "
    "query. The passages should be listed in descending order using identifiers. The most "
    "relevant passages should be listed first. The output format should be [] > [], e.g., "
    "[2] > [1]. Only response the ranking results, do not say any word or explain."
)

_BRACKETED_NUMBER = re.compile(r"\[(\d+)\]")
# ASCII text that ftfy can still change: HTML entities, \r line breaks, escape sequences and
# other control characters (tab, newline and form feed are kept by ftfy).
_FTFY_SENSITIVE_ASCII = re.compile(r"[&\x00-\x08\x0b\x0d-\x1f\x7f]")
# ftfy's own segment settings (ftfy.fix_text's defaults): each line is fixed on its own, and
# HTML unescaping ("auto") is switched off for the rest of the text at the first line with "<".
_FTFY_CONFIG = ftfy.TextFixerConfig(explain=False)
_FTFY_CONFIG_NO_HTML = _FTFY_CONFIG._replace(unescape_html=False)
_FTFY_SEGMENT = re.compile(r"[^\n]*\n|[^\n]+")  # a line with its "\n", or the unterminated tail


def _is_clean(text: str) -> bool:
    """True for text ftfy leaves alone: everything it repairs (mojibake, curly quotes,
    ligatures, entities, \r\n, control characters) needs a non-ASCII character or one of
    `_FTFY_SENSITIVE_ASCII`."""
    return text.isascii() and not _FTFY_SENSITIVE_ASCII.search(text)


def fix_text(text: str) -> str:
    """`ftfy.fix_text`, run only on the lines that need it.

    ftfy fixes text line by line (each segment ends after a "\n") and carries one piece of
    state from line to line: with unescape_html="auto", the first line containing "<" turns
    HTML unescaping off for the rest. We walk the lines the same way, carry the same state,
    and hand ftfy only the lines that are not clean ASCII, so a 5 KB prompt with two accented
    passages costs two short ftfy calls instead of one long one (ftfy's cost grows with the text).
    Text longer than ftfy's segment limit goes to ftfy whole, as it would split it itself.
    """
    if _is_clean(text):
        return text
    if len(text) > _FTFY_CONFIG.max_decode_length:
        return ftfy.fix_text(text)
    config = _FTFY_CONFIG
    fixed = []
    for line in _FTFY_SEGMENT.findall(text):
        if config is _FTFY_CONFIG and "<" in line:
            config = _FTFY_CONFIG_NO_HTML
        fixed.append(line if _is_clean(line) else ftfy.fix_text(line, config))
    return "".join(fixed)


def _unbracket_numbers(text: str) -> str:
    """`[12]` -> `(12)`: keeps passage/query text from looking like a window identifier."""
    return _BRACKETED_NUMBER.sub(r"(\1)", text)


def prepare_query(text: str) -> str:
    """The query as it appears in the prompt: bracketed numbers rewritten, then stripped."""
    return _unbracket_numbers(text).strip()


def prepare_passages(
    passages: Sequence[Passage], tokenizer: TokenizerLike | None = None, max_tokens: int = 512
) -> list[str]:
    """Passages as they appear in the prompt, in the reference's order (docs/method.md §1.2).

    Title fold -> strip -> ftfy -> truncate -> `[n]` -> `(n)`. With a tokenizer the text is cut
    to `max_tokens` model tokens (tokenize, keep the first N, convert back), as the reference
    does for the model that will read it; without one it is cut to `max_tokens`
    whitespace-separated words (RankLLM's word truncation, which also collapses whitespace).
    Taking a list lets an HF fast tokenizer encode all passages in one call (see
    `_tokenize_all`); the result is the same as preparing each passage on its own.
    """
    if max_tokens < 1:
        raise InputError(f"max_tokens must be at least 1, got {max_tokens}")
    texts = [fix_text(_title_folded(passage).strip()) for passage in passages]
    if tokenizer is None:
        cut = [" ".join(text.split()[:max_tokens]) for text in texts]
    else:
        cut = [tokenizer.convert_tokens_to_string(tokens[:max_tokens]) for tokens in _tokenize_all(tokenizer, texts)]
    return [_unbracket_numbers(text) for text in cut]


def prepare_passage(passage: Passage, tokenizer: TokenizerLike | None = None, max_tokens: int = 512) -> str:
    """One passage as it appears in the prompt (see `prepare_passages`)."""
    return prepare_passages([passage], tokenizer, max_tokens)[0]


def _title_folded(passage: Passage) -> str:
    if passage.title:
        return f"Title: {passage.title} Content: {passage.text}"
    return passage.text


def _tokenize_all(tokenizer: TokenizerLike, texts: list[str]) -> list[list[str]]:
    """`tokenizer.tokenize(text)` for every text.

    An HF fast tokenizer gets one batch call: `tokenize` is the same `_encode_plus` without
    special tokens, padding or truncation, and the Rust side then encodes the whole batch at
    once instead of paying Python call overhead per passage. Other tokenizers go one by one.
    """
    if not texts:
        return []
    if getattr(tokenizer, "is_fast", False):
        batch = tokenizer(  # type: ignore[operator]
            texts,
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return [encoding.tokens for encoding in batch.encodings]
    return [tokenizer.tokenize(text) for text in texts]


def build_messages(query: str, passages: list[str], mode: str = "rank_GPT_reasoning") -> list[Message]:
    """[system, user] for one window; `query` and `passages` must already be prepared.

    `mode` is the reference's `prompt_mode`: "rank_GPT_reasoning" (ReasonRank 7B/32B) or
    "rank_GPT_qwen3" (ReasonRank-8B).
    """
    if not passages:
        raise InputError("cannot build a ranking prompt for a window with no passages")
    if mode not in PROMPT_MODES:
        raise InputError(f"unknown prompt mode {mode!r}; choose one of: {', '.join(PROMPT_MODES)}")
    system, suffix = PROMPT_MODES[mode]
    num = len(passages)
    body = "".join(f"[{i}] {content}\n" for i, content in enumerate(passages, 1))
    user = _USER_PREFIX.format(num=num, query=query) + "\n" + body + suffix.format(num=num, query=query)
    return [Message(role="system", content=system), Message(role="user", content=user)]


def render_prompt(messages: list[Message], tokenizer: Any, fix: bool = True) -> str:
    """The exact text a local model is fed: chat template with generation prompt, then ftfy.

    The reference runs ftfy over the whole rendered string, so we do too (it can touch the
    template's own characters, not just the passages). `fix=False` skips ftfy, for methods whose
    reference renders with the chat template alone (vLLM's `LLM.chat`).
    """
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return fix_text(rendered) if fix else rendered


def build_teacher_messages(query: str, passages: list[str]) -> list[Message]:
    """The teacher's multi-turn listwise prompt: 2 + 2*num + 1 alternating user/assistant turns.

    Layout (docs/method.md §7): user intro, assistant "Okay, please provide the passages.", then per
    passage user `[i] {passage}` / assistant `Received passage [i].`, then the final user turn
    with the search query and output-format instruction. Words the paper elides are taken from
    ReasonRank's R1 code path (see the constants above). No reasoning is requested: the teacher
    is a reasoning model whose own trace becomes the label's reasoning chain.
    """
    if not passages:
        raise InputError("cannot build a teacher prompt for a window with no passages")
    num = len(passages)
    messages = [
        Message(role="user", content=_TEACHER_INTRO.format(num=num, query=query)),
        Message(role="assistant", content=_TEACHER_ACK),
    ]
    for i, content in enumerate(passages, 1):
        messages.append(Message(role="user", content=f"[{i}] {content}"))
        messages.append(Message(role="assistant", content=_TEACHER_RECEIVED.format(i=i)))
    messages.append(Message(role="user", content=_TEACHER_FINAL.format(num=num, query=query)))
    return messages
