"""Start tab: what the studio does and the shell commands behind it (ui.build_app orders the tabs)."""

from __future__ import annotations

from reasonrank.backends import BACKEND_KINDS

INTRO = """# ReasonRank Studio
Reasoning listwise rerankers (ReasonRank, arXiv 2508.07050): the model thinks inside
`<think>…</think>`, then ranks a 20-passage window inside `<answer>[4] > [2] > …</answer>`;
a sliding window (20 wide, step 10, back to front) carries the best passages of a top-100 list
to the top in 9 batched model calls.
"""


def commands_markdown() -> str:
    """The shell commands behind the app's work, so a user can run the same from a terminal."""
    kinds = ", ".join(f"`{k}`" for k in BACKEND_KINDS)
    return f"""## From the shell
Rerank a candidate file and keep every model call:
```
reasonrank rerank --candidates candidates.jsonl --backend openai \\
    --base-url http://127.0.0.1:8000/v1 --model liuwenhan/reasonrank-7B --out runs/demo
```
Evaluate a first stage (and optionally a reranker) with nDCG@1/5/10, Recall@10, MRR@10:
```
reasonrank eval --queries queries.tsv --qrels qrels.txt --run bm25.run
```
Backends: {kinds}. See `reasonrank --help`.
"""


def build() -> None:
    import gradio as gr

    with gr.Tab("Start", id="start"):
        gr.Markdown(INTRO, elem_id="intro")
        gr.Markdown(commands_markdown(), elem_id="commands")
