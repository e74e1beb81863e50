"""`reasonrank synth`: label items of the store with a reasoning teacher over an OpenAI-compatible API.

The composition root of teacher synthesis: reasonrank.synth produces labels, db.synth picks the
items and stores each label in its own transaction as it arrives. The API key is read from the
environment variable the config names, inside the backend, when requests start: it never
enters the config, the command line, the job's log or events, the database or an export.

On a remote runner (REASONRANK_REGISTER_BY_APP=1) the command opens no store at all: it reads the
items the app selected and exported (`--items`, see db.synth_remote) and sends each finished
label back as a `label` event in its event stream, which the app stores in its own store as it
mirrors the job's log (the wire format is in reasonrank.runners).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from reasonrank.cli.common import Command, Progress, open_store, optional_int
from reasonrank.cli.synth_tally import SynthReport, SynthTally
from reasonrank.flags import Flag, FlagTable
from reasonrank.imports.consistency import ALPHA
from reasonrank.io import InputError, iter_jsonl, open_text, read_queries_tsv
from reasonrank.jobs import EventLog
from reasonrank.redact import redact
from reasonrank.runners import registered_by_app
from reasonrank.synth import (
    PROMPTS,
    SynthOptions,
    SynthOutcome,
    SynthTask,
    price_for,
)
from reasonrank.synth_events import LABEL_EVENT, label_event, teacher_fingerprint
from reasonrank.types import CandidateList, GenerationParams

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from reasonrank.backends.openai import OpenAIBackend

ANY_STATUS = "any"
PROGRESS_EVERY_S = 0.5  # the job panel reads the whole events file on each poll: keep it short


@dataclass
class SynthConfig:
    """`reasonrank synth`: which items, which teacher, which prompt; defaults are DeepSeek-R1's API."""

    dataset: str | None = None
    status: str = "pending"  # review status of the items to label, or "any"
    limit: int | None = None
    candidates: str | None = None  # a candidate file: imported (idempotently), then its lists labelled
    base_url: str = "https://api.deepseek.com/v1"
    model: str = "deepseek-reasoner"
    api_key_env: str = "DEEPSEEK_API_KEY"
    prompt: str = "rankgpt"
    max_tokens: int = 8192
    temperature: float = 0.6
    answers: str | None = None  # gold answers (qid -> text) for positive selection
    alpha: float = ALPHA
    max_in_flight: int = 16
    timeout_s: float = 600.0
    max_retries: int = 5
    max_requests: int | None = None
    max_passage_tokens: int = 512
    price_in: float | None = None  # USD per million prompt tokens (default: reasonrank.synth.PRICES)
    price_out: float | None = None
    db: str | None = None
    items: str | None = None  # a remote job's items, exported by the app (db.synth_remote)

    def teacher(self) -> dict[str, Any]:
        """What makes two runs the same teacher: a label of one counts as done for the other."""
        return {
            "model": self.model,
            "prompt": self.prompt,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "positives": bool(self.answers),
        }


