"""What the semi-real benchmark scores besides the NLG and CE figures: the rendered and extra findings, chance levels,
repetition, copied training reports, and how a model's reports spread over what the phantoms show."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from xray_report.evaluation.chexpert_labeler import label_with_rules
from xray_report.evaluation.clinical_efficacy import BinaryScores, binarize, binary_scores, compute_clinical_efficacy
from xray_report.evaluation.nlg import normalize_report

from .phantoms import EXTRA_FINDING_RULES, EXTRA_FINDINGS, RENDERED_OBSERVATIONS, RenderedFindings

_WORD = re.compile(r"\w+|[^\w\s]")


def longest_repeated_ngram(report: str) -> int:
    """The length of the longest word n-gram (punctuation marks count as words) that occurs twice in `report`.

    A repetition measure: a model stuck in a loop ("the lungs are clear. the lungs are clear. ...") scores the
    length of its loop and more; most reference reports stay at a few words ("there is no").
    """
    words = _WORD.findall(report.lower())
    longest = 0
    for size in range(1, len(words)):
        grams = [tuple(words[i : i + size]) for i in range(len(words) - size + 1)]
        if len(set(grams)) == len(grams):
            break  # no n-gram of this size repeats, so no longer one does
        longest = size
    return longest


CHANCE_ROUNDS = 200
"""Random assignments of a model's reports to the studies that estimate its chance-level F1 (`chance_micro_f1`)."""


def _extra_positives(reports: Sequence[str]) -> np.ndarray:
    """`(len(reports), len(EXTRA_FINDINGS))` 0/1: the positive mentions of the extra findings."""
    return np.array([binarize(label_with_rules(text, EXTRA_FINDING_RULES), EXTRA_FINDINGS) for text in reports])


def extra_finding_scores(references: Sequence[str], generated: Sequence[str]) -> BinaryScores:
    """Precision / recall / F1 of the generated reports on `EXTRA_FINDINGS` (positive mentions only), against
    the references' positive mentions (what the phantoms show)."""
    return binary_scores(_extra_positives(references), _extra_positives(generated), EXTRA_FINDINGS)


