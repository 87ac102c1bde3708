"""Trivial-baseline reports: the rows that show what a score is worth without reading the image.

On IU X-ray a constant normal report scores like a model, so every results table carries:

* ``most_frequent_train_report``: the training report that occurs most often (counted after the protocol's
  cleaning, so trivial spelling variants count together; the first raw text of that form is reported);
* ``best_train_report_on_validation``: the single training report that, given to every validation study,
  scores the highest BLEU-4 under the same protocol (all distinct training reports are tried).

Both are then scored on the evaluated split exactly like a model's predictions.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Optional

from .nlg import protocol_preparers
from .options import ScoringOptions

logger = logging.getLogger(__name__)

MOST_FREQUENT = "most_frequent_train_report"
BEST_ON_VALIDATION = "best_train_report_on_validation"


def _distinct_by_form(train_reports: Sequence[str], prepare: Callable[[str], str]) -> Counter[str]:
    return Counter(form for form in map(prepare, train_reports) if form)


def most_frequent_report(train_reports: Sequence[str], options: Optional[ScoringOptions] = None) -> str:
    """The most frequent training report (by its form under ``options``' protocol; ties go to the first seen);
    raw text returned."""
    _, prepare = protocol_preparers(options)
    forms = _distinct_by_form(train_reports, prepare)
    if not forms:
        raise ValueError("no non-empty training report to choose a baseline from")
    form = forms.most_common(1)[0][0]
    return next(report for report in train_reports if prepare(report) == form)


def _constant_bleu_4(candidate: str, cooked_references: list) -> float:
    """pycocoevalcap's corpus BLEU-4 of one candidate given to every reference (references cooked once)."""
    from pycocoevalcap.bleu.bleu_scorer import BleuScorer, cook_test

    scorer = BleuScorer(n=4)
    scorer.crefs = list(cooked_references)
    scorer.ctest = [cook_test(candidate, cooked) for cooked in cooked_references]
    with contextlib.redirect_stdout(io.StringIO()):
        score, _ = scorer.compute_score(option="closest", verbose=0)
    return float(score[3])


def best_single_report(
    train_reports: Sequence[str],
    validation_references: Sequence[str],
    options: Optional[ScoringOptions] = None,
) -> str:
    """The training report with the highest corpus BLEU-4 when given to every validation study.

    The score is pycocoevalcap's BLEU (``option="closest"``) on the strings of ``options``' protocol; ties go to
    the more frequent, then the first seen report. Costs about 25 ms per distinct report for 300 validation studies.
    """
    prepare_reference, prepare_prediction = protocol_preparers(options)
    references = [prepare_reference(text) for text in validation_references]
    if not references:
        raise ValueError("no validation report to choose the best single training report on")
    from pycocoevalcap.bleu.bleu_scorer import cook_refs

    cooked = [cook_refs([reference]) for reference in references]
    forms = _distinct_by_form(train_reports, prepare_prediction)
    if not forms:
        raise ValueError("no non-empty training report to choose a baseline from")
    logger.info("scoring %d distinct training reports on %d validation studies", len(forms), len(references))
    best_form = max(forms.most_common(), key=lambda item: _constant_bleu_4(item[0], cooked))[0]
    return next(report for report in train_reports if prepare_prediction(report) == best_form)


def baseline_reports(
    train_reports: Sequence[str],
    validation_references: Optional[Sequence[str]] = None,
    options: Optional[ScoringOptions] = None,
) -> dict[str, str]:
    """Name -> report text of each trivial baseline (the best single report needs validation references)."""
    baselines = {MOST_FREQUENT: most_frequent_report(train_reports, options)}
    if validation_references:
        baselines[BEST_ON_VALIDATION] = best_single_report(train_reports, validation_references, options)
    return baselines


__all__ = ["BEST_ON_VALIDATION", "MOST_FREQUENT", "baseline_reports", "best_single_report", "most_frequent_report"]
