"""The BRIGHT mini benchmark: a small, real, offline stand-in for one BRIGHT task.

BRIGHT's document collections are too large to ship, but RaDeR released the full text of every
gold document of BRIGHT's theoremqa_questions task. The union of those 231 documents makes a
small real corpus in which each query's relevant documents compete with every other query's gold
documents (real, topically close negatives). With the official 194 queries, their official
judgments and their official `excluded_ids`, that is enough to run the whole pipeline (first
stage → rerank → metrics) on real data in seconds — but it is NOT BRIGHT: the corpus is tiny and
made only of documents that are gold for some query, so absolute scores are far higher than
BRIGHT's and must never be reported as BRIGHT results.

The tree is written in the official on-disk layout that `reasonrank.bright` reads, so
`reasonrank eval --bright-root DIR --task theoremqa_questions` evaluates it like any BRIGHT task.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from reasonrank.bright import examples_path
from reasonrank.io import InputError, iter_jsonl, read_qrels, write_jsonl
from reasonrank.reproduce import EXCLUSION_RULE, file_sha256

MINI_TASK = "theoremqa_questions"
GOLD_DOCS = Path("docs") / "theoremqa_questions_gold_docs.json"  # RaDeR's release, under the BRIGHT dir
OFFICIAL_QRELS = Path("qrels") / "qrels.bright-theoremqa-questions.txt"
LICENCES = ("LICENSE.BRIGHT", "LICENSE.RaDeR-MIT")
MANIFEST = "manifest.json"
_PLACEHOLDER = "N/A"


@dataclass(frozen=True)
class BrightMini:
    """What was built: the tree's root and the figures a reader should check."""

    root: Path
    queries: int
    documents: int
    judgments: int
    excluded_in_corpus: int  # (query, excluded doc) pairs whose document is in the corpus
    excluded_dropped: int  # excluded ids left out of examples because the corpus lacks them


def _gold_documents(path: Path) -> dict[str, str]:
    """{docid: full text} from RaDeR's file, in first-appearance order (BM25 ties follow it)."""
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the gold documents {path}: {exc}") from None
    documents: dict[str, str] = {}
    for index, record in enumerate(records):
        ids, texts = record.get("gold_ids"), record.get("gold_contents")
        if not isinstance(ids, list) or not isinstance(texts, list) or len(ids) != len(texts):
            raise InputError(f"{path}: record {index} needs gold_ids and gold_contents of the same length")
        for docid, text in zip(ids, texts):
            if documents.setdefault(str(docid), text) != text:
                raise InputError(f"{path}: document {docid!r} has two different texts")
    return documents


def _official_examples(source: Path) -> list[dict]:
    path = examples_path(source, MINI_TASK)
    return [record for _, record in iter_jsonl(path)]


def _ids(record: dict, key: str) -> list[str]:
    return [str(x) for x in record.get(key) or [] if str(x) != _PLACEHOLDER]


def build_bright_mini(source: str | Path, out: str | Path) -> BrightMini:
    """Write the mini benchmark under `out` from a BRIGHT directory holding the official
    theoremqa_questions examples and qrels plus RaDeR's gold documents.

    Written: `examples/theoremqa_questions.jsonl` (the official records; `excluded_ids` keep
    every id present in this corpus — an id outside it can be neither retrieved nor judged, so
    the others are left out, and counted in the manifest), `documents/theoremqa_questions.jsonl`
    (`id`, `content`), the official qrels file unchanged, the licences, a README and a manifest
    with the source files' sha256. Every judged document must have text, and the official qrels
    must equal the examples' gold_ids, or nothing is trusted: InputError.
    """
    source, root = Path(source), Path(out)
    documents = _gold_documents(source / GOLD_DOCS)
    examples = _official_examples(source)
    qrels = read_qrels(source / OFFICIAL_QRELS)
    in_corpus = dropped = 0
    for record in examples:
        qid, gold = str(record["id"]), set(_ids(record, "gold_ids"))
        if gold != set(qrels.get(qid, {})):
            raise InputError(f"query {qid!r}: official qrels and the examples' gold_ids disagree")
        missing = sorted(gold - documents.keys())
        if missing:
            raise InputError(f"query {qid!r}: gold document {missing[0]!r} has no text in {source / GOLD_DOCS}")
        excluded = _ids(record, "excluded_ids")
        kept = [docid for docid in excluded if docid in documents]
        in_corpus += len(kept)
        dropped += len(excluded) - len(kept)
        record["excluded_ids"] = kept

    for folder in ("examples", "documents", "qrels"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    write_jsonl(examples, root / "examples" / f"{MINI_TASK}.jsonl")
    write_jsonl(
        ({"id": docid, "content": text} for docid, text in documents.items()), root / "documents" / f"{MINI_TASK}.jsonl"
    )
    shutil.copyfile(source / OFFICIAL_QRELS, root / OFFICIAL_QRELS)
    for name in LICENCES:
        if (source / name).is_file():
            shutil.copyfile(source / name, root / name)
    built = BrightMini(root, len(examples), len(documents), sum(len(r) for r in qrels.values()), in_corpus, dropped)
    _write_readme(root, built)
    manifest = {
        "what": "BRIGHT mini benchmark (a small stand-in, not BRIGHT)",
        "task": MINI_TASK,
        "queries": built.queries,
        "documents": built.documents,
        "judgments": built.judgments,
        "excluded_in_corpus": built.excluded_in_corpus,
        "excluded_dropped_not_in_corpus": built.excluded_dropped,
        "exclusion_rule": EXCLUSION_RULE,
        "sources": {
            str(path): file_sha256(source / path)
            for path in (GOLD_DOCS, OFFICIAL_QRELS, examples_path(source, MINI_TASK).relative_to(source))
        },
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return built


def ensure_bright_mini(source: str | Path, out: str | Path) -> Path:
    """The mini benchmark's root, built only when `out` holds no complete tree yet."""
    root = Path(out)
    if not (root / MANIFEST).is_file():
        build_bright_mini(source, root)
    return root


def _write_readme(root: Path, built: BrightMini) -> None:
    text = f"""# BRIGHT mini benchmark — a small stand-in, not BRIGHT

Built by `reasonrank bright-mini` from public data:
- queries and judgments: BRIGHT's official `theoremqa_questions` examples and qrels
  (as redistributed by castorini/anserini-tools), CC-BY-4.0 (`LICENSE.BRIGHT`);
- documents: the full text of every query's gold documents, released by RaDeR
  (Debrup-61/RaDeR, `data/BRIGHT/similarqs.json`, MIT, `LICENSE.RaDeR-MIT`).

{built.queries} queries, {built.documents} documents, {built.judgments} judgments. The corpus is only the
union of the gold documents, so each query's negatives are other queries' gold documents.
Scores on it are much higher than on BRIGHT and must not be reported as BRIGHT results.

Exclusions: {EXCLUSION_RULE}. `excluded_ids` keep the {built.excluded_in_corpus} (query, document)
pairs whose document is in this corpus; {built.excluded_dropped} ids of documents outside it were left out
(they can be neither retrieved nor judged here).

Evaluate (DIR = this directory; BM25 first stage): `reasonrank eval --bright-root DIR --task {MINI_TASK}`
"""
    (root / "README.md").write_text(text, encoding="utf-8")
