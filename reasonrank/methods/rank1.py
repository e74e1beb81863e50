"""Rank1: pointwise "reason, then true or false"; the score is P(true) / (P(true) + P(false)).

Source: github.com/orionw/rank1 at 30585c2f3166b3df03e3b8f2d496d6dc5db68a9b — rank1.py
(`return_prompt`, `_process_with_vllm`, `_fix_incomplete_responses`, `predict`), prompts.py
(`PROMPT_DICT`, `get_prompt`) and run_mteb.py (the README's `launch_job.sh` runs it: top 100).

Prompt: raw text, no chat template, ending in an opened `<think>` the model continues:
"Determine if the following passage is relevant to the query. Answer only with 'true' or
'false'.\\nQuery: {query}\\nPassage: {passage}\\n<think>". The passage is `f"{title} {text}"` when
it has a title, else its text, never truncated (`truncate_input` is commented out); the query is
wrapped by the dataset's prompt from prompts.py (`FILL_QUERY_HERE` replaced), which exists for
the BRIGHT tasks (and BEIR sets this project does not load); DL19 has none, so its query is used
as is.

Decoding: greedy, at most 8192 new tokens, top-20 log-probabilities, stop strings
"</think> true" and "</think> false" (the `rank1` defaults; vLLM `max_model_len` 16000).

Score: at the last generated token (the " true" or " false" that completed a stop string) the
log-probabilities of " true" and " false" (the first token of each, no special tokens) give
exp(t) / (exp(t) + exp(f)). When either is missing there (the model ran out of tokens or
answered otherwise), a second pass continues `f"{prompt}\\n{cleaned}\\n</think>"` — the output
cut after its last '.', '!' or '?', stripped — for one token restricted to " true" / " false",
scored the same way; if that fails too the score is 0.5. Both passes are one batched call over
every query-passage pair of the run.

Ranking: run_mteb.py hands the scores to MTEB, which evaluates them with pytrec_eval; trec_eval
orders by score descending and breaks ties by document id descending (`comp_sim_docno` in
form_res_rels.c), so ties sort that way here too. The MTEB fork the repository pins (submodule
`mteb_branch`, branch ce-update) is not part of its snapshot and was not read: how it joins a
title and text before `predict` is taken from `predict` itself (`title text` for dict passages).

Where this differs from the reference, knowingly:
- vLLM decodes with `skip_special_tokens=False`; backends here drop special tokens from text.
- The second pass's log-probabilities: vLLM versions differ in whether they are taken before or
  after `allowed_token_ids` masks the vocabulary; the ratio of the two is the same either way
  whenever both are reported. The transformers backend reports both always; the vLLM CPU engine
  of `make test-vllm` takes them before the mask (its raw top 20), so a model that puts neither
  among its top 20 gets the 0.5 default there, as the reference on that engine would.

Reasoning budget (reasonrank.methods.budget): Rank1's own second pass is its way to close a
thought, so a budget of N tokens is the first pass's token limit (a thought cut there is
answered by the second pass), and think-free skips the first pass: every pair is answered at
once from `f"{prompt}\n\n</think>"` (the second pass's prompt over an empty thought). The
"\n</think>" the second pass appends is recorded as the call's `forced` text.

Repair reasons recorded per call: "no_decision" (the first pass did not end in a scored
true/false, so the second pass ran), "reasoning_truncated" (it stopped at the token limit) and
"score_defaulted" (neither pass gave both log-probabilities: score 0.5).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from reasonrank.backends.base import Backend, BackendError
from reasonrank.methods.base import Method, with_generation
from reasonrank.types import CandidateList, Completion, GenerationParams, Passage, RankResult, WindowCall

if TYPE_CHECKING:
    from reasonrank.window import WindowConfig

SOURCE = "github.com/orionw/rank1@30585c2f3166b3df03e3b8f2d496d6dc5db68a9b"
STOP = ("</think> true", "</think> false")
TOP_LOGPROBS = 20
DEFAULT_SCORE = 0.5
QUERY_SLOT = "FILL_QUERY_HERE"

_BRIGHT_DEFAULT = (
    "Can you find background information about the concepts used to answer the question:\n\n"
    "FILL_QUERY_HERE\n\n"
    "A passage is relevant if it contains background information about a **sub-concept** that someone might "
    "cite/link to when answering the above question."
)
_THEOREMQA = "Find a passage which uses the same mathematical process as this one: FILL_QUERY_HERE"
#: prompts.py PROMPT_DICT entries for BRIGHT, by task ("BrightRetrieval_<task>"; the others get
#: "BrightRetrieval").
BRIGHT_PROMPTS = {
    "aops": (
        "Find different but similar math problems to FILL_QUERY_HERE\n\n"
        "A document is relevant if it uses the same class of functions and shares **any** overlapping techniques."
    ),
    "theoremqa_questions": _THEOREMQA,
    "theoremqa_theorems": _THEOREMQA,
    "leetcode": (
        "I am looking to find different problems that share similar data structures (of any kind) or algorithms "
        "(e.g. DFS, DP, sorting, traversals, etc.). I am looking for problems that share one or both of these "
        "similarities to this:\n    \nFILL_QUERY_HERE\n\nDoes this passage share any similarities? e.g. if there "
        "was a textbook on leetcode problems, this would be in the same book even though it could be in a "
        "different chapter. \n\n\n"
    ),
    "pony": (
        "I will use the programming language pony. Problem: FILL_QUERY_HERE\n\n"
        "But to solve the problem above, I need to know things about pony. A passage is relevant if it contains "
        "docs that match **any** part (even basic parts) of the code I will have to write for the above program."
    ),
}


def dataset_prompt(dataset: str | None) -> str | None:
    """The query wrapper `get_prompt("BrightRetrieval", task)` returns, or None."""
    from reasonrank.bright import BRIGHT_TASKS

    if dataset is None:
        return None
    task = dataset.strip().replace("-", "_")
    if task not in BRIGHT_TASKS:
        return None
    return BRIGHT_PROMPTS.get(task, _BRIGHT_DEFAULT)


def build_prompt(query: str, passage: Passage, wrapper: str | None = None) -> str:
    """`rank1.return_prompt` for one pair (the passage as `predict` joins it)."""
    if wrapper:
        query = wrapper.replace(QUERY_SLOT, query)
    content = f"{passage.title} {passage.text}" if passage.title else passage.text
    return (
        "Determine if the following passage is relevant to the query. "
        "Answer only with 'true' or 'false'.\n"
        f"Query: {query}\n"
        f"Passage: {content}\n"
        "<think>"
    )


def cleaned_output(text: str) -> str:
    """`_fix_incomplete_responses`: right-stripped, cut after the last sentence end unless it
    already ends in one, stripped."""
    text = text.rstrip()
    if not text.endswith((".", "!", "?")):
        last = max(text.rfind("."), text.rfind("!"), text.rfind("?"))
        if last != -1:
            text = text[: last + 1]
    return text.strip()


def forced_prompt(prompt: str, output: str) -> str:
    return f"{prompt}\n{cleaned_output(output)}\n</think>"


def score_from(top: list[dict[int, float]] | None, true_id: int, false_id: int) -> float | None:
    """P(true) / (P(true) + P(false)) at the last generated token, or None when either is missing."""
    if not top:
        return None
    last = top[-1]
    if true_id not in last or false_id not in last:
        return None
    true, false = math.exp(last[true_id]), math.exp(last[false_id])
    return true / (true + false)


def rank_by_score(docids: list[str], scores: list[float]) -> list[str]:
    """trec_eval's order: score descending, ties by document id descending."""
    return [docid for _, docid in sorted(zip(scores, docids), reverse=True)]


