"""Prompts: byte-exact ReasonRank text, preprocessing order, rendering and the teacher prompt."""

from __future__ import annotations

import re

import ftfy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonrank.io import InputError, read_rank_llm_json
from reasonrank.prompts import (
    SYSTEM_PROMPT,
    build_messages,
    build_teacher_messages,
    fix_text,
    prepare_passage,
    prepare_query,
    render_prompt,
)
from reasonrank.types import Passage

# Written out by hand from docs/method.md §1.1 (grammar slip "you first thinks" included).
EXPECTED_SYSTEM = (
    "You are RankLLM, an intelligent assistant that can rank passages based on their relevance to "
    "the query. Given a query and a passage list, you first thinks about the reasoning process in "
    "the mind and then provides the answer (i.e., the reranked passage list). The reasoning process "
    "and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, "
    "i.e., <think> reasoning process here </think> <answer> answer here </answer>."
)
EXPECTED_USER = (
    "I will provide you with 3 passages, each indicated by a numerical identifier []. Rank the "
    "passages based on their relevance to the search query: what is (1) a flea?.\n"
    "\n"
    "[1] Title: Flea Content: Fleas live up to a year.\n"
    "[2] See reference (2) for the cycle.\n"
    "[3] The café sells flea powder.\n"
    "Search Query: what is (1) a flea?.\n"
    "Rank the 3 passages above based on their relevance to the search query. All the passages "
    "should be included and listed using identifiers, in descending order of relevance. The "
    "format of the answer should be [] > [], e.g., [2] > [1]."
)
WINDOW = [
    Passage("d1", "Fleas live up to a year.", title="Flea"),
    Passage("d2", "  See reference [2] for the cycle.\n"),
    Passage("d3", "The cafÃ© sells flea powder."),  # mojibake that ftfy repairs
]
CHATML = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"
)


@pytest.fixture(scope="module")
def dl19_texts(test_data) -> list[str]:
    lists = read_rank_llm_json(test_data / "trec-dl19" / "bm25_top100_with_text.json")
    return [p.text for cl in lists for p in cl.candidates]


@pytest.fixture(scope="module")
def tokenizer(dl19_texts):
    """A real byte-level BPE (Qwen2 pre-tokenizer pipeline) trained on DL19 passages."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    split = (
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
        r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
    )
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=2000, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(dl19_texts[:1500], trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.chat_template = CHATML
    return tok


def _window_messages():
    return build_messages(prepare_query("  what is [1] a flea?  "), [prepare_passage(p) for p in WINDOW])


def test_reasonrank_prompt_is_byte_identical_to_the_spec() -> None:
    messages = _window_messages()
    assert SYSTEM_PROMPT == EXPECTED_SYSTEM
    assert messages == [
        {"role": "system", "content": EXPECTED_SYSTEM},
        {"role": "user", "content": EXPECTED_USER},
    ]


def test_render_applies_the_chat_template_and_fixes_text(tokenizer) -> None:
    messages = _window_messages()
    rendered = render_prompt(messages, tokenizer)
    assert rendered == (
        f"<|im_start|>system\n{EXPECTED_SYSTEM}<|im_end|>\n"
        f"<|im_start|>user\n{EXPECTED_USER}<|im_end|>\n<|im_start|>assistant\n"
    )
    raw = [{"role": "user", "content": "a cafÃ© query"}]
    assert "a café query" in render_prompt(raw, tokenizer)


def test_tokenizer_truncation_keeps_a_prefix_of_at_most_n_tokens(tokenizer, dl19_texts) -> None:
    words = " ".join(dl19_texts).split()[:600]
    passage = Passage("long", " ".join(words))
    assert len(tokenizer.tokenize(passage.text)) > 512
    cut = prepare_passage(passage, tokenizer, 512)
    assert len(tokenizer.tokenize(cut)) <= 512
    assert len(cut) > len(passage.text) // 3
    assert passage.text.startswith(cut)
    short = Passage("short", dl19_texts[0])
    assert prepare_passage(short, tokenizer, 512) == prepare_passage(short)


def test_word_truncation_without_a_tokenizer(dl19_texts) -> None:
    words = " ".join(dl19_texts).split()[:600]
    cut = prepare_passage(Passage("long", "\n ".join(words)), None, 512)
    assert cut == " ".join(words[:512])


def test_title_is_folded_before_truncation_and_brackets_rewritten() -> None:
    passage = Passage("p", "  one [7] three four  ", title="Fleas")
    assert prepare_passage(passage, None, 5) == "Title: Fleas Content: one (7)"
    assert prepare_passage(Passage("p", "x", title=""), None, 5) == "x"
    assert prepare_query("  a [12] b [x] \n") == "a (12) b [x]"


def test_bad_inputs_are_input_errors() -> None:
    with pytest.raises(InputError, match="no passages"):
        build_messages("q", [])
    with pytest.raises(InputError, match="max_tokens"):
        prepare_passage(Passage("p", "x"), None, 0)
    with pytest.raises(InputError, match="no passages"):
        build_teacher_messages("q", [])


def test_teacher_prompt_structure_and_strings() -> None:
    messages = build_teacher_messages("how long do fleas live", ["alpha text", "beta text"])
    assert len(messages) == 2 + 2 * 2 + 1
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3 + ["user"]
    assert [m["content"] for m in messages] == [
        "You are an intelligent assistant that can rank passages based on their relevance to the "
        "query. I will provide you with 2 passages, each indicated by number identifier []. \n"
        "Rank the passages based on their relevance to query: how long do fleas live.",
        "Okay, please provide the passages.",
        "[1] alpha text",
        "Received passage [1].",
        "[2] beta text",
        "Received passage [2].",
        "Search Query: how long do fleas live. \nRank the 2 passages above based on their relevance "
        "to the search query. The passages should be listed in descending order using "
        "identifiers. The most relevant passages should be listed first. The output format should "
        "be [] > [], e.g., [2] > [1]. Only response the ranking results, do not say any word or "
        "explain.",
    ]


# --- the ftfy fast path must never change what the model sees -------------------------------


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=200))
def test_fix_text_fast_path_equals_ftfy_on_any_ascii(text):
    assert fix_text(text) == ftfy.fix_text(text)


def test_fix_text_equals_ftfy_on_real_passages(test_data):
    from reasonrank.io import read_rank_llm_json

    texts = [
        p.text
        for name in ("trec-dl19/bm25_top100_with_text.json", "noveleval/candidates_with_text.json")
        for cl in read_rank_llm_json(test_data / name)
        for p in cl.candidates
    ]
    assert len(texts) > 4000
    assert [fix_text(t) for t in texts] == [ftfy.fix_text(t) for t in texts]


# --- the per-line ftfy walk and the batched truncation equal the slow reference -------------
from reasonrank.prompts import prepare_passages  # noqa: E402

# Pieces that exercise every ftfy rule and its cross-line state: "<" turns HTML unescaping off
# for the rest of the text, "&amp;" is unescaped only before that, \r / \r\n are line breaks
# inside a segment, plus mojibake, curly quotes, ligatures, wide forms and escape sequences.
FTFY_PIECES = [
    "plain words ",
    "<b>",
    "<",
    ">",
    "&amp;",
    "&lt;",
    "&eacute;",
    "&",
    "\n",
    "\r",
    "\r\n",
    "\t",
    "Ã©",
    "cafÃ©",
    "â€™",
    "â€œquotedâ€\x9d",
    "\u2018single\u2019",
    "\u201cdouble\u201d",
    "ﬁ",
    "ＬＯＵＤ",
    "\x1b[31m",
    "\x00",
    "\x85",
    "é",
    "naïve",
    "[3] ",
    "Ã",
    "\u2028",
    " ",
    "x",
]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(FTFY_PIECES), max_size=40).map("".join))
def test_fix_text_equals_ftfy_on_mixed_lines(text):
    assert fix_text(text) == ftfy.fix_text(text)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_fix_text_equals_ftfy_on_any_text(text):
    assert fix_text(text) == ftfy.fix_text(text)


def test_fix_text_hands_text_beyond_ftfys_segment_limit_to_ftfy_whole():
    limit = ftfy.TextFixerConfig().max_decode_length
    # one "line" longer than the limit: ftfy cuts it at the limit, through the mojibake pair
    text = "a" * (limit - 1) + "Ã©&amp;\n<p>&amp; cafÃ©"
    assert len(text) > limit
    assert fix_text(text) == ftfy.fix_text(text) != text


@pytest.fixture(scope="module")
def qwen_tokenizer(tiny_model_dir):
    """The tiny model's real Qwen2-pipeline BPE tokenizer, loaded as a backend loads it."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tok.is_fast
    return tok


