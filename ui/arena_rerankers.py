"""The Arena's rerankers: which ones a person can pick for a query source, what the picker starts
with, warnings about a pick, and each pick as the spec that runs (a recording at the chosen
replay pace; the stored labels read from the label store).
"""

from __future__ import annotations

from sqlalchemy import Engine

from reasonrank.arena import LABELS, RECORDED, LabelLookup, RerankerSpec, with_method
from reasonrank.backends import BACKEND_KINDS
from reasonrank.methods import METHOD_NAMES
from reasonrank.types import CandidateList, Label
from ui import registry
from ui.arena_queries import SAMPLES, source_dataset

#: the replay pace choices: label → the recorded backend's `pace` option
PACES = {"at the recorded pace": "recorded", "at once": "instant"}


def lane_specs(engine: Engine | None) -> dict[str, RerankerSpec]:
    """Every lane a person can pick: the registry's rerankers as they are (a model entry runs
    ReasonRank's sliding window), and each model entry with each other method ("tiny · rank1")."""
    specs = registry.available_specs(engine)
    lanes = dict(specs)
    for spec in specs.values():
        if spec.backend in BACKEND_KINDS:
            for method in (name for name in METHOD_NAMES if name != "reasonrank"):  # that one is the entry
                variant = with_method(spec, method)
                lanes[variant.name] = variant
    return lanes


def reranker_choices(engine: Engine | None, source: str) -> list[str]:
    """The rerankers that can run on `source`'s lists: stored labels only where the label store
    holds that dataset (the bundled DL19 and NovelEval), a recording only on its own dataset."""
    dataset = source_dataset(source)
    choices = []
    for name, spec in lane_specs(engine).items():
        if spec.backend == LABELS and source not in SAMPLES:
            continue
        if spec.backend == RECORDED and registry.recording_dataset(spec) != dataset:
            continue
        choices.append(name)
    return choices


def default_picks(engine: Engine | None, source: str) -> list[str]:
    """What the picker starts with, so Run works untouched: BM25 against the first reranker that
    needs no model here (a recording of this dataset, else the stored labels)."""
    choices = reranker_choices(engine, source)
    specs = lane_specs(engine)
    second = [name for name in choices if specs[name].backend == RECORDED]
    second += [name for name in choices if specs[name].backend == LABELS]
    return ["BM25", second[0]] if "BM25" in choices and second else []


def picked_warnings(engine: Engine | None, names) -> str:
    """A line per picked reranker that will likely fail or mislead (e.g. its key variable unset)."""
    specs = lane_specs(engine)
    found = {name: registry.key_warning(specs[name]) for name in names or [] if name in specs}
    return "\n\n".join(f"⚠️ {name}: {warning}" for name, warning in found.items() if warning)


def label_lookup(engine: Engine) -> LabelLookup:
    """The label store's ranking of a sample query: the label under review of its item.

    The item is found by dataset and qid (the samples are seeded under their dataset names).
    """
    from db.queue import find_item

    def find(candidates: CandidateList) -> Label | None:
        if not candidates.dataset:
            return None
        view = find_item(engine, candidates.dataset, candidates.query.qid)
        if view is None or view.label_id is None:
            return None
        return Label(
            candidates=candidates,
            ranking=view.teacher_ranking,
            source=view.source or "model",
            reasoning=view.reasoning,
            model=view.model,
            raw_output=view.raw_output,
        )

    return find


def with_pace(spec: RerankerSpec, pace: str) -> RerankerSpec:
    """A recorded reranker set to the chosen replay pace; any other spec unchanged."""
    if spec.backend != RECORDED:
        return spec
    return RerankerSpec(spec.name, spec.backend, spec.model, {**spec.options, "pace": PACES.get(pace, "recorded")})