@dataclass
class _Pair:
    qid: str
    index: int
    docid: str
    prompt: str
    score: float | None = None


def _token_ids(backend: Backend) -> tuple[int, int]:
    tokenizer = backend.tokenizer
    if tokenizer is None or not callable(tokenizer):
        raise BackendError("rank1 needs the model's tokenizer for the ' true' / ' false' token ids (--tokenizer)")
    true_id = tokenizer(" true", add_special_tokens=False).input_ids[0]
    false_id = tokenizer(" false", add_special_tokens=False).input_ids[0]
    return true_id, false_id


def _record(pair: _Pair, step: int, prompt: str, completion: Completion, reasons: list[str]) -> WindowCall:
    forced = "\n</think>" if step == 1 else None  # the second pass's prompt ends in the harness's close
    return WindowCall(
        qid=pair.qid,
        pass_index=0,
        position=step,
        start=pair.index,
        end=pair.index + 1,
        prompt=[{"role": "raw", "content": prompt}],
        raw_output=completion.text,
        reasoning=completion.reasoning if completion.reasoning is not None else (completion.text.strip() or None),
        parsed=[],
        reasons=reasons,
        docids_before=[pair.docid],
        docids_after=[pair.docid],
        tokens_in=completion.tokens_in,
        tokens_out=completion.tokens_out,
        seconds=completion.seconds,
        finish_reason=completion.finish_reason,
        method="rank1",
        score=pair.score,
        forced=forced,
    )


