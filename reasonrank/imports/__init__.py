"""Validated imports: read a candidate, label, qrels or TREC run file, or a ReasonRank release
directory, and report every problem in it with its line and field.

Why every problem and not the first: a reviewer fixing a 13k-row file by hand should not need
thirteen thousand round trips. Why no database here: validation is pure, so the CLI, the UI
and the tests share it, and `db.importer` writes a batch only when it has no issues (one bad
line means zero rows written).

Kinds (`validate_file(kind=...)`, "auto" tells them apart):
  * "candidates": our candidate JSONL (docs/architecture.md §2.1) or RankLLM's retrieve-results JSON list.
  * "labels": our label JSONL: candidate fields plus `ranking` (a permutation of the candidates)
    and optional `reasoning, model, relevant_docids, source, raw_output, reasons, tokens_in,
    tokens_out`. Unknown fields are ignored.
  * "reasonrank": the ReasonRank release (HF `liuwenhan/reasonrank_data_13k`): a directory with
    `training_data_all.jsonl` (`dataset, qid, initial_list, final_list, reasoning,
    relevant_docids`; `initial_list` is the first-stage order, `final_list` the teacher's) and
    the text maps `id_query/` and `id_doc/`. The maps' on-disk shape is not documented, so each
    may be a directory (every `.jsonl`, `.json`, `.tsv` file in it, e.g. one per dataset) or one
    file beside the data file (`id_query.jsonl` …). Accepted files: JSONL lines with an id
    (`id`/`qid`/`docid`/`_id`) and a text (`text`/`query`/`contents`/`content`); a JSON object
    `{id: text}`; TSV `id<TAB>text`. Ids must be unique across the files of one map (the
    release's ids carry their dataset, e.g. "math_1001"); a repeat with another text is an issue.
  * "trec-run": a run file (`qid Q0 docid rank score tag`) as MODEL labels over a candidate file
    (`candidates_path`, our JSONL or RankLLM JSON): one Label per run qid.
  * "qrels": `qid iter docid grade`.

Limits: a string field longer than `max_field_chars` is an issue; at most MAX_ISSUES issues are
kept per import, then one "… and N more issues" line.

Modules: `issues` (issue collection and field checks), `readers` (lines and JSON), `records`
(candidate/label JSONL, RankLLM JSON), `trec` (qrels, runs as labels), `release` (the ReasonRank
release), `consistency` (self-consistency, ALPHA), `validate` (validate_file, the entry point).
"""

from __future__ import annotations

from reasonrank.imports.consistency import ALPHA, CONSISTENCY_CUTOFF, label_consistency, self_consistency
from reasonrank.imports.issues import MAX_ISSUES, ImportIssue
from reasonrank.imports.records import SOURCES
from reasonrank.imports.release import RELEASE_FILE
from reasonrank.imports.validate import KINDS, ImportBatch, validate_file

__all__ = [
    "ALPHA",
    "CONSISTENCY_CUTOFF",
    "KINDS",
    "MAX_ISSUES",
    "RELEASE_FILE",
    "SOURCES",
    "ImportBatch",
    "ImportIssue",
    "label_consistency",
    "self_consistency",
    "validate_file",
]
