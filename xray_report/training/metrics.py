"""`compute_metrics` for `Seq2SeqTrainer`: the field's NLG metrics and CheXpert clinical efficacy (evaluation/)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import numpy as np
from transformers import EvalPrediction

from xray_report.evaluation import compute_clinical_efficacy, compute_nlg_metrics
from xray_report.evaluation.nlg import R2GenVocabulary
from processing import XrayReportProcessor


def decode_reports(processor: XrayReportProcessor, token_ids: np.ndarray) -> list[str]:
    """Token ids `(num_studies, length)` (generated or labels, -100 allowed) -> clean report texts."""
    if isinstance(token_ids, tuple):
        token_ids = token_ids[0]
    return processor.batch_decode(np.asarray(token_ids))


def score_reports(
    references: list[str],
    generated: list[str],
    meteor: bool = True,
    protocol: str = "default",
    vocabulary: Optional[R2GenVocabulary] = None,
) -> dict[str, float]:
    """Corpus BLEU-1..4, METEOR (when java is present and `meteor`), ROUGE-L, CIDEr and CE micro/macro P/R/F1.

    Metric keys: `bleu_1`..`bleu_4`, `meteor`, `rouge_l`, `cider`, `ce_micro_f1`, ... (Trainer prefixes `eval_`).
    Unavailable metrics are left out, not reported as 0. `protocol` / `vocabulary`: see `xray_report.evaluation.nlg`.
    """
    nlg = compute_nlg_metrics(references, generated, meteor=meteor, protocol=protocol, vocabulary=vocabulary)
    ce = compute_clinical_efficacy(references, generated)
    scores = {key: float(value) for key, value in nlg.corpus.items() if value is not None}
    scores.update({f"ce_micro_{key}": float(value) for key, value in ce.scores.micro.items()})
    scores.update({f"ce_macro_{key}": float(value) for key, value in ce.scores.macro.items()})
    scores["empty_generated"] = float(sum(not text.strip() for text in generated))
    return scores


def make_compute_metrics(
    processor: XrayReportProcessor,
    meteor: bool = True,
    protocol: str = "default",
    vocabulary: Optional[R2GenVocabulary] = None,
) -> Callable[[EvalPrediction], dict]:
    """A `compute_metrics` that decodes generated ids and label ids and scores them with `score_reports`.

    Needs `predict_with_generate=True` (the predictions are generated ids, not logits).
    """

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        generated = decode_reports(processor, prediction.predictions)
        references = decode_reports(processor, prediction.label_ids)
        return score_reports(references, generated, meteor=meteor, protocol=protocol, vocabulary=vocabulary)

    return compute_metrics


__all__ = ["decode_reports", "make_compute_metrics", "score_reports"]
