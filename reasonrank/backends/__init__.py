"""Backends, one file each; only the chosen one is imported (vllm and torch are heavy)."""

from __future__ import annotations

from importlib import import_module

from reasonrank.backends.base import Backend, BackendConfig, BackendError

_REGISTRY = {
    "transformers": "reasonrank.backends.transformers:TransformersBackend",
    "openai": "reasonrank.backends.openai:OpenAIBackend",
    "vllm": "reasonrank.backends.vllm:VLLMBackend",
    "zerogpu": "reasonrank.backends.zerogpu:ZeroGPUBackend",
}

BACKEND_KINDS = tuple(_REGISTRY)


def make_backend(config: BackendConfig) -> Backend:
    """Build the backend named by `config.kind`; unknown names fail with the list of valid ones."""
    target = _REGISTRY.get(config.kind)
    if target is None:
        raise BackendError(f"unknown backend {config.kind!r}; choose one of: {', '.join(BACKEND_KINDS)}")
    module_name, class_name = target.split(":")
    cls = getattr(import_module(module_name), class_name)
    return cls(config)


__all__ = ["Backend", "BackendConfig", "BackendError", "BACKEND_KINDS", "make_backend"]
