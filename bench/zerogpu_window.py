"""The ZeroGPU code path on one CUDA GPU: a Qwen2.5-7B-shaped model (random bf16 weights: no hub
downloads; the values do not change the arithmetic) reranking DL19 through the `zerogpu` backend,
i.e. generation inside the `@spaces.GPU`-decorated functions (the decorator is present; there is
no ZeroGPU scheduler here, so it runs in-process) and streamed through TextIteratorStreamer.

    python bench/zerogpu_window.py            # CUDA, ~20 GB of GPU memory and ~16 GB of disk
    python bench/zerogpu_window.py --smoke    # the same plumbing on CPU with a tiny model

Prints: time to first streamed token and tokens/s for one 20-passage window at 750 new tokens,
peak GPU memory (ZeroGPU's slice is 70 GB), and the seconds of the whole top-100 sweep (9 windows),
next to the GPU seconds `reasonrank.spaces_gpu` would request for each. The tokenizer is the tiny
test model's BPE padded with placeholder tokens to Qwen2.5's 152,064 ids, so the LM head has its
real size; prompt lengths in its tokens are printed (a real Qwen tokenizer gives ~2k per window).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

QWEN25_7B = dict(
    hidden_size=3584,
    intermediate_size=18944,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    vocab_size=152064,
)
NEW_TOKENS = 750


def build_model(out: Path, smoke: bool) -> Path:
    """The tiny test model's folder (smoke), or a 7B-shaped random bf16 Qwen2 saved to `out`."""
    from tiny_model import build_tiny_qwen2

    tiny = build_tiny_qwen2(out / "tiny")
    if smoke:
        return tiny
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    tokenizer.add_tokens([f"<pad{i}>" for i in range(QWEN25_7B["vocab_size"] - len(tokenizer))])
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = Qwen2Config(
        **QWEN25_7B, max_position_embeddings=32768, tie_word_embeddings=False, eos_token_id=eos, pad_token_id=eos
    )
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    folder = out / "qwen25-7b-shaped"
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model on CPU (checks the plumbing only)")
    args = parser.parse_args()
    import spaces
    import torch

    from reasonrank.arena import RerankerSpec, run_arena
    from reasonrank.backends import zerogpu
    from reasonrank.backends.base import BackendConfig
    from reasonrank.backends.pool import BackendPool
    from reasonrank.io import read_qrels, read_rank_llm_json
    from reasonrank.spaces_gpu import call_seconds, on_zero_gpu, request_seconds
    from reasonrank.types import GenerationParams
    from reasonrank.window import WindowConfig

    if not args.smoke and not torch.cuda.is_available():
        print("error: no CUDA GPU (use --smoke to check the plumbing on CPU)", file=sys.stderr)
        return 2
    assert not on_zero_gpu(), "run this off ZeroGPU: it measures the decorated path without the scheduler"
    assert spaces.GPU(duration=1)(zerogpu._gpu_stream) is zerogpu._gpu_stream, "spaces.GPU is not a no-op here"
    data = REPO / "tests" / "data" / "trec-dl19"
    lists = read_rank_llm_json(data / "bm25_top100_with_text.json", read_qrels(data / "qrels.txt"))
    candidates = lists[0]
    tokens = 16 if args.smoke else NEW_TOKENS
    device = "cpu" if args.smoke else "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        folder = build_model(Path(tmp), args.smoke)
        print(f"model folder written in {time.perf_counter() - began:.1f} s")
        options = {"device": device, "dtype": "float32" if args.smoke else "bfloat16"}
        spec = RerankerSpec("7B-shaped on the ZeroGPU path", "zerogpu", str(folder), options)
        pool = BackendPool()
        began = time.perf_counter()
        with pool.lease(BackendConfig(kind="zerogpu", model=str(folder), **options)):
            pass
        print(f"model loaded in {time.perf_counter() - began:.1f} s")
        if not args.smoke:
            torch.cuda.reset_peak_memory_stats()
        generation = GenerationParams(max_new_tokens=tokens)
        for label, config in (
            ("one window (20 passages)", WindowConfig(window=20, step=10, top_k=20, generation=generation)),
            ("top-100 sweep (9 windows)", WindowConfig(window=20, step=10, top_k=100, generation=generation)),
        ):
            *_, [lane] = run_arena(candidates, [spec], config, pool=pool)
            if lane.status != "done":
                print(f"{label}: FAILED: {lane.error}", file=sys.stderr)
                return 1
            streamed = lane.seconds - lane.first_delta_s
            windows = len(lane.calls)
            per_window = [call.tokens_out / call.seconds for call in lane.calls if call.seconds]
            print(
                f"{label}: {windows} window(s), prompt tokens {lane.tokens_in // max(windows, 1)} per window, "
                f"{lane.tokens_out} tokens out; first streamed token {lane.first_delta_s:.2f} s; "
                f"{sum(per_window) / len(per_window):.1f} tokens/s per window (prompt included); total {lane.seconds:.1f} s "
                f"(streaming {streamed:.1f} s); GPU seconds requested: "
                f"{call_seconds(1, tokens)} per window, {request_seconds(windows, tokens)} in all"
            )
        if not args.smoke:
            peak = torch.cuda.max_memory_allocated() / 2**30
            print(
                f"peak GPU memory {peak:.1f} GiB (ZeroGPU slice: 70 GB); CUDA initialised in this process: yes (no scheduler)"
            )
        pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
