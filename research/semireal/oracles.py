"""Oracle rows of the semi-real benchmark: reports written from each study's true rendered content.

They read what the phantoms show, so none is a baseline a model can be: they tell what the training reports'
phrasing of each content scores, next to what a model writes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import combinations

from xray_report.evaluation import Label
from xray_report.evaluation.baselines import best_single_report
from xray_report.evaluation.nlg import compute_nlg_metrics
from xray_report.evaluation.options import ScoringOptions
from xray_report.evaluation.prior_comparison import split_sentences

from .phantoms import EXTRA_FINDINGS, RENDERED_OBSERVATIONS, RenderedFindings, finding_labels


def best_report_per_content(
    train_shown: Sequence[RenderedFindings],
    train_reports: Sequence[str],
    shown: Sequence[RenderedFindings],
    fallback: str,
) -> tuple[list[str], dict[str, int]]:
    """An oracle reference row: for each study, the best constant report of the training studies whose phantoms
    show what its phantoms show.

    Per content (rendered findings with their sides and zones), `best_single_report` picks the training report of
    that content with the highest corpus BLEU-4 when given to every training study of that content. A study whose
    exact content no training study shows gets the pick among the training studies with the same findings in any
    place (`RenderedFindings.without_places`), and one whose findings no training study shows gets `fallback`. It
    reads the study's true content, so it is not a baseline a model can be: it tells what reading the images
    plus the training reports' best phrasing of each content scores, next to what a model writes.

    Args:
        train_shown / train_reports: what each training study's phantoms show, and its report (same order).
        shown: what each evaluated study's phantoms show.
        fallback: the report for a study whose findings no training study shows (e.g. the best single report).

    Returns:
        The report for each evaluated study, and how many studies got each kind of pick: `same_content`,
        `same_findings_other_places`, `fallback`.
    """
    if len(train_shown) != len(train_reports):
        raise ValueError(f"need one training report per training study, got {len(train_reports)} for {len(train_shown)}")
    # one group per exact content, and one per findings-without-places (a content with no places is both)
    by_content: dict[RenderedFindings, list[str]] = {}
    for content, report in zip(train_shown, train_reports):
        by_content.setdefault(content, []).append(report)
        if content.without_places() != content:
            by_content.setdefault(content.without_places(), []).append(report)
    chosen: dict[RenderedFindings, str] = {}
    reports, counts = [], {"same_content": 0, "same_findings_other_places": 0, "fallback": 0}
    for content in shown:
        if content in by_content:
            key, kind = content, "same_content"
        elif content.without_places() in by_content:
            key, kind = content.without_places(), "same_findings_other_places"
        else:
            reports.append(fallback)
            counts["fallback"] += 1
            continue
        if key not in chosen:
            chosen[key] = best_single_report(by_content[key], by_content[key])
        reports.append(chosen[key])
        counts[kind] += 1
    return reports, counts


def constant_with_finding_sentences(
    train_reports: Sequence[str], constant: str, shown: Sequence[RenderedFindings],
    kept_with_finding: Iterable[int] | None = None,
) -> list[str]:
    """An oracle reference row: the constant report, amended with what each study's phantoms show.

    For each study, every finding its phantoms show (rendered observations and extra findings) gets the sentence
    that states it, and no other drawn finding, most often in `train_reports` (the first of equals in their order),
    in front of the constant report; the constant's sentences that deny one of those findings are taken out. Sides
    and zones are not matched. It reads the study's true content, so it is not a baseline a model can be: it tells
    what the constant's phrasing plus the commonest way of stating each finding scores.

    Args:
        kept_with_finding: which of the constant's sentences (0-based, in `split_sentences` order) a study that
            shows a finding keeps (default: all; `choose_kept_sentences` picks them on a validation split).

    Returns:
        The report for each study of `shown`, in order (the constant itself for a study that shows nothing).
    """
    parts = _amended_constant_parts(train_reports, constant, shown)
    kept = None if kept_with_finding is None else set(kept_with_finding)
    return [_join_parts(constant, part, kept) for part in parts]


_AmendedParts = tuple[list[str], list[tuple[int, str]]]


def _amended_constant_parts(
    train_reports: Sequence[str], constant: str, shown: Sequence[RenderedFindings],
) -> list[_AmendedParts | None]:
    """Per study: the sentences stating its shown findings and the constant's (index, sentence) pairs that deny
    none of them; None for a study that shows nothing."""
    findings = RENDERED_OBSERVATIONS + EXTRA_FINDINGS
    counts: dict[str, Counter[str]] = {name: Counter() for name in findings}
    for report in train_reports:
        for sentence in split_sentences(report):
            labels = finding_labels(sentence)
            stated = [name for name in findings if labels[name] == Label.POSITIVE]
            if len(stated) == 1:
                counts[stated[0]][sentence.strip()] += 1
    commonest = {name: seen.most_common(1)[0][0] for name, seen in counts.items() if seen}
    constant_sentences = [(sentence.strip(), finding_labels(sentence)) for sentence in split_sentences(constant)]
    parts: list[_AmendedParts | None] = []
    for content in shown:
        if not content.shows_a_finding:
            parts.append(None)
            continue
        present = [name for name in findings if content.has(name)]
        stating = [commonest[name] for name in present if name in commonest]
        undenied = [(index, text) for index, (text, labels) in enumerate(constant_sentences)
                    if not any(labels[name] == Label.NEGATIVE for name in present)]
        parts.append((stating, undenied))
    return parts


def _join_parts(constant: str, part: _AmendedParts | None, kept: set[int] | None) -> str:
    if part is None:
        return constant
    stating, undenied = part
    return " ".join(stating + [text for index, text in undenied if kept is None or index in kept])


def choose_kept_sentences(
    train_reports: Sequence[str], constant: str, references: Sequence[str], shown: Sequence[RenderedFindings],
) -> tuple[int, ...]:
    """The subset of the constant's sentences that `constant_with_finding_sentences` keeps on studies showing a
    finding for the highest corpus BLEU-4 (default protocol) against `references` (a validation split, whose
    phantoms `shown` show), trying every subset; the first best in order of size, then of position.

    Raises:
        ValueError: a constant of more than 12 sentences (4,096 subsets), or `references` and `shown` of other
            lengths.
    """
    if len(references) != len(shown):
        raise ValueError(f"{len(references)} references but {len(shown)} studies' contents")
    count = len(split_sentences(constant))
    if count > 12:
        raise ValueError(f"the constant has {count} sentences; trying every subset of more than 12 is too slow")
    parts = _amended_constant_parts(train_reports, constant, shown)
    best, best_bleu = tuple(range(count)), -1.0
    for size in range(count + 1):
        for subset in combinations(range(count), size):
            reports = [_join_parts(constant, part, set(subset)) for part in parts]
            bleu = compute_nlg_metrics(list(references), reports, ScoringOptions(meteor=False)).corpus["bleu_4"]
            if bleu > best_bleu:
                best, best_bleu = subset, bleu
    return best


__all__ = ["best_report_per_content", "choose_kept_sentences", "constant_with_finding_sentences"]
