"""`reasonrank import | export | user | seed`: the label store from the shell.

These are the CLI's only commands that touch `db/` (imported inside the handlers, so `rerank`
and `eval` never load SQLAlchemy). Each is a form over one config dataclass, like the others,
so the UI can show and re-run the exact command.
"""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reasonrank.cli.common import EXIT_USAGE, Command, open_store
from reasonrank.flags import Flag, FlagTable
from reasonrank.imports import ALPHA, KINDS, SOURCES
from reasonrank.io import InputError

if TYPE_CHECKING:  # db/ is only imported inside the handlers (rerank and eval never load SQLAlchemy)
    from db.importer import ImportSummary
    from reasonrank.export import ExportFile

EXPORT_FORMATS = ("sft", "alpaca", "rl")


@dataclass
class ImportConfig:
    """`reasonrank import`: validate a file completely, then write it in one transaction."""

    path: str = ""
    kind: str = "auto"
    dataset: str | None = None
    candidates: str | None = None
    qrels: str | None = None
    run_depth: int | None = None
    model: str | None = None
    source: str | None = None
    required_reviews: int = 1
    alpha: float = ALPHA
    db: str | None = None


@dataclass
class ExportConfig:
    """`reasonrank export`: reviewed items → a training file under <data dir>/exports/."""

    format: str = "sft"
    name: str = ""
    datasets: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=lambda: ["accepted", "fixed"])
    min_consistency: float | None = None
    agreed_only: bool = False
    allow_empty_reasoning: bool = False  # sft/alpaca: keep items without reasoning (empty think block)
    tokenizer: str | None = None
    max_passage_tokens: int = 512
    window: int = 20
    overwrite: bool = False
    db: str | None = None


@dataclass
class UserConfig:
    """`reasonrank user add NAME --role …` / `reasonrank user list`."""

    action: str = "list"
    name: str | None = None
    role: str = "annotator"
    password_env: str | None = None
    db: str | None = None


@dataclass
class SeedConfig:
    """`reasonrank seed`: import the bundled sample (NovelEval, DL19 + RankVicuna) if missing."""

    db: str | None = None


def _words(text: str) -> list[str]:
    return [word.strip() for word in text.split(",") if word.strip()]


_DB_FLAG = Flag("--db", "db", "database URL (default: $REASONRANK_DB or SQLite in $REASONRANK_DATA)")

IMPORT_FLAGS = FlagTable(
    [
        Flag("path", "path", "file (or ReasonRank release directory) to import", kind="positional", required=True),
        Flag("--kind", "kind", "what the file holds", choices=("auto", *KINDS)),
        Flag("--dataset", "dataset", "dataset name for records without one (default: the file name)"),
        Flag("--candidates", "candidates", "trec-run: the candidate file that gives texts and first-stage order"),
        Flag("--qrels", "qrels", "judgments to attach (qid iter docid grade)"),
        Flag("--run-depth", "run_depth", "trec-run: keep only the top N ranks of each query", int),
        Flag("--model", "model", "model that wrote the labels"),
        Flag("--source", "source", "who wrote the labels", choices=SOURCES),
        Flag("--required-reviews", "required_reviews", "independent reviews each new item needs", int),
        Flag("--alpha", "alpha", "self-consistency threshold for kept labels", float),
        _DB_FLAG,
    ]
)

EXPORT_FLAGS = FlagTable(
    [
        Flag("--format", "format", "training format", choices=EXPORT_FORMATS),
        Flag("--name", "name", "export name (file <data dir>/exports/NAME.jsonl)", required=True),
        Flag("--dataset", "datasets", "only this dataset (repeat for several)", kind="repeat"),
        Flag("--status", "statuses", "comma-separated decisions to include", _words, render=",".join),
        Flag("--min-consistency", "min_consistency", "only labels with self-consistency ≥ X", float),
        Flag("--agreed-only", "agreed_only", "leave out items an admin had to adjudicate", kind="switch"),
        Flag(
            "--allow-empty-reasoning",
            "allow_empty_reasoning",
            "sft/alpaca: include items without reasoning text (their <think> block is empty)",
            kind="switch",
        ),
        Flag("--tokenizer", "tokenizer", "tokenizer for passage truncation (default: whitespace words)"),
        Flag("--max-passage-tokens", "max_passage_tokens", "truncate each passage to N tokens", int),
        Flag("--window", "window", "largest list a training row may hold", int),
        Flag("--overwrite", "overwrite", "replace an existing export of the same name", kind="switch"),
        _DB_FLAG,
    ]
)

