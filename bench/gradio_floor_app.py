"""Gradio's own floor for bench/review_load.py: the same login and endpoint shapes as the review
handlers, doing no work (no database, no rendering), outside the queue as the review handlers
run, or queued (16 at once) for comparison.

Run by bench/review_load.py as `python bench/gradio_floor_app.py PORT USERS PASSWORD queued|direct`.
"""

from __future__ import annotations

import sys

import gradio as gr

QUEUED_CONCURRENCY = 16


def next_item(*_inputs: object) -> tuple[int, int]:
    return 1, 1


def accept(*_inputs: object) -> str:
    return "Saved accept"


def main() -> None:
    port, users, password, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    queued = {"queued": True, "direct": False}[mode]
    with gr.Blocks() as demo:
        inputs = [gr.JSON(visible=False) for _ in range(6)]
        item, version, message = gr.JSON(), gr.JSON(), gr.Markdown()
        button = gr.Button()
        button.click(next_item, inputs[:5], [item, version], api_name="next_item", queue=queued)
        button.click(accept, inputs, [message], api_name="accept", queue=queued)
    demo.queue(default_concurrency_limit=QUEUED_CONCURRENCY).launch(
        server_name="127.0.0.1", server_port=port, auth=[(f"ann{i}", password) for i in range(users)]
    )


if __name__ == "__main__":
    main()
