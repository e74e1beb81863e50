"""ZeroGPU plumbing: the `@spaces.GPU` decorator when the `spaces` package is there, GPU-time
estimates for a rerank request, and ZeroGPU's quota errors as one plain sentence.

Why a shim: `spaces.GPU` is effect-free off ZeroGPU, but the package is optional for the library
(the CLI runs without it). On ZeroGPU (SPACES_ZERO_GPU=true) the package swaps torch's CUDA
entry points for its own so the main process never initialises CUDA; each decorated call runs in
a forked worker that holds a GPU slice for at most the requested duration, and the visitor's
daily quota (2 min anonymous, 3.5 min signed in) pays for that duration. Shorter requests get
better queue priority, so the duration is computed from the request instead of a fixed maximum.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: Decode speed assumed for the estimate (tokens/s of one greedy 7B bf16 stream on a ZeroGPU
#: slice, conservative) and the fixed cost of one GPU call (scheduling, fork, weights to the GPU).
TOKENS_PER_S = 30.0
CALL_OVERHEAD_S = 10.0
#: a ZeroGPU request may not ask for more than this many seconds (longer needs PRO)
MAX_DURATION_S = 300
#: daily ZeroGPU quota in seconds by visitor kind
QUOTA_S = {"anonymous": 120, "signed in": 210}


def on_zero_gpu() -> bool:
    """True on ZeroGPU hardware (the platform sets SPACES_ZERO_GPU=true)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() == "true"


def gpu(duration: Callable[..., float]) -> Callable[[F], F]:
    """`spaces.GPU(duration=duration)` when the package can be imported, else the identity.

    `duration` takes the decorated function's arguments and returns seconds. A `spaces` that is
    installed but cannot load (ZeroGPU's variables set beside a CPU-only torch) is reported on
    stderr and leaves the function undecorated, so the app still starts and runs on CPU.
    """

    def decorate(fn: F) -> F:
        try:
            import spaces

            return spaces.GPU(duration=duration)(fn)
        except ImportError:
            return fn
        except Exception as exc:  # spaces' torch patching raises whatever torch raises
            reason = f"{type(exc).__name__}: {exc}"
            print(f"spaces: ZeroGPU is unavailable here ({reason}); {fn.__name__} runs without it", file=sys.stderr)
            return fn

    return decorate


def call_seconds(calls: int, max_new_tokens: int) -> int:
    """GPU seconds to ask for `calls` window generations of up to `max_new_tokens` each, capped at
    what ZeroGPU grants one request."""
    wanted = calls * (max_new_tokens / TOKENS_PER_S) + CALL_OVERHEAD_S
    return min(MAX_DURATION_S, math.ceil(wanted))


def request_seconds(windows: int, max_new_tokens: int) -> int:
    """Worst-case GPU seconds of a whole rerank: one call per window, each at full length."""
    return windows * call_seconds(1, max_new_tokens)


def quota_message(exc: BaseException) -> str | None:
    """A plain sentence for a ZeroGPU scheduling error (quota used up, duration too long, queue
    timeout), or None when `exc` is not one. ZeroGPU raises gr.Error with a "ZeroGPU …" title;
    it is recognised by that title so this library never imports gradio."""
    title = str(getattr(exc, "title", "") or "")
    if not title.startswith("ZeroGPU"):
        return None
    detail = " ".join(str(getattr(exc, "message", "") or exc).split())
    if "quota" in title or "credits" in title:
        return (
            f"The free GPU time for today is used up ({detail}). Sign in with Hugging Face for more "
            "(3.5 min a day instead of 2), run one window of 20 passages, or watch the recorded lane."
        )
    if "duration" in title:
        return f"This request asks for more GPU time than one run may use ({detail}). Lower top k or max new tokens."
    return f"ZeroGPU could not run this ({title}: {detail}). Try again in a minute."