USER_FLAGS = FlagTable(
    [
        Flag("action", "action", "add or list", kind="positional", choices=("add", "list"), required=True),
        Flag("name", "name", "user name (add)", kind="positional"),
        Flag("--role", "role", "admin or annotator", choices=("admin", "annotator")),
        Flag("--password-env", "password_env", "read the password from this environment variable"),
        _DB_FLAG,
    ]
)

SEED_FLAGS = FlagTable([_DB_FLAG])


@dataclass
class ImportOutcome:
    """What an import did: every issue (then nothing was written), else the store's summary."""

    issues: list[str]
    summary: ImportSummary | None = None
    issue_count: int = 0  # all problems found (`issues` lists at most the first 200 and a count of the rest)

    @property
    def problems(self) -> str:
        """ "N problem(s)", counting every problem, not only the ones listed."""
        return f"{max(self.issue_count, len(self.issues)):,} problem(s)"


@dataclass
class ExportOutcome:
    """The written export file (path, count, sha256) and the items left out, by reason."""

    file: ExportFile
    skipped: dict[str, int]


def run_import(config: ImportConfig, engine=None) -> ImportOutcome:
    """Validate the whole file, then store it in one transaction; with any issue nothing is written.

    Shared by `reasonrank import` and the UI's import panel, so both refuse and store alike.
    """
    from db.importer import ImportRefused, import_batch
    from reasonrank.imports import validate_file

    batch = validate_file(
        config.path,
        kind=config.kind,
        dataset=config.dataset,
        candidates_path=config.candidates,
        qrels_path=config.qrels,
        run_depth=config.run_depth,
        model=config.model,
        source=config.source,
    )
    if batch.issues:
        return ImportOutcome([str(issue) for issue in batch.issues], issue_count=batch.issue_count)
    try:
        summary = import_batch(
            engine or open_store(config.db), batch, config.alpha, required_reviews=config.required_reviews
        )
    except ImportRefused as refused:  # problems only the store can see (e.g. a passage text conflict)
        return ImportOutcome(list(refused.problems))
    return ImportOutcome([], summary)


def describe_import(config: ImportConfig, summary: ImportSummary) -> str:
    """One line on what an import stored (the CLI prints it, the UI shows it)."""
    return (
        f"imported {config.path} into {', '.join(summary.datasets) or config.dataset or '(no dataset)'}: "
        f"{summary.items_created} new items, {summary.items_updated} updated, "
        f"{summary.items_unchanged} unchanged; {summary.labels_created} new labels "
        f"({summary.labels_kept} with self-consistency ≥ {config.alpha}), "
        f"{summary.labels_unchanged} already stored"
    )


def _import_command(config: ImportConfig) -> int:
    outcome = run_import(config)
    if outcome.issues:
        for issue in outcome.issues:
            print(issue, file=sys.stderr)
        print(f"error: {outcome.problems} in {config.path}; nothing was written", file=sys.stderr)
        return EXIT_USAGE
    print(describe_import(config, outcome.summary))
    return 0


def _load_tokenizer(name: str | None):
    if name is None:
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name)