def reference_passage(passage: Passage, tokenizer, max_tokens: int) -> str:
    """docs/method.md §1.2 written out slowly: one passage, plain ftfy, tokenize / first N / back."""
    content = f"Title: {passage.title} Content: {passage.text}" if passage.title else passage.text
    content = ftfy.fix_text(content.strip())
    content = tokenizer.convert_tokens_to_string(tokenizer.tokenize(content)[:max_tokens])
    return re.sub(r"\[(\d+)\]", r"(\1)", content)


def test_batched_preparation_equals_the_reference_on_dl19(test_data, qwen_tokenizer):
    lists = read_rank_llm_json(test_data / "trec-dl19" / "bm25_top100_with_text.json")
    passages = [p for cl in lists for p in cl.candidates]
    passages += [Passage("t", p.text, title="A [1] title") for p in passages[:200]]
    expected = [reference_passage(p, qwen_tokenizer, 64) for p in passages]
    assert prepare_passages(passages, qwen_tokenizer, 64) == expected
    assert sum(e != p.text for e, p in zip(expected, passages)) > 4000  # truncation did bite
    assert prepare_passage(passages[7], qwen_tokenizer, 64) == expected[7]


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(
        st.lists(st.sampled_from(FTFY_PIECES + ["<|im_end|>", "  ", "word"]), max_size=30).map("".join), max_size=6
    ),
    max_tokens=st.integers(1, 12),
)
def test_batched_preparation_equals_the_reference_on_any_batch(qwen_tokenizer, texts, max_tokens):
    passages = [Passage(str(i), text) for i, text in enumerate(texts)]
    expected = [reference_passage(p, qwen_tokenizer, max_tokens) for p in passages]
    assert prepare_passages(passages, qwen_tokenizer, max_tokens) == expected


def test_segmented_ftfy_renders_real_prompts_exactly(test_data, qwen_tokenizer):
    lists = read_rank_llm_json(test_data / "trec-dl19" / "bm25_top100_with_text.json")
    rendered = []
    for cl in lists:
        passages = prepare_passages(cl.candidates, qwen_tokenizer, 100)
        for start in range(0, 81, 10):
            messages = build_messages(prepare_query(cl.query.text), passages[start : start + 20])
            raw = qwen_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            assert render_prompt(messages, qwen_tokenizer) == ftfy.fix_text(raw)
            rendered.append(raw)
    # meaningful: most prompts hold lines that ftfy must see, and the "<" of the system
    # prompt's <think> switched HTML unescaping off before the passages
    assert sum(not r.isascii() for r in rendered) > 250
    assert all(r.index("<think>") < r.index("[1] ") for r in rendered)
