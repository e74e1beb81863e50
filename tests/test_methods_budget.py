"""Reasoning budget and think-free runs (reasonrank.methods.budget) on the tiny random Qwen2 through
the real transformers backend: the thought is cut at the budget, the method's own closing string
appended and the answer continued from there; Qwen3's think-free switch where the template has it
(refused where not); Rank1's own forced second pass; every call record says what happened; the
CLI flags."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from reasonrank.backends import make_backend
from reasonrank.backends.base import Backend, BackendConfig
from reasonrank.cli import config_to_command, parse_command
from reasonrank.io import InputError
from reasonrank.methods import get_method, with_defaults
from reasonrank.methods.budget import BUDGET_FORCED
from reasonrank.types import CandidateList, GenerationParams
from reasonrank.window import WindowConfig, rerank

BUDGET = 4
#: Qwen3's switch, in a template of the tiny model's own turns: enable_thinking=False writes the
#: empty think block after the generation prompt, as Qwen3's template does.
THINKING_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)


class Recorder(Backend):
    """The real backend, with every raw text it is asked to continue kept (in call order)."""

    def __init__(self, inner: Backend) -> None:
        self.inner, self.name, self.tokenizer = inner, inner.name, inner.tokenizer
        self.texts: list[list[str]] = []
        self.limits: list[int] = []

    def generate(self, prompts, params):
        return self.inner.generate(prompts, params)

    def complete(self, texts, params):
        self.texts.append(list(texts))
        self.limits.append(params.max_new_tokens)
        return self.inner.complete(texts, params)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    backend = make_backend(BackendConfig(kind="transformers", model=str(tiny_model_dir), device="cpu"))
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def thinking_model(tiny_model_dir, tmp_path_factory):
    """The tiny model with a chat template that has Qwen3's enable_thinking switch."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny-thinking") / "model"
    shutil.copytree(tiny_model_dir, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = THINKING_TEMPLATE
    tokenizer.save_pretrained(folder)
    backend = make_backend(BackendConfig(kind="transformers", model=str(folder), device="cpu"))
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def lists(dl19) -> list[CandidateList]:
    return [CandidateList(cl.query, cl.candidates[:4], cl.qrels, dataset="trec-dl19") for cl in dl19[:2]]


def config_for(method: str, **changes) -> WindowConfig:
    config = with_defaults(method, WindowConfig())
    config = replace(config, top_k=4, window=4, step=2, max_passage_tokens=24, max_query_tokens=None, **changes)
    return replace(config, generation=replace(config.generation, max_new_tokens=64, temperature=0.0))


@pytest.mark.parametrize("method", ["reasonrank", "rank-r1"])
def test_budget_cuts_the_thought_closes_it_the_methods_way_and_continues(tiny, lists, method):
    close = get_method(method).thinking.close
    recorder = Recorder(tiny)
    results = rerank(lists, recorder, config_for(method, reasoning_budget=BUDGET))
    calls = [call for result in results for call in result.calls]
    assert calls and all(sorted(r.ranking) == sorted(cl.docids) for r, cl in zip(results, lists))
    assert all(call.reasoning_budget == BUDGET and not call.think_free for call in calls)
    forced = [call for call in calls if call.forced]
    assert forced  # a random model does not close its thought in 4 tokens
    for call in forced:
        assert call.forced == close and BUDGET_FORCED in call.reasons
        assert (
            call.tokens_reasoning == BUDGET
            and BUDGET < call.tokens_out <= BUDGET + get_method(method).thinking.answer_tokens
        )
    # every batch: the thoughts (at most BUDGET tokens), then the answers continued after the close
    thoughts = [texts for texts, limit in zip(recorder.texts, recorder.limits) if limit == BUDGET]
    answers = [text for texts, limit in zip(recorder.texts, recorder.limits) if limit != BUDGET for text in texts]
    assert thoughts and all(text.endswith("<|im_start|>assistant\n") for batch in thoughts for text in batch)
    assert len(answers) == len(forced) and all(text.endswith(close) for text in answers)
    for call in forced:  # the model continued from its own thought plus the closing string
        thought = call.raw_output[: call.raw_output.index(close) + len(close)]
        assert any(text.endswith("<|im_start|>assistant\n" + thought) for text in answers)


def test_think_free_uses_the_templates_switch_and_is_refused_without_one(tiny, thinking_model, lists):
    with pytest.raises(InputError, match="no think-free switch"):
        rerank(lists, tiny, config_for("reasonrank-qwen3", think_free=True))
    recorder = Recorder(thinking_model)
    results = rerank(lists, recorder, config_for("reasonrank-qwen3", think_free=True))
    calls = [call for result in results for call in result.calls]
    assert calls and all(call.think_free and call.forced is None and call.reasoning_budget is None for call in calls)
    sent = [text for batch in recorder.texts for text in batch]
    assert len(sent) == len(calls) and all(
        text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n") for text in sent
    )
    # without the switch the same template renders no think block
    plain = rerank(lists[:1], Recorder(thinking_model), config_for("reasonrank-qwen3"))
    assert not plain[0].calls[0].think_free


def test_rank1_budget_is_its_first_pass_and_think_free_skips_it(tiny, lists):
    recorder = Recorder(tiny)
    results = rerank(lists, recorder, config_for("rank1", reasoning_budget=BUDGET))
    calls = [call for result in results for call in result.calls]
    first = [call for call in calls if call.position == 0]
    assert len(first) == 8 and all(call.tokens_out <= BUDGET for call in first)
    assert recorder.limits[0] == BUDGET and all(call.reasoning_budget == BUDGET for call in calls)
    second = [call for call in calls if call.position == 1]
    assert all(call.forced == "\n</think>" and call.tokens_out == 1 for call in second)
    recorder = Recorder(tiny)
    results = rerank(lists, recorder, config_for("rank1", think_free=True))
    calls = [call for result in results for call in result.calls]
    assert len(recorder.texts) == 1 and recorder.limits == [1]  # only the forced answers, in one batch
    assert all(text.endswith("<think>\n\n</think>") for text in recorder.texts[0])
    assert len(calls) == 8 and all(call.think_free and call.position == 1 and call.score is not None for call in calls)
    assert all(sorted(r.ranking) == sorted(cl.docids) for r, cl in zip(results, lists))


def test_cli_flags_parse_render_and_refuse_both():
    base = "reasonrank rerank --candidates c.jsonl --backend transformers --model m --out o --method rank-r1"
    config = parse_command(base + " --reasoning-budget 256")
    assert config.window.reasoning_budget == 256 and not config.window.think_free
    assert "--reasoning-budget 256" in config_to_command(config)
    config = parse_command(base + " --think-free")
    assert config.window.think_free and "--think-free" in config_to_command(config)
    with pytest.raises(InputError, match="exclude each other"):
        parse_command(base + " --think-free --reasoning-budget 8")
    with pytest.raises(InputError, match="at least 1 token"):
        WindowConfig(reasoning_budget=0)


def test_a_method_without_a_thinking_format_is_refused(tiny, lists):
    from reasonrank.methods import METHODS

    assert all(m.thinking is not None or m.budgets_itself for m in METHODS.values())
    plain = GenerationParams()
    assert plain.max_new_tokens > BUDGET  # the budget is below the plain limit: it is what cuts
