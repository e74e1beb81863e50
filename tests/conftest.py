"""Session fixtures: the real public test data, the tiny model, and GPU gating."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"


@pytest.fixture(scope="session")
def test_data() -> Path:
    """The real public data (TREC DL19, NovelEval, BRIGHT) in tests/data; provenance in its README."""
    return TEST_DATA


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    """Skip `gpu` tests with a stated reason where no CUDA device exists (torch imported only then)."""
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items or _has_cuda():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU; none is present on this machine")
    for item in gpu_items:
        item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """Tiny random Qwen2 + locally trained tokenizer (tests/tiny_model.py), built once a session."""
    from tiny_model import build_tiny_qwen2

    return build_tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2") / "model")


@pytest.fixture(scope="session")
def dl19(test_data: Path):
    """TREC DL19: the 43 judged queries with their BM25 top-100 passages and graded qrels."""
    from reasonrank.io import read_qrels, read_rank_llm_json

    qrels = read_qrels(test_data / "trec-dl19" / "qrels.txt")
    return read_rank_llm_json(test_data / "trec-dl19" / "bm25_top100_with_text.json", qrels)
