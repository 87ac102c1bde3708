"""`compute_metrics` for `Seq2SeqTrainer`: the field's NLG metrics and CheXpert clinical efficacy (evaluation/)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import numpy as np
from transformers import EvalPrediction

from xray_report.evaluation import ScoringOptions, compute_clinical_efficacy, compute_nlg_metrics, corpus_metrics
from processing import XrayReportProcessor


def decode_reports(processor: XrayReportProcessor, token_ids: np.ndarray) -> list[str]:
    """Token ids `(num_studies, length)` (generated or labels, -100 allowed) -> clean report texts."""
    if isinstance(token_ids, tuple):
        token_ids = token_ids[0]
    return processor.batch_decode(np.asarray(token_ids))


def score_reports(
    references: list[str], generated: list[str], options: Optional[ScoringOptions] = None
) -> dict[str, float]:
    """The corpus metrics of `xray_report.evaluation.scoring.corpus_metrics` as the Trainer logs them.

    Keys: `bleu_1`..`bleu_4`, `meteor` (when java is present and `options.meteor`), `rouge_l`, `cider`,
    `ce_micro_f1`, ..., `ce_example_f1`, `distinct_reports`, `positive_findings_stated`, `empty_generated`
    (Trainer prefixes `eval_`). Unavailable metrics are left out, not reported as 0. `options`: the protocol and
    its vocabulary, METEOR, uncertain labels (default: `ScoringOptions()`).
    """
    options = options or ScoringOptions()
    nlg = compute_nlg_metrics(references, generated, options)
    ce = compute_clinical_efficacy(references, generated, uncertain_as_positive=options.uncertain_as_positive)
    metrics = corpus_metrics(generated, nlg=nlg, ce=ce, options=options)
    return {key: float(value) for key, value in metrics.items() if value is not None}


def make_compute_metrics(
    processor: XrayReportProcessor, options: Optional[ScoringOptions] = None
) -> Callable[[EvalPrediction], dict]:
    """A `compute_metrics` that decodes generated ids and label ids and scores them with `score_reports`.

    Needs `predict_with_generate=True` (the predictions are generated ids, not logits).
    """

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        generated = decode_reports(processor, prediction.predictions)
        references = decode_reports(processor, prediction.label_ids)
        return score_reports(references, generated, options)

    return compute_metrics


__all__ = ["decode_reports", "make_compute_metrics", "score_reports"]