def run_export(config: ExportConfig, engine=None, created_by: str | None = None) -> ExportOutcome:
    """Build the rows, write <data dir>/exports/NAME.jsonl and record it (with its creator).

    Shared by `reasonrank export` and the UI's export panel. Bad filters, an empty result or an
    existing name without overwrite raise InputError and leave no file and no Export row.
    """
    from db.engine import data_dir
    from db.exports import ExportFilter, record_export, reviewed_items
    from reasonrank import export

    filters = ExportFilter(
        statuses=tuple(config.statuses),
        datasets=tuple(config.datasets) or None,
        min_consistency=config.min_consistency,
        agreed_only=config.agreed_only,
    )
    engine = engine or open_store(config.db)
    items = reviewed_items(engine, filters)
    build = {"sft": export.sft_rows, "alpaca": export.alpaca_rows, "rl": export.rl_rows}[config.format]
    options = {"allow_empty_reasoning": config.allow_empty_reasoning} if config.format != "rl" else {}
    rows = build(
        items,
        tokenizer=_load_tokenizer(config.tokenizer),
        max_passage_tokens=config.max_passage_tokens,
        window=config.window,
        **options,
    )
    if not rows:
        raise InputError(
            f"export {config.name!r} has no rows; nothing was written: {_left_out(len(items), rows.skipped)}"
        )
    written = export.write_export(rows, data_dir() / "exports", config.name, overwrite=config.overwrite)
    record_export(engine, config.name, config.format, filters, written, created_by=created_by)
    return ExportOutcome(written, dict(rows.skipped))


def _left_out(matched: int, skipped: dict[str, int]) -> str:
    """How many of the items that matched the filters were left out, and why."""
    total = sum(skipped.values())
    reasons = "".join(f"; {count}: {reason}" for reason, count in sorted(skipped.items()))
    return f"{matched} reviewed item(s) matched the filters, {total} left out{reasons}"


def describe_export(config: ExportConfig, outcome: ExportOutcome) -> list[str]:
    """What an export wrote, and what it left out and why (the CLI prints these lines, the UI shows them)."""
    file = outcome.file
    matched = file.count + sum(outcome.skipped.values())
    return [
        f"wrote {file.count} {config.format} rows to {file.path} (sha256 {file.sha256})",
        _left_out(matched, outcome.skipped),
    ]


def _export_command(config: ExportConfig) -> int:
    for line in describe_export(config, run_export(config)):
        print(line)
    return 0


def _password(config: UserConfig) -> str:
    if config.password_env:
        value = os.environ.get(config.password_env)
        if not value:
            raise InputError(f"environment variable {config.password_env} is not set or empty")
        return value
    if not sys.stdin.isatty():
        raise InputError("no password: pass --password-env VAR, or run in a terminal to be asked")
    first = getpass.getpass(f"password for {config.name}: ")
    if first != getpass.getpass("again: "):
        raise InputError("the two passwords differ")
    return first


def _user_command(config: UserConfig) -> int:
    from db.users import add_user, list_users

    engine = open_store(config.db)
    if config.action == "add":
        if not config.name:
            raise InputError("user add needs a NAME")
        user = add_user(engine, config.name, config.role, _password(config))
        print(f"added {user.role} {user.name}")
        return 0
    for user in list_users(engine):
        print(f"{user.name}\t{user.role}")
    return 0


def _seed_command(config: SeedConfig) -> int:
    from db.seed import seed_sample

    summary = seed_sample(open_store(config.db))
    for name, result in summary.imports.items():
        print(f"{name}: {result.items_created} new items, {result.items_unchanged} already there")
    return 0


DATA_COMMANDS = [
    Command(
        "import",
        "validate a file of candidates, labels, a TREC run or qrels, then store it",
        IMPORT_FLAGS,
        ImportConfig,
        _import_command,
    ),
    Command(
        "export",
        "write reviewed items as an SFT, alpaca or GRPO training file",
        EXPORT_FLAGS,
        ExportConfig,
        _export_command,
    ),
    Command("user", "add or list review-app users", USER_FLAGS, UserConfig, _user_command),
    Command(
        "seed",
        "import the bundled sample (NovelEval, TREC DL19 + RankVicuna labels)",
        SEED_FLAGS,
        SeedConfig,
        _seed_command,
    ),
]