def chance_micro_f1(y_true: np.ndarray, y_pred: np.ndarray, observations: Sequence[str],
                    rounds: int = CHANCE_ROUNDS, seed: int = 0) -> dict[str, float]:
    """The micro F1 a model's reports score when each goes to a study drawn at random: what the same reports
    score without reading the image (each finding stated as often as the model states it, at random).

    A model whose images carry nothing it can use (trained on images shuffled across studies) should score
    within this distribution; predicting the majority (no finding stated) scores 0.

    Args:
        y_true / y_pred: `(num_studies, len(observations))` 0/1 labels of the references and of the model's
            reports, row by row.
        rounds: random permutations of the reports over the studies (seeded by `seed`).

    Returns:
        `mean` and `p95` (the 95th percentile) of the permuted micro F1, and `rounds`.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    y_pred = np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    scores = np.array([binary_scores(y_true, y_pred[rng.permutation(len(y_pred))], observations).micro["f1"]
                       for _ in range(rounds)])
    return {"mean": float(scores.mean()), "p95": float(np.quantile(scores, 0.95)), "rounds": rounds}


def semireal_scores(references: Sequence[str], generated: Sequence[str],
                    train_reports: Sequence[str] | None = None) -> dict[str, Any]:
    """What the semi-real benchmark adds to the NLG and CE figures, for one set of generated reports.

    * `rendered_ce_*`: CE (positive = the labeler says positive) on `RENDERED_OBSERVATIONS` only. The rendered
      findings of a study are its reference's positive labels on these observations, so this is CE against what
      the images show.
    * `extra_findings_micro_*` and `extra_findings_per_finding`: the same for `EXTRA_FINDINGS` (labelled with
      `label_with_rules`; positive = the reference states it, as the phantoms show it).
    * `rendered_ce_chance_micro_f1` / `extra_findings_chance_micro_f1` and their `_p95`: the mean and 95th
      percentile of the same micro F1s with the generated reports assigned to the studies at random
      (`chance_micro_f1`, `chance_rounds` permutations): what these reports score without reading the image.
    * `distinct_reports` / `distinct_fraction`: distinct generated texts, and their share of the studies.
    * `longest_repeated_ngram` (the maximum over reports, next to the references' maximum) and
      `reports_repeating_4_gram` (reports in which some 4-word n-gram occurs twice; the references' count too).
    * With `train_reports`: `copied_training_reports` / `copied_training_fraction`, the generated reports that are
      a whole training report word for word (after `normalize_report`), with every detail it stated.
    """
    if len(references) != len(generated) or not references:
        raise ValueError(f"need as many generated reports as references (>0), got {len(generated)} and {len(references)}")
    ce = compute_clinical_efficacy(references, generated, observations=RENDERED_OBSERVATIONS)
    rendered_true, rendered_pred = (np.array([binarize(labels, RENDERED_OBSERVATIONS) for labels in side])
                                    for side in (ce.reference_labels, ce.generated_labels))
    extra_true, extra_pred = _extra_positives(references), _extra_positives(generated)
    extra = binary_scores(extra_true, extra_pred, EXTRA_FINDINGS)
    rendered_chance = chance_micro_f1(rendered_true, rendered_pred, RENDERED_OBSERVATIONS)
    extra_chance = chance_micro_f1(extra_true, extra_pred, EXTRA_FINDINGS)
    repeats = [longest_repeated_ngram(text) for text in generated]
    reference_repeats = [longest_repeated_ngram(text) for text in references]
    copied = {}
    if train_reports is not None:
        seen = {normalize_report(text) for text in train_reports}
        count = sum(normalize_report(text) in seen for text in generated)
        copied = {"copied_training_reports": count, "copied_training_fraction": count / len(generated)}
    return {
        "rendered_ce_micro_f1": ce.scores.micro["f1"],
        "rendered_ce_micro_precision": ce.scores.micro["precision"],
        "rendered_ce_micro_recall": ce.scores.micro["recall"],
        "rendered_ce_macro_f1": ce.scores.macro["f1"],
        "rendered_ce_per_observation": ce.scores.per_observation,
        "rendered_ce_chance_micro_f1": rendered_chance["mean"],
        "rendered_ce_chance_micro_f1_p95": rendered_chance["p95"],
        "extra_findings_micro_f1": extra.micro["f1"],
        "extra_findings_chance_micro_f1": extra_chance["mean"],
        "extra_findings_chance_micro_f1_p95": extra_chance["p95"],
        "chance_rounds": rendered_chance["rounds"],
        "extra_findings_micro_precision": extra.micro["precision"],
        "extra_findings_micro_recall": extra.micro["recall"],
        "extra_findings_per_finding": extra.per_observation,
        "distinct_reports": len(set(generated)),
        "distinct_fraction": len(set(generated)) / len(generated),
        "longest_repeated_ngram": max(repeats),
        "reference_longest_repeated_ngram": max(reference_repeats),
        "reports_repeating_4_gram": sum(size >= 4 for size in repeats),
        "references_repeating_4_gram": sum(size >= 4 for size in reference_repeats),
        **copied,
    }


def image_content_ceiling(shown: Sequence[RenderedFindings]) -> dict[str, Any]:
    """How many different sets of findings the phantoms of some studies show: the most distinct reports a model
    can write when its report depends on the rendered findings alone. The phantoms' anatomy also varies from study
    to study (drawn from the seed) without any report text describing it, so a model can write more distinct
    reports than that; `reports_per_content` counts how many.

    Args:
        shown: what each study's phantoms show (`read_semireal_truth`), one entry per study.

    Returns:
        `studies`, `distinct_contents` (distinct rendered findings with their sides and zones),
        `distinct_fraction` (their share of the studies) and `without_rendered_finding` (studies whose
        phantoms show no finding: all alike).
    """
    if not shown:
        raise ValueError("need at least one study")
    return {
        "studies": len(shown),
        "distinct_contents": len(set(shown)),
        "distinct_fraction": len(set(shown)) / len(shown),
        "without_rendered_finding": sum(not item.shows_a_finding for item in shown),
    }


def reports_per_content(shown: Sequence[RenderedFindings], generated: Sequence[str]) -> dict[str, Any]:
    """How a model's reports spread over what the phantoms show.

    Args:
        shown: what each study's phantoms show (`read_semireal_truth`), one entry per study.
        generated: the model's report for each of those studies, in the same order.

    Returns:
        `content_report_pairs` (distinct (rendered findings, report) pairs: at most `distinct_contents` for a
        model whose report follows the rendered findings alone; each pair beyond is a report that changed while
        the findings did not), `reports_without_rendered_finding` (distinct reports written for the studies whose
        phantoms show no finding) and `studies_without_rendered_finding`.
    """
    if len(shown) != len(generated) or not shown:
        raise ValueError(f"need one generated report per study (>0), got {len(generated)} for {len(shown)} studies")
    empty = [text for content, text in zip(shown, generated) if not content.shows_a_finding]
    return {
        "content_report_pairs": len(set(zip(shown, generated))),
        "reports_without_rendered_finding": len(set(empty)),
        "studies_without_rendered_finding": len(empty),
    }




__all__ = [
    "CHANCE_ROUNDS",
    "chance_micro_f1",
    "extra_finding_scores",
    "image_content_ceiling",
    "longest_repeated_ngram",
    "reports_per_content",
    "semireal_scores",
]
