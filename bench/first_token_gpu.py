"""Time to first token of a served-size reasoning reranker on one GPU, before any UI: Qwen2-7B- and
Qwen2.5-32B-shaped models (random bf16 weights: no hub downloads here; the weights' values do not
change the arithmetic) through transformers, at reranking prompt lengths. It puts the Arena's
fixed click cost (bench/arena_latency.py) next to real models' first-token times.

    python bench/first_token_gpu.py          # needs a CUDA GPU with ~70 GB free for the 32B shape
"""

from __future__ import annotations

import statistics
import sys
import time

SHAPES = {
    "7B": dict(
        hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4
    ),
    "32B": dict(
        hidden_size=5120, intermediate_size=27648, num_hidden_layers=64, num_attention_heads=40, num_key_value_heads=8
    ),
}
PROMPT_TOKENS = (1000, 2000, 4000, 8000)


def first_token_ms(model, length: int, repeats: int = 3) -> float:
    """Median milliseconds of `generate(max_new_tokens=1)` on `length` random tokens, after a warm-up."""
    import torch

    ids = torch.randint(100, 150000, (1, length), device="cuda")
    times = []
    for _ in range(repeats + 1):
        torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.no_grad():
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=1, do_sample=False)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:]) * 1000


def main() -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if not torch.cuda.is_available():
        sys.exit("bench/first_token_gpu.py needs a CUDA GPU; none is visible to torch")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}", flush=True)
    torch.set_default_dtype(torch.bfloat16)
    for name, shape in SHAPES.items():
        config = Qwen2Config(vocab_size=152064, max_position_embeddings=32768, rope_theta=1e6, **shape)
        config._attn_implementation = "sdpa"
        with torch.device("cuda"):
            model = Qwen2ForCausalLM(config).eval()
        params = sum(p.numel() for p in model.parameters()) / 1e9
        for length in PROMPT_TOKENS:
            print(
                f"{name} ({params:.1f}B params) prompt {length} tokens: first token "
                f"{first_token_ms(model, length):.0f} ms (median of 3 after a warm-up)",
                flush=True,
            )
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
