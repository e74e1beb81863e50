"""GroupRank (Diver): score groups of shuffled passages 0-10 at once, average over repeats.

Source: github.com/AQ-MedAI/Diver at 95b111b0adad85bf388e628b9073552055f6f408 —
Reranker/rerank_groupwise.py (`GroupReranker`: prompts, sampling, `_extract_rerank_output`,
`prepare_groups_one_epoch`, `rerank_by_group`, `avg_scores`) and Reranker/reranker_script.sh
(section 3.2: group size 20, interval 20, 6 repeats, input_k 100, k 100). Checkpoints:
AQ-MedAI/Diver-GroupRank-7B, AQ-MedAI/Diver-GroupRank-32B.

Here `window` is the group size, `step` the interval between group starts, `passes` the
number of repeats and `max_passage_tokens` the cut of each document in characters (3000).

Prompt: system + user turns, rendered by the chat template and sent as text (no ftfy). Each
repeat shuffles every query's candidate list in place (`random.shuffle`, one stream seeded with
666 at import, queries in run order, the previous repeat's order shuffled again), then groups are
the slices [i, i + group size) for i in steps of the interval. A document is its text with runs
of newlines replaced by one space, cut to 3000 characters, shown as "[i]. {text}\\n\\n".

Decoding: temperature 0.3, top-p 0.8, at most 8000 new tokens (the reference also asks for 10
log-probabilities, which it does not use). All groups of all repeats of all queries go to the
model in one call.

Parsing: the text inside <answer>…</answer> if present; the last ```json block, else the last
{…}; "[7]]" repaired to "[7]"; a missing closing brace added; whitespace collapsed; JSON. Each
"[i]": s gives document i (Python indexing: "[0]" is the group's last) the score s / 10. Any
failure (no JSON, a bad label, a non-numeric score) scores every document of the group 0.

Ranking: each document's scores are averaged over the groups that scored it and sorted
descending (a stable sort: ties keep the order in which documents were first scored).

Differences, knowingly:
- The script then interpolates 0.6 × this score + 0.4 × the first stage's score; candidate lists
  here carry no first-stage scores, so the ranking is the reranker's own (its
  reranker_results.json, not reranker_retriever_results.json).
- A document no group scored is absent from the reference's output; here it follows the scored
  ones in first-stage order, so every ranking is complete.
- reranker_script.sh calls `group_rerank.py`; the file in the repository is
  rerank_groupwise.py, whose argparse defaults are group size 10, interval 10, 2 repeats.
- The one shuffle stream is reproduced exactly when the same queries are reranked in the same
  order in one call.
- An interval larger than the group size (which skips documents) is refused by `WindowConfig`
  (step <= window); the script's 20 / 20 and the argparse defaults 10 / 10 are both allowed.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from reasonrank.backends.base import Backend
from reasonrank.methods.base import Method, generate_checked, with_generation
from reasonrank.methods.budget import Thinking
from reasonrank.types import CandidateList, Message, RankResult, WindowCall

if TYPE_CHECKING:
    from reasonrank.window import WindowConfig

SOURCE = "github.com/AQ-MedAI/Diver@95b111b0adad85bf388e628b9073552055f6f408"
SHUFFLE_SEED = 666

SYSTEM = """Your task is to evaluate and rank documents based on how well they help answer the given query. Follow this evaluation priority:
1. PRIMARY: Usefulness & Helpfulness - Does the document provide actionable information, solutions, or direct answers that help address the user's needs?
2. SECONDARY: Relevance - Does the document contain information related to the query topic?

Evaluation Process:
1. First, identify the user's core intent and what kind of help they need from the query
2. For each document, assess:
   - How directly it addresses the user's intent
   - What actionable information or answers it provides
   - How much it helps solve the user's problem or need
3. Compare documents against each other to ensure proper ranking
4. Assign scores that reflect the relative usefulness ranking

Scoring Scale (0-10):
- 9-10: Extremely helpful, directly answers the query with actionable information
- 7-8: Very helpful, provides substantial useful information for the query
- 5-6: Moderately helpful, contains some useful information but incomplete
- 3-4: Minimally helpful, limited useful information despite topic relevance
- 1-2: Barely helpful, mentions related topics but provides little useful information
- 0: Not helpful at all, cannot assist with answering the query
"""  # noqa: E501

USER = """I will provide you {TOPK} documents, each indicated by a numerical identifier []. Score these documents based on their Usefulness and Relevance to the query.
Query:
{QUERY}

Documents:
{PASSAGES}

