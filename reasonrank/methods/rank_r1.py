"""Rank-R1: setwise "which document is most relevant?" comparisons, sorted by heapsort.

Source: github.com/ielab/llm-rankers at b36517bf17a3956dc56c4c967f972d02390b1cdd. The README
(Rank-R1/README.md, "TREC DL examples") runs Rank-R1/run_setwise.py, whose own
`R1SetwiseLlmRanker.compare` builds the prompt and parses the answer; the sort is
`SetwiseLlmRanker.heapSort` / `heapify` / `rerank` in llmrankers/setwise.py (lines 200-312).

Prompt (run_setwise.py `compare`, prompts/prompt_setwise-R1.toml for v0.1 and
prompt_setwise-R1-v0.2.toml for v0.2): a system turn `prompt_system` and a user turn
`prompt_user.format(query=…, docs=…)`, the documents joined by `doc_separator`, each as
`doc_prefix.format(num=i)` + text, rendered by vLLM's `LLM.chat` (the tokenizer's chat template
with the generation prompt; no ftfy). The documents are `f"{title} {contents}"` (title when the
index has one) cut to `passage_length` tokens and the query to `query_length` tokens, each by
`tokenizer.convert_tokens_to_string(tokenizer.tokenize(text)[:length])` (load_run_file,
`SetwiseLlmRanker.truncate`); DL uses query 32 / passage 512 tokens, BRIGHT 1024 / 1024.

Decoding: greedy (temperature 0), max_tokens 8000 (run_setwise.py).

Parsing: `<think>.*?</think>\\s*<answer>(.*?)</answer>` on the lower-cased completion, group 1
stripped, must equal one of the shown labels `[1]`…`[n]`; anything else keeps the heap node's
root (best index 0).

Order inside a comparison: every comparison shows its documents in a random order,
`random.sample(docs, len(docs))`, from Python's `random` seeded with 929 at import. The reference
draws from one process-wide stream while it ranks queries one after another; batched across
queries that stream cannot be reproduced (how many draws a query takes depends on the model's
answers), so each query here draws from its own `random.Random(929)`: identical to the
reference for a run of one query, and for the first query of a run.

Discrepancies, followed as the README's command runs them:
- llmrankers/setwise.py `RankR1SetwiseLlmRanker` (the README's Python example) formats documents
  as `[i] text` joined by "\\n" and generates at most 2048 tokens; run_setwise.py (the README's
  commands) uses the toml's `doc_prefix` "[{num}]: " and `doc_separator`, and 8000 tokens.
- The README passes `--lora_path`; the flag is `--lora_path_or_name` (argparse accepts the
  prefix).
- The v0.2 prompt file exists (with create_dataset_v0.2.py, train_grpo_v0.2.py) but the
  repository names no v0.2 checkpoint at this commit.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from reasonrank.backends.base import Backend, TokenizerLike
from reasonrank.io import InputError
from reasonrank.methods.base import Method, generate_checked, with_generation
from reasonrank.methods.budget import Thinking
from reasonrank.parse import tagged_answer
from reasonrank.types import CandidateList, Message, Passage, RankResult, WindowCall

if TYPE_CHECKING:
    from reasonrank.window import WindowConfig

SOURCE = "github.com/ielab/llm-rankers@b36517bf17a3956dc56c4c967f972d02390b1cdd"
#: `random.seed(929)` in run_setwise.py and llmrankers/setwise.py.
SHUFFLE_SEED = 929
#: `R1SetwiseLlmRanker.CHARACTERS`: 20 labels, so a comparison shows at most 20 documents.
MAX_SET = 20


@dataclass(frozen=True)
class SetwisePrompt:
    """One Rank-R1 prompt file (the fields run_setwise.py reads)."""

    system: str
    user: str
    doc_separator: str
    doc_prefix: str


PROMPT_V01 = SetwisePrompt(
    system=(
        "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
        "The assistant first thinks about the reasoning process in the mind and then provides the user with "
        "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
        "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
        "</answer>."
    ),
    user=(
        'Given the query: "{query}", which of the following documents is most relevant?\n{docs}\n'
        "After completing the reasoning process, please provide only the label of the most relevant document "
        "to the query, enclosed in square brackets, within the answer tags. For example, if the third document "
        "is the most relevant, the answer should be: <think> reasoning process here </think> <answer>[3]</answer>."
    ),
    doc_separator="\n",
    doc_prefix="[{num}]: ",
)

PROMPT_V02 = SetwisePrompt(
    system="You are RankLLM, an intelligent assistant capable of evaluating the relevancy of passages to a given query.",
    user=(
        "You will be presented with a query, and a set of documents.\n\n"
        "Your task consists of the following step:\n\n"
        "1. Analyze the query: Carefully read the query and identify the core problem or question being asked.\n\n"
        "2. Analyze the documents: Thoroughly examine each document and briefly explain how each document is "
        "relevant or not relevant to the query.\n\n"
        "3. Find the most relevant document: Based on your analysis, select the most relevant document to the "
        "query from the set and briefly explain why.\n\n"
        "Important: Provide your analysis within the <think> </think> tags and answer only the label of the most "
        "relevant document, enclosed in square brackets, within the <answer> </answer> tags. For example, if the "
        "third document is the most relevant, your response should be:\n"
        "<think> Your analysis here </think>\n<answer>[3]</answer>\n\n"
        "Here is the query: {query}\n\nHere are the documents:\n{docs}"
    ),
    doc_separator="\n\n",
    doc_prefix="[{num}]: ",
)


def truncate(text: str, tokenizer: TokenizerLike | None, length: int | None) -> str:
    """`SetwiseLlmRanker.truncate`: the first `length` tokens, converted back to a string.

    Without a tokenizer (a remote server) the text is cut to `length` whitespace words instead.
    """
    if length is None:
        return text
    if tokenizer is None:
        return " ".join(text.split()[:length])
    return tokenizer.convert_tokens_to_string(tokenizer.tokenize(text)[:length])


def document_text(passage: Passage, tokenizer: TokenizerLike | None, length: int | None) -> str:
    """load_run_file: `f"{title} {contents}"` when there is a title, then truncated."""
    text = f"{passage.title} {passage.text}" if passage.title else passage.text
    return truncate(text, tokenizer, length)


def build_messages(prompt: SetwisePrompt, query: str, documents: Sequence[str]) -> list[Message]:
    """[system, user] of one comparison, documents in the order shown (labels [1]…[n])."""
    if not 1 <= len(documents) <= MAX_SET:
        raise InputError(f"a Rank-R1 comparison shows 1 to {MAX_SET} documents, got {len(documents)}")
    docs = prompt.doc_separator.join(f"{prompt.doc_prefix.format(num=i)}{doc}" for i, doc in enumerate(documents, 1))
    return [
        Message(role="system", content=prompt.system),
        Message(role="user", content=prompt.user.format(query=query, docs=docs)),
    ]


def parse_choice(completion: str, shown: int) -> tuple[int | None, list[str]]:
    """(0-based position of the chosen label in the shown order, repair reasons).

    None means the reference's "Unexpected output": the heap node keeps its root.
    """
    answer = tagged_answer(completion.lower())
    if answer is None:
        opened = "<think>" in completion.lower() and "</think>" not in completion.lower()
        return None, (["reasoning_truncated"] if opened else []) + ["no_answer_tag"]
    labels = [f"[{i}]" for i in range(1, shown + 1)]  # the answer must be one of them, as a string
    choice = answer.strip()
    if choice not in labels:
        return None, ["out_of_range"]
    return labels.index(choice), []


Comparison = Generator[list[int], "int | None", list[int]]


def heap_sort(n: int, num_child: int, k: int) -> Comparison:
    """`SetwiseLlmRanker.heapSort` + `rerank` as a generator over candidate positions.

    Yields each comparison as the positions it shows, root first (`[arr[i]] + children`); is
    sent the index of the winner in that list (None: keep the root); returns the final order:
    the `k` extracted best, then every other candidate in first-stage order.
    """
    arr = list(range(n))

    def heapify(size: int, i: int) -> Generator[list[int], int | None, None]:
        while num_child * i + 1 < size:  # the reference recurses on the swapped child: a loop
            inds = [i, *range(num_child * i + 1, min(num_child * (i + 1) + 1, size))]
            best = yield [arr[j] for j in inds]
            largest = inds[best] if best is not None else i
            if largest == i:
                break
            arr[i], arr[largest] = arr[largest], arr[i]
            i = largest

    for i in range(n // num_child, -1, -1):
        yield from heapify(n, i)
    ranked = 0
    for i in range(n - 1, 0, -1):
        arr[i], arr[0] = arr[0], arr[i]
        ranked += 1
        if ranked == k:
            break
        yield from heapify(i, 0)
    top = list(reversed(arr))[:k]
    chosen = set(top)
    return top + [j for j in range(n) if j not in chosen]


class _Sort:
    """One query's heapsort: its pending comparison, its shuffle stream and its call records."""

    def __init__(self, candidates: CandidateList, config: WindowConfig, tokenizer: TokenizerLike | None) -> None:
        self.candidates = candidates.candidates
        self.qid = candidates.query.qid
        self.head = min(config.top_k, len(self.candidates))
        self.query = truncate(candidates.query.text, tokenizer, config.max_query_tokens)
        self.documents = [document_text(p, tokenizer, config.max_passage_tokens) for p in self.candidates[: self.head]]
        self.rng = random.Random(SHUFFLE_SEED)
        self.sort = heap_sort(self.head, config.num_child, config.sort_k)
        self.calls: list[WindowCall] = []
        self.order: list[int] | None = None
        self.pending: list[int] = []
        self.shown: list[int] = []
        self._advance(None, first=True)

    def _advance(self, best: int | None, first: bool = False) -> None:
        try:
            self.pending = next(self.sort) if first else self.sort.send(best)
        except StopIteration as done:
            self.order, self.pending = done.value, []
            return
        # random.sample(id_passage, len(id_passage)) picks the same permutation as sampling
        # the positions: sample's draws depend only on the population's size.
        self.shown = self.rng.sample(range(len(self.pending)), len(self.pending))

    def messages(self, prompt: SetwisePrompt) -> list[Message]:
        return build_messages(prompt, self.query, [self.documents[self.pending[j]] for j in self.shown])

    def answer(self, round_index: int, messages: list[Message], completion, method: str) -> None:
        position, reasons = parse_choice(completion.text, len(self.shown))
        best = None if position is None else self.shown[position]
        before = [self.candidates[self.pending[j]].docid for j in self.shown]
        winner = self.pending[best if best is not None else 0]
        self.calls.append(
            WindowCall(
                qid=self.qid,
                pass_index=0,
                position=round_index,
                start=min(self.pending),
                end=max(self.pending) + 1,
                prompt=messages,
                raw_output=completion.text,
                reasoning=completion.reasoning if completion.reasoning is not None else _think(completion.text),
                parsed=[] if position is None else [position],
                reasons=reasons,
                docids_before=before,
                docids_after=[self.candidates[winner].docid],
                tokens_in=completion.tokens_in,
                tokens_out=completion.tokens_out,
                seconds=completion.seconds,
                finish_reason=completion.finish_reason,
                method=method,
            )
        )
        self._advance(best)

    def result(self) -> RankResult:
        order = (self.order or []) + list(range(self.head, len(self.candidates)))
        return RankResult(qid=self.qid, ranking=[self.candidates[i].docid for i in order], calls=self.calls)