SYNTH_FLAGS = FlagTable(
    [
        Flag("--dataset", "dataset", "label items of this dataset (with --candidates: the name for the file's lists)"),
        Flag(
            "--status",
            "status",
            f"review status of the items to label (pending, accepted, fixed, rejected, conflict or {ANY_STATUS})",
        ),
        Flag("--limit", "limit", "label at most N items this run", optional_int),
        Flag("--candidates", "candidates", "candidate JSONL or RankLLM JSON: imported, then its lists are labelled"),
        Flag("--base-url", "base_url", "teacher endpoint (any OpenAI-compatible server)"),
        Flag("--model", "model", "teacher model id as the server names it"),
        Flag("--api-key-env", "api_key_env", "environment variable holding the API key (the key is never stored)"),
        Flag(
            "--prompt",
            "prompt",
            "rankgpt: the paper's multi-turn labelling prompt; reasonrank: the student's single-turn prompt",
            choices=PROMPTS,
        ),
        Flag("--max-tokens", "max_tokens", "generation budget per request (reasoning + answer)", int),
        Flag("--temperature", "temperature", "sampling temperature", float),
        Flag("--answers", "answers", "gold answers for positive selection: JSONL {qid, answer} or qid<TAB>answer TSV"),
        Flag("--alpha", "alpha", "self-consistency nDCG@10 needed to keep a label", float),
        Flag("--max-in-flight", "max_in_flight", "requests in flight at once", int),
        Flag("--timeout", "timeout_s", "seconds per request", float),
        Flag("--max-retries", "max_retries", "retries of a failed request (429, 5xx, timeouts, malformed bodies)", int),
        Flag(
            "--max-requests",
            "max_requests",
            "request budget, retries included: no item starts that could exceed N",
            optional_int,
        ),
        Flag("--max-passage-tokens", "max_passage_tokens", "truncate each passage to N words", int),
        Flag("--price-in", "price_in", "USD per million prompt tokens, for the cost estimate", float),
        Flag("--price-out", "price_out", "USD per million completion tokens", float),
        Flag("--db", "db", "database URL (default: $REASONRANK_DB or SQLite in $REASONRANK_DATA)"),
        Flag(
            "--items",
            "items",
            "a remote job's items as the app exported them (JSONL); its labels go back as events, no store is opened",
        ),
    ]
)

#: the first line of an --items file; the rest are {"key": item id, **candidate JSONL fields}
ITEMS_FORMAT = "reasonrank-synth-items/1"


# ----------------------------------------------------------------------------- inputs
def read_answers(path: str) -> dict[str, str]:
    """Gold answers by qid from JSONL (`qid` + `answer` or `gold_answer`) or `qid<TAB>answer` TSV."""
    with open_text(path) as handle:
        head = handle.read(4096).lstrip()
    if head.startswith("{"):
        answers = {}
        for lineno, obj in iter_jsonl(path):
            text = obj.get("answer", obj.get("gold_answer"))
            if "qid" not in obj or not isinstance(text, str):
                raise InputError(f"{path}:{lineno}: needs 'qid' and a string 'answer'")
            answers[str(obj["qid"])] = text
        return answers
    return read_queries_tsv(path)


def import_candidates(engine: Engine, config: SynthConfig) -> tuple[str, tuple[str, ...]]:
    """Validate and store the file's lists as items (a second run adds nothing); their dataset and qids."""
    from db.importer import import_batch
    from reasonrank.imports import validate_file

    batch = validate_file(config.candidates, kind="candidates", dataset=config.dataset)
    if batch.issues:
        more = f" (and {len(batch.issues) - 1} more)" if len(batch.issues) > 1 else ""
        raise InputError(f"{batch.issues[0]}{more}; nothing was labelled")
    datasets = {cl.dataset for cl in batch.candidates}
    if len(datasets) > 1:
        raise InputError(
            f"{config.candidates} holds lists of several datasets ({', '.join(sorted(datasets))}); "
            "synthesize one dataset at a time"
        )
    import_batch(engine, batch)
    return datasets.pop(), tuple(cl.query.qid for cl in batch.candidates)


def _backend(config: SynthConfig) -> OpenAIBackend:
    from reasonrank.backends.base import BackendConfig
    from reasonrank.backends.openai import OpenAIBackend

    return OpenAIBackend(
        BackendConfig(
            kind="openai",
            model=config.model,
            base_url=config.base_url,
            api_key_env=config.api_key_env,
            max_in_flight=config.max_in_flight,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
        )
    )


