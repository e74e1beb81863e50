"""BRIGHT from disk: the official layout (`examples/<task>.jsonl`, `documents/<task>.jsonl`, optional
first-stage TREC runs) and the Anserini naming (`examples/topics.bright-<task>-original.jsonl.gz`,
`qrels/exclude.bright-<task>.txt`), plain or gzipped.

BRIGHT's scoring rule lives here: a query's `excluded_ids` (its own source, near-duplicates) are
removed from its candidates and from its judgments before anything is reranked or scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reasonrank.io import InputError, iter_jsonl, read_corpus, read_qrels, read_trec_run
from reasonrank.retrieve import (
    FirstStage,
    Qrels,
    bm25_retrieve,
    build_candidate_lists,
    drop_excluded,
    judged_without,
)

BRIGHT_TASKS = (
    "biology",
    "earth_science",
    "economics",
    "psychology",
    "robotics",
    "stackoverflow",
    "sustainable_living",
    "leetcode",
    "pony",
    "aops",
    "theoremqa_questions",
    "theoremqa_theorems",
)
_PLACEHOLDER = "N/A"  # BRIGHT fills empty id lists with it


@dataclass
class BrightExample:
    qid: str
    query: str
    gold_ids: list[str]
    excluded_ids: list[str]


@dataclass
class BrightSource:
    """Which BRIGHT tasks to load and from where; the CLI flags and the UI form map onto it.

    `run` is a path template with `{task}` (e.g. `runs/{task}.reasonir_top100.run`); without it
    the first stage is BM25 over `documents/<task>.jsonl`.
    """

    root: str = ""
    tasks: list[str] = field(default_factory=list)
    run: str | None = None


def task_name(task: str) -> str:
    """Official task names use underscores; Anserini's files use hyphens. Accept either."""
    return task.strip().replace("-", "_")


def _first_existing(candidates: list[Path], what: str) -> Path:
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise InputError(f"no BRIGHT {what} found (tried {tried})")


def _with_gz(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + ".gz")]


def examples_path(root: str | Path, task: str) -> Path:
    root, task = Path(root), task_name(task)
    hyphen = task.replace("_", "-")
    return _first_existing(
        _with_gz(root / "examples" / f"{task}.jsonl")
        + _with_gz(root / "examples" / f"topics.bright-{hyphen}-original.jsonl"),
        f"examples for task {task!r}",
    )


def documents_path(root: str | Path, task: str) -> Path | None:
    """The task's document collection, or None when the tree ships none (a run-only evaluation)."""
    task = task_name(task)
    for path in _with_gz(Path(root) / "documents" / f"{task}.jsonl"):
        if path.is_file():
            return path
    return None


def read_examples(path: str | Path) -> list[BrightExample]:
    """BRIGHT `examples` records; "N/A" placeholders in id lists are dropped."""
    examples = []
    for lineno, obj in iter_jsonl(path):
        for key in ("id", "query"):
            if key not in obj:
                raise InputError(f"{path}:{lineno}: missing field {key!r}")
        ids = {}
        for key in ("gold_ids", "excluded_ids"):
            value = obj.get(key) or []
            if not isinstance(value, list):
                raise InputError(f"{path}:{lineno}: field {key!r} must be a list of ids")
            ids[key] = [str(x) for x in value if str(x) != _PLACEHOLDER]
        examples.append(BrightExample(str(obj["id"]), str(obj["query"]), **ids))
    return examples


def _anserini_exclusions(root: Path, task: str) -> dict[str, list[str]]:
    """Anserini's `exclude.bright-<task>.txt` (`qid docid` lines), when the tree has one."""
    path = root / "qrels" / f"exclude.bright-{task.replace('_', '-')}.txt"
    excluded: dict[str, list[str]] = {}
    if path.is_file():
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) == 2:
                    excluded.setdefault(parts[0], []).append(parts[1])
    return excluded


def load_bright_task(root: str | Path, task: str, run: str | Path | None = None, top_k: int = 100) -> FirstStage:
    """One BRIGHT task as a FirstStage: qrels from `gold_ids`, exclusions applied everywhere.

    With a run, documents are optional (without them only the run can be scored); without a
    run, BM25 over the documents retrieves top_k per query, skipping excluded ids.
    """
    root, task = Path(root), task_name(task)
    examples = read_examples(examples_path(root, task))
    queries = {ex.qid: ex.query for ex in examples}
    excluded = {ex.qid: list(ex.excluded_ids) for ex in examples}
    for qid, docids in _anserini_exclusions(root, task).items():
        known = excluded.setdefault(qid, [])
        seen = set(known)
        known.extend(d for d in docids if d not in seen)
    qrels: Qrels = {ex.qid: {d: 1 for d in ex.gold_ids} for ex in examples if ex.gold_ids}
    if not qrels:
        qrels = read_qrels(root / "qrels" / f"qrels.bright-{task.replace('_', '-')}.txt")
    qrels = {qid: judged_without(rels, excluded.get(qid, ())) for qid, rels in qrels.items()}

    docs_path = documents_path(root, task)
    corpus = read_corpus(docs_path) if docs_path else None
    if run is not None:
        first = drop_excluded(read_trec_run(run), excluded, top_k)
    elif corpus is not None:
        first = bm25_retrieve(corpus, queries, top_k, excluded)
    else:
        raise InputError(f"BRIGHT task {task!r}: no first-stage run given and no documents/{task}.jsonl under {root}")
    lists = (
        build_candidate_lists(first, corpus, queries, qrels, top_k, excluded, dataset=task)
        if corpus is not None
        else None
    )
    return FirstStage(task, first, qrels, lists)


def load_bright(source: BrightSource, top_k: int = 100) -> list[FirstStage]:
    """Every task of a BrightSource, in the order given."""
    if not source.tasks:
        raise InputError("no BRIGHT task given")
    return [
        load_bright_task(source.root, task, source.run.format(task=task_name(task)) if source.run else None, top_k)
        for task in source.tasks
    ]