## Final Output Format
You must structure your response in exactly two parts: provide your brief reasoning process first, then output final scores in JSON format like below, with document IDs as string keys and integer scores as values for all {TOPK} documents. 
The reasoning process and answer are enclosed within <reason> </reason> and <answer> </answer> tags, respectively. Do NOT output anything outside the specified tags. Follow this exact format:
<reason> 
[Analyze each document's usefulness and relevance to the query, explaining your scoring rationale]
</reason>
<answer> 
```json
{{"[1]": 5, "[2]": 3, "[3]": 8}}
``` 
</answer>
"""  # noqa: E501, W291


def document_text(text: str, max_chars: int) -> str:
    return re.sub("\n+", " ", text)[:max_chars]


def build_messages(query: str, documents: list[str]) -> list[Message]:
    passages = "".join(f"[{i}]. {text}\n\n" for i, text in enumerate(documents, 1))
    return [
        Message(role="system", content=SYSTEM),
        Message(role="user", content=USER.format(QUERY=query, PASSAGES=passages, TOPK=len(documents))),
    ]


_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_JSON_BLOCK = re.compile(r"(?:```json\s*)([\s\S]+?)(?:\s*```)")
_BRACES = re.compile(r"\{[\s\S]*?\}")
_DOUBLE_BRACKET = re.compile(r"(\[\d+\])\]")


def parse_scores(output: str, group_len: int) -> tuple[list[tuple[int, float]], list[str]]:
    """[(position in the group, score / 10)] in the answer's order, and repair reasons.

    On any failure every position scores 0, as the reference's `except` does.
    """
    reasons: list[str] = []
    text = output
    match = _ANSWER.search(text)
    if match:
        text = match.group(1).strip()
    else:
        reasons.append("no_answer_tag")
    try:
        blocks = _JSON_BLOCK.findall(text)
        raw = blocks[-1].strip() if blocks else _BRACES.findall(text)[-1]
        raw = _DOUBLE_BRACKET.sub(r"\1", raw.strip())
        if raw.count("{") > raw.count("}"):
            raw += "}"
        raw = re.sub(r"\s+", " ", raw).strip()
        labelled = dict(json.loads(raw))
        scored = []
        for label, score in labelled.items():
            index = int(label.strip().strip("[]")) - 1
            if not -group_len <= index < group_len:
                raise IndexError(label)
            scored.append((index % group_len, score / 10))
    except Exception:  # the reference's bare `except`: the whole group scores 0
        return [(i, 0) for i in range(group_len)], reasons + ["unparsable"]
    if len({i for i, _ in scored}) < group_len:
        reasons.append("missing_ids")
    return scored, reasons


def _groups(n: int, size: int, interval: int) -> list[tuple[int, int]]:
    return [(i, min(i + size, n)) for i in range(0, n, interval)]


def run(
    lists: list[CandidateList],
    backend: Backend,
    config: WindowConfig,
    on_step: Callable[[int, int], None] | None = None,
) -> list[RankResult]:
    """Shuffle and group every query for every repeat, score all groups in one call, average."""
    rng = random.Random(SHUFFLE_SEED)
    heads = [list(range(min(config.top_k, len(cl.candidates)))) for cl in lists]
    texts = [
        [document_text(p.text, config.max_passage_tokens) for p in cl.candidates[: len(h)]]
        for cl, h in zip(lists, heads)
    ]
    jobs: list[tuple[int, int, int, list[int]]] = []  # (query, repeat, group start, candidate indices)
    prompts: list[list[Message]] = []
    for repeat in range(config.passes):
        for q, (cl, order) in enumerate(zip(lists, heads)):
            rng.shuffle(order)
            for start, end in _groups(len(order), config.window, config.step):
                members = order[start:end]
                jobs.append((q, repeat, start, members))
                prompts.append(build_messages(cl.query.text, [texts[q][i] for i in members]))
    params = replace(config.generation, fix_text=False)
    completions = generate_checked(backend, prompts, params, "groupwise scores") if prompts else []
    if on_step is not None:
        on_step(1, 1)
    scores: list[dict[int, list[float]]] = [{} for _ in lists]
    calls: list[list[WindowCall]] = [[] for _ in lists]
    for (q, repeat, start, members), messages, completion in zip(jobs, prompts, completions):
        scored, reasons = parse_scores(completion.text, len(members))
        for index, score in scored:
            scores[q].setdefault(members[index], []).append(score)
        ranked = [i for i, _ in sorted(scored, key=lambda item: -item[1])]
        ranked += [i for i in range(len(members)) if i not in ranked]
        docids = [lists[q].candidates[i].docid for i in members]
        calls[q].append(
            WindowCall(
                qid=lists[q].query.qid,
                pass_index=repeat,
                position=0,
                start=start,
                end=start + len(members),
                prompt=messages,
                raw_output=completion.text,
                reasoning=completion.reasoning if completion.reasoning is not None else _reason(completion.text),
                parsed=ranked,
                reasons=reasons,
                docids_before=docids,
                docids_after=[docids[i] for i in ranked],
                tokens_in=completion.tokens_in,
                tokens_out=completion.tokens_out,
                seconds=completion.seconds,
                finish_reason=completion.finish_reason,
                method="grouprank",
            )
        )
    results = []
    for q, cl in enumerate(lists):
        averaged = [(i, sum(v) / len(v)) for i, v in scores[q].items()]
        head = [i for i, _ in sorted(averaged, key=lambda item: -item[1])]
        rest = [i for i in range(len(cl.candidates)) if i not in scores[q]]
        results.append(RankResult(cl.query.qid, [cl.candidates[i].docid for i in head + rest], calls[q]))
    return results


_REASON = re.compile(r"<reason>(.*?)(?:</reason>|\Z)", re.DOTALL)


def _reason(text: str) -> str | None:
    match = _REASON.search(text)
    return match.group(1).strip() if match else None


def _defaults(config: WindowConfig) -> WindowConfig:
    config = replace(config, window=20, step=20, passes=6, top_k=100, max_passage_tokens=3000)
    return with_generation(config, max_new_tokens=8000, temperature=0.3, top_p=0.8)


GROUPRANK = Method(
    name="grouprank",
    paradigm="groupwise",
    summary="GroupRank (Diver) groupwise 0-10 scores over shuffled groups, averaged over repeats, sampled",
    source=SOURCE,
    checkpoints=("AQ-MedAI/Diver-GroupRank-7B", "AQ-MedAI/Diver-GroupRank-32B"),
    run=run,
    defaults=_defaults,
    # its reasoning is in <reason> tags, then the JSON scores in <answer>; the answer length is ours
    thinking=Thinking(end="</reason>", close="\n</reason>\n<answer>", answer_tokens=512),
)
