"""Convert RankLLM's stored `prompts_and_responses` file of a single-window run into a recording
(reasonrank.replay): `calls.jsonl` in the project's WindowCall format plus `recording.json`.

Each record's window is the first `--depth` candidates of the retrieve-results file (the order the
prompt lists them in; checked passage by passage against the prompt text), the permutation is
read from the recorded response with reasonrank.parse, and, when `--run` is given, the result
must equal that run's ranking. Nothing is generated: text, prompt and ranking are the recorded ones.

    python scripts/record_rank_llm.py --responses prompts_and_responses.json \
        --candidates db/sample/trec-dl19/bm25_top100_with_text.json --dataset trec-dl19 \
        --run db/sample/trec-dl19/rankvicuna7b_rerank_top20.run --meta meta.json \
        --out db/sample/recorded/rankvicuna7b-dl19
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from reasonrank.io import InputError, read_rank_llm_json, read_trec_run, write_jsonl
from reasonrank.parse import parse_ranking
from reasonrank.replay import CALLS_FILE, META_FILE
from reasonrank.types import WindowCall

QUERY = re.compile(r"Search Query: (.*?)\.\nRank the ", re.DOTALL)


def _letters(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text)


def read_records(path: Path) -> list[dict]:
    """RankLLM writes the records comma-separated without the enclosing brackets."""
    text = path.read_text(encoding="utf-8").strip().rstrip(",")
    return json.loads(text if text.startswith("[") else f"[{text}]")


def convert(records: list[dict], candidates_path: Path, dataset: str, depth: int) -> list[WindowCall]:
    by_query = {cl.query.text: cl for cl in read_rank_llm_json(candidates_path, dataset=dataset)}
    calls = []
    for number, record in enumerate(records, 1):
        prompt, response = record["prompt"], record["response"]
        match = QUERY.search(prompt)
        if not match or match.group(1) not in by_query:
            raise InputError(f"record {number}: its query is not in {candidates_path}")
        cl = by_query[match.group(1)]
        window = cl.candidates[:depth]
        shown = [_letters(part) for part in re.split(r"\n\[\d+\] ", prompt)[1:]]
        for n, passage in enumerate(window, 1):
            # RankLLM repaired the mojibake of some passages before prompting: compare ASCII letters
            if n > len(shown) or not shown[n - 1].startswith(_letters(passage.text)[:30]):
                raise InputError(f"record {number} ({cl.query.qid}): passage [{n}] is not {passage.docid}")
        parsed = parse_ranking(response, len(window))
        before = [p.docid for p in window]
        calls.append(
            WindowCall(
                qid=cl.query.qid,
                pass_index=0,
                position=0,
                start=0,
                end=len(window),
                prompt=[{"role": "user", "content": prompt}],
                raw_output=response,
                reasoning=parsed.reasoning,
                parsed=parsed.order,
                reasons=parsed.reasons,
                docids_before=before,
                docids_after=[before[i] for i in parsed.order],
            )
        )
    return calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=Path, required=True)
    parser.add_argument("--candidates", type=Path, required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--run", type=Path, help="the TREC run the responses produced: the replay must match it")
    parser.add_argument("--meta", type=Path, required=True, help="recording.json to copy (model, date, source …)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        calls = convert(read_records(args.responses), args.candidates, args.dataset, args.depth)
        if args.run:
            run = read_trec_run(args.run)
            for call in calls:
                stored = [docid for docid, _ in run[call.qid]][: args.depth]
                if call.docids_after != stored:
                    raise InputError(f"{call.qid}: replayed order differs from {args.run}")
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl((vars(call) for call in calls), args.out / CALLS_FILE)
    (args.out / META_FILE).write_text(args.meta.read_text(encoding="utf-8"), encoding="utf-8")
    print(f"{len(calls)} calls → {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