# ----------------------------------------------------------------------------- the run
def run_synth(
    config: SynthConfig,
    engine: Engine | None = None,
    on_progress: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> SynthReport:
    """Label the selected items, storing each label as it arrives; shared by the CLI and tests.

    Inputs (files, the selection) are checked before any request; a permanent endpoint failure
    (bad key, unknown model, unreachable server) raises one BackendError line after the labels
    already finished are stored. On a remote runner the items come from `--items` and each label
    leaves as a `label` event instead (see _run_remote); no store is opened.
    """
    options = SynthOptions(
        model=config.model,
        prompt=config.prompt,
        alpha=config.alpha,
        generation=GenerationParams(max_new_tokens=config.max_tokens, temperature=config.temperature),
        max_passage_tokens=config.max_passage_tokens,
        max_requests=config.max_requests,
    )
    remote = registered_by_app()
    if remote or config.items is not None:
        _check_remote(config, remote)
    elif config.dataset is None and config.candidates is None:
        raise InputError("say which items to label: --dataset NAME, or --candidates FILE")
    answers = read_answers(config.answers) if config.answers else {}
    backend = _backend(config)  # checks the endpoint settings before anything is written
    fingerprint = teacher_fingerprint(config.teacher())
    if remote:  # imports nothing of db/: a worker may run a shipped copy of reasonrank/ only
        return _run_remote(config, backend, options, answers, fingerprint, on_progress)
    from db.synth import ItemSelection, count_labelled, items_to_label, store_label

    selection = ItemSelection(
        dataset=config.dataset, status=None if config.status == ANY_STATUS else config.status, limit=config.limit
    )
    engine = engine or open_store(config.db)
    if config.candidates is not None:
        dataset, qids = import_candidates(engine, config)
        selection = replace(selection, dataset=dataset, qids=qids)
    already = count_labelled(engine, fingerprint)
    item_ids = items_to_label(engine, selection, fingerprint)
    if not item_ids:
        return SynthReport(0, already, None)
    tally = SynthTally(len(item_ids), price_for(config.model, config.price_in, config.price_out))

    def keep(outcome: SynthOutcome) -> bool:
        return store_label(engine, outcome.task.key, outcome.label, outcome.consistency, outcome.kept, fingerprint)

    asyncio.run(
        _label_all(
            keep, backend, options, _tasks(engine, item_ids, answers), tally, on_progress or (lambda d, t, f: None)
        )
    )
    spent = config.max_requests is not None and tally.done < len(item_ids)  # the budget's only way out
    return SynthReport(len(item_ids), already, tally, budget_spent=spent)


def _check_remote(config: SynthConfig, remote: bool) -> None:
    """A remote job labels exactly the app's exported items and can send its labels back."""
    if not remote:
        raise InputError(
            "--items is the file the app exports for a synth job on a remote runner; "
            "a local run selects its items with --dataset or --candidates"
        )
    if config.items is None:
        raise InputError(
            "a synth job on a remote runner labels the items the app selected and exported (--items); "
            'submit it through the app: reasonrank submit --runner RUNNER --cmd "synth …"'
        )
    if config.dataset is not None or config.candidates is not None:
        raise InputError("--items replaces --dataset and --candidates (the app selected the items already)")
    if not EventLog.current().active:
        raise InputError("a remote synth job sends its labels back as events: REASONRANK_JOB_EVENTS is not set")


def read_items(path: str, fingerprint: str) -> tuple[dict[str, Any], Iterator[tuple[int, CandidateList]]]:
    """An --items file: its header, and (item key, list) pairs read lazily. A header written for
    another teacher configuration is refused: the app would not accept the labels."""
    from reasonrank.io import candidate_from_dict

    lines = iter_jsonl(path)
    first = next(lines, None)
    header = first[1] if first else {}
    if header.get("format") != ITEMS_FORMAT:
        raise InputError(f"{path}: not an items file the app exported (no {ITEMS_FORMAT} header)")
    if header.get("fingerprint") != fingerprint:
        raise InputError(
            f"{path}: exported for another teacher configuration than this command's; submit the job again"
        )

    def pairs() -> Iterator[tuple[int, CandidateList]]:
        for lineno, obj in lines:
            if not isinstance(obj.get("key"), int):
                raise InputError(f"{path}:{lineno}: needs an integer 'key'")
            yield obj["key"], candidate_from_dict(obj, f"{path}:{lineno}")

    return header, pairs()


def _run_remote(
    config: SynthConfig,
    backend: OpenAIBackend,
    options: SynthOptions,
    answers: dict[str, str],
    fingerprint: str,
    on_progress: Callable[[int, int, dict[str, Any]], None] | None,
) -> SynthReport:
    """Label the exported items, emitting each label as a `label` event (secrets redacted)."""
    header, pairs = read_items(config.items, fingerprint)
    total = int(header.get("count", 0))
    already = int(header.get("already_labelled", 0))
    if total == 0:
        return SynthReport(0, already, None)
    tally = SynthTally(total, price_for(config.model, config.price_in, config.price_out))
    events, secrets = EventLog.current(), [os.environ.get(config.api_key_env)]

    def send(outcome: SynthOutcome) -> bool:
        fields = label_event(outcome.task.key, outcome.label, outcome.consistency, outcome.kept, fingerprint)
        events.emit(LABEL_EVENT, **_redacted(fields, secrets))
        return True  # whether it is new to the app's store, only the app knows

    tasks = (SynthTask(key, cl, answers.get(cl.query.qid)) for key, cl in pairs)
    asyncio.run(_label_all(send, backend, options, tasks, tally, on_progress or (lambda d, t, f: None)))
    spent = config.max_requests is not None and tally.done < total
    return SynthReport(total, already, tally, budget_spent=spent)


def _redacted(value: Any, secrets: list[str | None]) -> Any:
    """Every string in a (nested) event field with the secrets' values removed."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {key: _redacted(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, secrets) for item in value]
    return value


def _tasks(engine: Engine, item_ids: list[int], answers: dict[str, str]) -> Iterator[SynthTask]:
    from db.synth import iter_lists

    for item_id, candidates in iter_lists(engine, item_ids):
        yield SynthTask(item_id, candidates, answers.get(candidates.query.qid))


async def _label_all(
    keep: Callable[[SynthOutcome], bool],
    backend: OpenAIBackend,
    options: SynthOptions,
    tasks: Iterator[SynthTask],
    tally: SynthTally,
    on_progress: Callable[[int, int, dict[str, Any]], None],
) -> None:
    """Run the pipeline; `keep` stores (or sends) each label before the next outcome is taken and
    says whether it was new."""
    from reasonrank.synth import synthesize

    shown = 0.0
    async for outcome in synthesize(tasks, backend, options):
        stored = False
        if outcome.label is not None:  # committed before the next outcome is taken
            stored = await asyncio.to_thread(keep, outcome)
        else:
            print(f"qid {outcome.task.candidates.query.qid}: {outcome.error}", file=sys.stderr)
        tally.add(outcome, stored, backend)
        if time.monotonic() - shown >= PROGRESS_EVERY_S or tally.done == tally.total:
            shown = time.monotonic()
            on_progress(tally.done, tally.total, tally.figures())
    tally.sync(backend)


def describe_synth(config: SynthConfig, report: SynthReport) -> str:
    """One line on what a run did (printed by the CLI, kept in the job's outputs)."""
    summary = report.summary()
    if report.tally is None:
        return (
            f"nothing to label: no selected item lacks a label of {config.model} with this configuration "
            f"({report.already_labelled} such labels stored)"
        )
    errors = ", ".join(f"{n} {kind}" for kind, n in sorted(summary["errors"].items()))
    cost = f", ~${summary['cost_usd']:.4f}" if summary["cost_usd"] is not None else ""
    budget = f"; request budget spent, {summary['not_started']} items not started" if report.budget_spent else ""
    return (
        f"labelled {summary['labelled']} of {summary['selected']} items with {config.model}: "
        f"{summary['kept']} kept, {summary['filtered']} filtered (alpha {config.alpha}), "
        f"{summary['unscored']} unscored; {summary['failed']} failed{f' ({errors})' if errors else ''}; "
        f"{summary['requests']} requests, {summary['tokens_in']} tokens in, "
        f"{summary['tokens_out']} out{cost}{budget}"
    )


def _synth_command(config: SynthConfig) -> int:
    with Progress("synth", unit="label") as progress:
        report = run_synth(config, on_progress=lambda done, total, figures: progress(done, total, **figures))
    line = describe_synth(config, report)
    EventLog.current().outputs.update(report.summary(), summary=line)
    print(line)
    return 0


SYNTH_COMMANDS = [
    Command(
        "synth",
        "label stored items with a reasoning teacher (DeepSeek-R1 or any OpenAI-compatible API)",
        SYNTH_FLAGS,
        SynthConfig,
        _synth_command,
    ),
]