def _complete(backend: Backend, prompts: list[str], params: GenerationParams, what: str) -> list[Completion]:
    completions = backend.complete(prompts, params) if prompts else []
    if len(completions) != len(prompts):
        raise BackendError(
            f"backend {backend.name!r} returned {len(completions)} completions for {len(prompts)} ({what})"
        )
    return completions


def run(
    lists: list[CandidateList],
    backend: Backend,
    config: WindowConfig,
    on_step: Callable[[int, int], None] | None = None,
) -> list[RankResult]:
    """Score every pair of every list in one call, the undecided ones in a second, then sort."""
    true_id, false_id = _token_ids(backend)
    pairs: list[_Pair] = []
    for candidates in lists:
        wrapper = dataset_prompt(candidates.dataset)
        head = candidates.candidates[: config.top_k]
        pairs += [
            _Pair(candidates.query.qid, i, p.docid, build_prompt(candidates.query.text, p, wrapper))
            for i, p in enumerate(head)
        ]
    # the stop strings and log-probabilities are the method itself, whatever the config says
    params = replace(config.generation, logprobs=TOP_LOGPROBS, stop=STOP)
    if config.reasoning_budget is not None:  # the budget is the first pass's limit
        params = replace(params, max_new_tokens=config.reasoning_budget)
    first = [] if config.think_free else _complete(backend, [pair.prompt for pair in pairs], params, "rank1 judgements")
    calls: dict[str, list[WindowCall]] = {candidates.query.qid: [] for candidates in lists}
    undecided: list[tuple[_Pair, Completion]] = []
    if config.think_free:  # every pair goes straight to the forced answer, over an empty thought
        undecided = [(pair, Completion(text="")) for pair in pairs]
    for pair, completion in zip(pairs, first):
        pair.score = score_from(completion.top_logprobs, true_id, false_id)
        reasons = [] if pair.score is not None else ["no_decision"]
        if completion.finish_reason == "length":
            reasons.append("reasoning_truncated")
        calls[pair.qid].append(_record(pair, 0, pair.prompt, completion, reasons))
        if pair.score is None:
            undecided.append((pair, completion))
    if on_step is not None:
        on_step(1, 2 if undecided else 1)
    if undecided:
        forced = [forced_prompt(pair.prompt, completion.text) for pair, completion in undecided]
        one_token = GenerationParams(
            max_new_tokens=1, temperature=0.0, logprobs=TOP_LOGPROBS, allowed_token_ids=(true_id, false_id)
        )
        second = _complete(backend, forced, one_token, "rank1 forced answers")
        for (pair, _), prompt, completion in zip(undecided, forced, second):
            pair.score = score_from(completion.top_logprobs, true_id, false_id)
            reasons = []
            if pair.score is None:
                pair.score, reasons = DEFAULT_SCORE, ["score_defaulted"]
            calls[pair.qid].append(_record(pair, 1, prompt, completion, reasons))
        if on_step is not None:
            on_step(2, 2)
    results = []
    for candidates in lists:
        own = [pair for pair in pairs if pair.qid == candidates.query.qid]
        head = rank_by_score([pair.docid for pair in own], [pair.score for pair in own])  # type: ignore[misc]
        tail = [p.docid for p in candidates.candidates[config.top_k :]]
        results.append(RankResult(qid=candidates.query.qid, ranking=head + tail, calls=calls[candidates.query.qid]))
    return results


def _defaults(config: WindowConfig) -> WindowConfig:
    """rank1's defaults: greedy, 8192 new tokens; top 100 (run_mteb.py). The stop strings and
    top-20 log-probabilities are not settings: `run` always asks for them."""
    return with_generation(replace(config, top_k=100), max_new_tokens=8192, temperature=0.0, top_p=1.0)


RANK1 = Method(
    name="rank1",
    paradigm="pointwise",
    summary="Rank1 pointwise reason-then-true/false, scored by P(true)/(P(true)+P(false)), greedy",
    source=SOURCE,
    checkpoints=(
        "jhu-clsp/rank1-0.5b",
        "jhu-clsp/rank1-1.5b",
        "jhu-clsp/rank1-3b",
        "jhu-clsp/rank1-7b",
        "jhu-clsp/rank1-14b",
        "jhu-clsp/rank1-32b",
        "jhu-clsp/rank1-mistral-2501-24b",
        "jhu-clsp/rank1-llama3-8b",
    ),
    run=run,
    defaults=_defaults,
    budgets_itself=True,
)
