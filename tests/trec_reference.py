"""pytrec_eval as the reference the metric and reward tests compare against."""

from __future__ import annotations

import pytrec_eval


def trec_eval(qrels, run, measures, rel_level=1):
    """trec_eval's figures for `run` (qid -> docid -> score) against `qrels`."""
    return pytrec_eval.RelevanceEvaluator(qrels, set(measures), relevance_level=rel_level).evaluate(run)


def rank_scores(ranking):
    """A ranked docid list as pytrec_eval scores (−rank), the reward's convention."""
    return {docid: -float(rank) for rank, docid in enumerate(ranking, 1)}
