"""Deterministic backends for the method tests: a perfect setwise chooser and a pointwise judge.

Like tests/scripted_backend.py for the listwise window, each answers in its method's own output
format from the prompt alone (the number after "relevance" in a passage is its quality), so a
test can predict a method's exact result and count its calls. Every generate/complete call is
recorded with its parameters.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from reasonrank.backends.base import Backend
from reasonrank.methods.rank_r1 import SetwisePrompt
from reasonrank.types import Completion, GenerationParams, Message

_RELEVANCE = re.compile(r"relevance (\d+)")


def relevance(text: str) -> float:
    match = _RELEVANCE.search(text)
    return float(match.group(1)) if match else -1.0


def shown_documents(messages: list[Message], prompt: SetwisePrompt) -> list[str]:
    """The documents of a Rank-R1 user turn, in the order shown ([1], [2], …)."""
    user = messages[-1]["content"]
    head, tail = prompt.user.split("{docs}")
    head = head.split("{query}")[1]
    body = user[user.index(head) + len(head) : len(user) - len(tail) if tail else len(user)]
    parts = re.split(r"(?:^|" + re.escape(prompt.doc_separator) + r")\[(\d+)\]: ", body)
    return [parts[k + 1] for k in range(1, len(parts), 2)]


class SetwiseChooser(Backend):
    """Answers every comparison with the label of its most relevant document (ties: first shown).

    `garbage` answers without tags, as a model that ran out of tokens would.
    """

    name = "setwise-scripted"

    def __init__(self, prompt: SetwisePrompt, garbage: bool = False) -> None:
        self.prompt = prompt
        self.garbage = garbage
        self.batches: list[list[list[Message]]] = []
        self.params: list[GenerationParams] = []

    def generate(self, prompts: list[list[Message]], params: GenerationParams) -> list[Completion]:
        self.batches.append(prompts)
        self.params.append(params)
        out = []
        for messages in prompts:
            docs = shown_documents(messages, self.prompt)
            best = max(range(len(docs)), key=lambda i: (relevance(docs[i]), -i))
            text = "<think>no idea" if self.garbage else f"<think>compared</think>\n<answer>[{best + 1}]</answer>"
            out.append(Completion(text, None, 10, 5, "stop"))
        return out


@dataclass
class _Ids:
    input_ids: list[int]


class TrueFalseTokenizer:
    """The slice of a tokenizer Rank1 uses: " true" -> 1, " false" -> 2."""

    ids = {" true": [1], " false": [2]}

    def __call__(self, text: str, add_special_tokens: bool = True) -> _Ids:
        return _Ids(self.ids[text])

    def tokenize(self, text: str) -> list[str]:
        return text.split()

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)


class PointwiseJudge(Backend):
    """Continues Rank1 prompts: P(true) = relevance / 10, reported at the last token.

    `undecided` lists passage texts whose first pass ends without the true/false log-probs.
    """

    name = "pointwise-scripted"

    def __init__(self, undecided: tuple[str, ...] = (), fail_second: bool = False) -> None:
        self.tokenizer = TrueFalseTokenizer()
        self.undecided = undecided
        self.fail_second = fail_second
        self.batches: list[list[str]] = []
        self.params: list[GenerationParams] = []

    def generate(self, prompts: list[list[Message]], params: GenerationParams) -> list[Completion]:
        raise AssertionError("Rank1 sends raw text prompts")

    def complete(self, texts: list[str], params: GenerationParams) -> list[Completion]:
        self.batches.append(texts)
        self.params.append(params)
        return [self._answer(text, params) for text in texts]

    def _answer(self, text: str, params: GenerationParams) -> Completion:
        passage = text.split("\nPassage: ", 1)[1]
        p = min(max(relevance(passage) / 10, 0.01), 0.99)
        top = [{1: math.log(p), 2: math.log(1 - p)}]
        if params.max_new_tokens == 1:  # the forced second pass
            return Completion(" true", None, 20, 1, "length", top_logprobs=None if self.fail_second else top)
        if any(u in passage for u in self.undecided):
            return Completion("Thinking about it. Still unsure", None, 20, 64, "length", top_logprobs=[{7: -0.1}])
        return Completion("The passage answers it.\n", None, 20, 8, "stop", top_logprobs=[{5: -0.2}, *top])


class ListwiseOracle(Backend):
    """Answers any listwise window best first, as `<think>…</think><answer>[a] > [b] …</answer>`
    followed by the ranking on a last line (Rank-K reads the last line); `shown` reads the
    passage texts of one prompt in window order."""

    name = "listwise-oracle"

    def __init__(self, shown: Callable[[list[Message]], list[str]]) -> None:
        self.shown = shown
        self.batches: list[list[list[Message]]] = []
        self.params: list[GenerationParams] = []

    def generate(self, prompts: list[list[Message]], params: GenerationParams) -> list[Completion]:
        self.batches.append(prompts)
        self.params.append(params)
        out = []
        for messages in prompts:
            texts = self.shown(messages)
            ids = sorted(range(len(texts)), key=lambda i: (-relevance(texts[i]), i))
            answer = " > ".join(f"[{i + 1}]" for i in ids)
            out.append(Completion(f"<think>sorted</think>\n<answer>{answer}</answer>\n{answer}", None, 10, 5, "stop"))
        return out


def rearank_shown(messages: list[Message]) -> list[str]:
    return [m["content"].split("] ", 1)[1] for m in messages[3:-1:2]]


def rank_k_shown(messages: list[Message]) -> list[str]:
    content = messages[0]["content"]
    body = content[content.index("\n\n[1] ") + 2 :].rstrip("\n")
    return [part.split("] ", 1)[1] for part in body.split("\n\n")]


class GroupScorer(Backend):
    """Scores each document of a GroupRank prompt by its stated relevance, as the JSON answer;
    `broken` answers without tags or JSON."""

    name = "group-scorer"

    def __init__(self, broken: bool = False) -> None:
        self.batches: list[list[list[Message]]] = []
        self.params: list[GenerationParams] = []
        self.broken = broken

    def generate(self, prompts: list[list[Message]], params: GenerationParams) -> list[Completion]:
        self.batches.append(prompts)
        self.params.append(params)
        out = []
        for messages in prompts:
            body = messages[1]["content"].split("Documents:\n", 1)[1].split("\n\n## Final", 1)[0]
            docs = [part.split("]. ", 1)[1] for part in body.strip("\n").split("\n\n")]
            scores = {f"[{i}]": max(0, min(10, int(relevance(d)))) for i, d in enumerate(docs, 1)}
            answer = f"<reason>ok</reason>\n<answer>\n```json\n{json.dumps(scores)}\n```\n</answer>"
            out.append(Completion("<reason>cut" if self.broken else answer, None, 10, 10, "stop"))
        return out
