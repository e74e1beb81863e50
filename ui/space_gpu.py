"""The Arena's GPU-time estimate for ZeroGPU rerankers, shown before the click, and the button
that asks for the full top-100 sweep (the default is one window of 20 passages, which fits a
visitor's daily quota).

Why the estimate is worst-case: ZeroGPU reserves the requested duration up front and the daily
quota is small (2 min anonymous, 3.5 min signed in), so a visitor should see what a run may cost
before spending it. Figures come from reasonrank.spaces_gpu, the same numbers the GPU calls ask for.
"""

from __future__ import annotations

from reasonrank.io import InputError
from reasonrank.spaces_gpu import QUOTA_S, request_seconds
from reasonrank.window import window_spans

SWEEP = {"top_k": 100, "window": 20, "step": 10}


def estimate_markdown(top_k, window, step, max_new_tokens) -> str:
    """One line: windows × max new tokens → worst-case GPU seconds against the daily quotas."""
    try:
        depth, size, stride, tokens = (int(v) for v in (top_k, window, step, max_new_tokens))
        if min(depth, size, stride, tokens) < 1:
            raise InputError("values must be positive")
        windows = len(window_spans(depth, size, min(stride, size), depth)) or 1
    except (TypeError, ValueError, InputError):
        return "GPU estimate: fill in top k, window, step and max new tokens."
    seconds = request_seconds(windows, tokens)
    fits = [who for who, quota in QUOTA_S.items() if seconds <= quota]
    verdict = f"fits the daily quota of {' and '.join(fits)} visitors" if fits else "exceeds a free daily quota"
    return (
        f"**GPU estimate (ZeroGPU rerankers):** {windows} window{'s' if windows != 1 else ''} × up to "
        f"{tokens} new tokens ≈ up to {seconds} s of GPU time — {verdict} "
        f"(daily: {QUOTA_S['anonymous']} s anonymous, {QUOTA_S['signed in']} s signed in)."
    )


def attach(top_k, window, step, max_new_tokens) -> None:
    """Add the estimate line and the sweep button under the Arena's settings (inside its Blocks)."""
    import gradio as gr

    fields = [top_k, window, step, max_new_tokens]
    with gr.Row():
        estimate = gr.Markdown(
            estimate_markdown(top_k.value, window.value, step.value, max_new_tokens.value), elem_id="arena-gpu-estimate"
        )
        sweep = gr.Button("Full top-100 sweep", size="sm", scale=0, elem_id="arena-sweep")
    gr.on(
        [field.change for field in fields],
        estimate_markdown,
        fields,
        estimate,
        api_visibility="private",
        show_progress="hidden",
        queue=False,
    )
    sweep.click(
        sweep_values,
        [max_new_tokens],
        [top_k, window, step, estimate],
        api_visibility="private",
        show_progress="hidden",
        queue=False,
    )


def sweep_values(max_new_tokens):
    """The full top-100 sweep's settings and its estimate (shown at once, not after a round trip
    per field)."""
    depth, size, stride = SWEEP["top_k"], SWEEP["window"], SWEEP["step"]
    return depth, size, stride, estimate_markdown(depth, size, stride, max_new_tokens)
