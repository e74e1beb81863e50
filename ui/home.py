"""Start tab: what the studio is for, a short guided path through the tabs with the bundled data,
and the shell commands behind them."""

from __future__ import annotations

from reasonrank.backends import BACKEND_KINDS

INTRO = """# ReasonRank Studio
Reasoning listwise rerankers (ReasonRank, arXiv 2508.07050): the model thinks inside
`<think>…</think>`, then ranks a 20-passage window inside `<answer>[4] > [2] > …</answer>`;
a sliding window (20 wide, step 10, back to front) carries the best passages of a top-100 list
to the top in 9 batched model calls.
"""

GUIDE = """## First steps with the bundled data
The app ships with TREC DL19 (43 queries, BM25 top-100, official grades), NovelEval (21 queries)
and a BRIGHT mini set, plus a real recorded RankVicuna-7B run on DL19 — no model needed to start.

1. **Arena** — keep *TREC DL19* and its first query, pick **BM25** and **RankVicuna-7B (recorded)**,
   press **Run**. The first row of figures is the first stage to beat; the recorded column names
   the model, date and source it replays. Add your own model under *Rerankers (registry)*.
2. **Review** — pick the *trec-dl19* dataset and press **Next**: the query, RankVicuna's recorded
   answer with each `[n]` linked to its passage, and the orderable list sit side by side.
   **a** accepts; select a passage, **↑/↓** moves it, **f** saves the fix; **r** rejects with the
   reason typed in the note.
3. **Agreement** — once two people reviewed the same items: where they differ, and adjudication.
4. **Data** (admins) — import your own labels or runs, export accepted ones for SFT, alpaca or RL.
5. **Synthesize** / **Train** (admins) — label with a teacher endpoint; train the tiny preset first
   to see the curves, then a real base model.
6. **Eval** — score the DL19 first stage (and a reranker) the TREC way (grade ≥ 2 for Recall/MRR).
"""


def commands_markdown() -> str:
    """The shell equivalents of the Arena and Eval steps, on the bundled data."""
    kinds = ", ".join(f"`{k}`" for k in BACKEND_KINDS)
    return f"""## From the shell
Score the bundled DL19 first stage with the TREC convention (Recall/MRR count grade ≥ 2):
```
reasonrank eval --candidates db/sample/trec-dl19/bm25_top100_with_text.json \\
    --qrels db/sample/trec-dl19/qrels.txt --name trec-dl19 --rel-level 2 --out runs/eval-dl19
```
Rerank a candidate file with a served model and keep every model call:
```
reasonrank rerank --candidates candidates.jsonl --backend openai \\
    --base-url http://127.0.0.1:8000/v1 --model liuwenhan/reasonrank-7B --out runs/demo
```
Backends: {kinds}. See `reasonrank --help`.
"""


def build() -> None:
    import gradio as gr

    with gr.Tab("Start", id="start"):
        gr.Markdown(INTRO, elem_id="intro")
        gr.Markdown(GUIDE, elem_id="guide")
        gr.Markdown(commands_markdown(), elem_id="commands")
