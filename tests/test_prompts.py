"""Prompts: byte-exact ReasonRank text, preprocessing order, rendering and the teacher prompt."""
from __future__ import annotations

import pytest

from reasonrank.io import InputError, read_rank_llm_json
from reasonrank.prompts import (
    SYSTEM_PROMPT,
    build_messages,
    build_teacher_messages,
    prepare_passage,
    prepare_query,
    render_prompt,
)
from reasonrank.types import Passage

# Written out by hand from spec §1.3 (grammar slip "you first thinks" included).
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
def dl19_texts(shared_data) -> list[str]:
    lists = read_rank_llm_json(shared_data / "trec-dl19" / "bm25_top100_with_text.json")
    return [p.text for cl in lists for p in cl.candidates]


@pytest.fixture(scope="module")
def tokenizer(dl19_texts):
    """A real byte-level BPE (Qwen2 pre-tokenizer pipeline) trained on DL19 passages."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    split = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
             r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(dl19_texts[:1500], trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>")
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
from hypothesis import given, settings, strategies as st  # noqa: E402

import ftfy  # noqa: E402

from reasonrank.prompts import fix_text  # noqa: E402


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=200))
def test_fix_text_fast_path_equals_ftfy_on_any_ascii(text):
    assert fix_text(text) == ftfy.fix_text(text)


def test_fix_text_equals_ftfy_on_real_passages(shared_data):
    from reasonrank.io import read_rank_llm_json

    texts = [
        p.text
        for name in ("trec-dl19/bm25_top100_with_text.json", "noveleval/candidates_with_text.json")
        for cl in read_rank_llm_json(shared_data / name)
        for p in cl.candidates
    ]
    assert len(texts) > 4000
    assert [fix_text(t) for t in texts] == [ftfy.fix_text(t) for t in texts]