_THINK = re.compile(r"<think>(.*?)(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)


def _think(text: str) -> str | None:
    match = _THINK.search(text)
    return match.group(1).strip() if match else None


def _runner(prompt: SetwisePrompt, name: str):
    def run(
        lists: list[CandidateList],
        backend: Backend,
        config: WindowConfig,
        on_step: Callable[[int, int], None] | None = None,
    ) -> list[RankResult]:
        """Heapsort every list; each round sends the pending comparison of every query in one
        `generate`, so a batch costs as many calls as its longest sort has comparisons.
        `on_step(done, total)` reports total as done + 1 while a sort is running (the number of
        comparisons depends on the answers)."""
        if config.num_child + 1 > MAX_SET:
            raise InputError(f"Rank-R1 shows at most {MAX_SET} documents: num_child must be <= {MAX_SET - 1}")
        params = replace(config.generation, fix_text=False)
        sorts = [_Sort(candidates, config, backend.tokenizer) for candidates in lists]
        round_index = 0
        while active := [sort for sort in sorts if sort.pending]:
            batch = [sort.messages(prompt) for sort in active]
            completions = generate_checked(backend, batch, params, f"setwise round {round_index}")
            for sort, messages, completion in zip(active, batch, completions):
                sort.answer(round_index, messages, completion, name)
            round_index += 1
            if on_step is not None:
                on_step(round_index, round_index + (1 if any(sort.pending for sort in sorts) else 0))
        return [sort.result() for sort in sorts]

    return run


def _defaults(config: WindowConfig) -> WindowConfig:
    """The README's TREC DL command: hits 100, query 32 / passage 512 tokens, num_child 19,
    heapsort k 10; greedy with 8000 new tokens (run_setwise.py)."""
    config = replace(config, top_k=100, max_query_tokens=32, max_passage_tokens=512, num_child=19, sort_k=10)
    return with_generation(config, max_new_tokens=8000, temperature=0.0, top_p=1.0)


RANK_R1 = Method(
    name="rank-r1",
    paradigm="setwise",
    summary="Rank-R1 v0.1 setwise heapsort (prompt_setwise-R1.toml), greedy",
    source=SOURCE,
    checkpoints=("ielabgroup/Rank-R1-3B-v0.1", "ielabgroup/Rank-R1-7B-v0.1", "ielabgroup/Rank-R1-14B-v0.1"),
    run=_runner(PROMPT_V01, "rank-r1"),
    defaults=_defaults,
    # the answer as the prompt's example writes it: "</think> <answer>[3]</answer>"
    thinking=Thinking(end="</think>", close=" </think> <answer>", answer_tokens=16),
)

RANK_R1_V02 = Method(
    name="rank-r1-v0.2",
    paradigm="setwise",
    summary="Rank-R1 v0.2 setwise heapsort (prompt_setwise-R1-v0.2.toml), greedy; no checkpoint named",
    source=SOURCE,
    checkpoints=(),
    run=_runner(PROMPT_V02, "rank-r1-v0.2"),
    defaults=_defaults,
    thinking=Thinking(end="</think>", close=" </think>\n<answer>", answer_tokens=16),
)
