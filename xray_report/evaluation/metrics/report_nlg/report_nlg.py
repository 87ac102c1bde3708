"""Local `evaluate` metric: BLEU-1..4, METEOR, ROUGE-L and CIDEr of generated radiology reports.

Load it offline from a checkout of the project, with the project installed (``pip install -e ".[metrics]"``)::

    import evaluate
    metric = evaluate.load("xray_report/evaluation/metrics/report_nlg")
    metric.compute(predictions=["no acute disease ."], references=["no acute cardiopulmonary disease ."])

The computation is :func:`xray_report.evaluation.nlg.compute_nlg_metrics` (R2Gen normalisation, pycocoevalcap scorers)
and the flat values are :func:`xray_report.evaluation.scoring.corpus_metrics`'s (the keys of the scoring command and of
training's metrics), imported from the installed package: this folder holds only the ``evaluate`` wrapper, never a
copy of the metric.
"""

import datasets
import evaluate

from xray_report.evaluation.nlg import R2GenVocabulary, compute_nlg_metrics
from xray_report.evaluation.options import ScoringOptions
from xray_report.evaluation.scoring import corpus_metrics

_DESCRIPTION = """BLEU-1..4, METEOR, ROUGE-L and CIDEr of generated reports against one reference each, with the
R2Gen normalisation (lowercase, punctuation removed except the sentence dot) and pycocoevalcap's scorers.
METEOR needs `java`; without it METEOR is None and the reason is in `unavailable`. CIDEr's IDF comes from the
references scored together: score a whole test set in one call."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): generated reports; an empty report scores 0 and is counted.
    references (list of str): one reference report per prediction.
    normalize (bool, default True): apply the R2Gen normalisation to both sides.
    meteor (bool, default True): compute METEOR (needs java).
    per_report (bool, default False): also return the per-report scores.
    protocol (str, default "default"): "default" or "r2gen" (the R2Gen papers' references: cleaned, rare words
        as <unk>, cut to max_seq_length - 1 words); "r2gen" needs split_file or train_reports.
    split_file (str): R2Gen annotation.json whose train reports give the r2gen vocabulary.
    train_reports (list of str): the train reports instead of a split file.
    r2gen_dataset (str, default "iu_xray"): "iu_xray" or "mimic_cxr" (cleaner, threshold and length of R2Gen).
Returns:
    bleu_1, bleu_2, bleu_3, bleu_4, meteor, rouge_l, cider (float or None), distinct_reports and empty_generated
    (int), unavailable (dict: metric -> reason), and per_report (list of dicts) when asked.
Examples:
    >>> metric = evaluate.load("xray_report/evaluation/metrics/report_nlg")
    >>> out = metric.compute(predictions=["the heart is normal ."], references=["the heart is normal ."], meteor=False)
    >>> round(out["bleu_4"], 3)
    1.0
"""

_CITATION = """Papineni et al. 2002 (BLEU); Banerjee and Lavie 2005 (METEOR); Lin 2004 (ROUGE);
Vedantam et al. 2015 (CIDEr); Chen et al. 2020, Generating Radiology Reports via Memory-driven Transformer (R2Gen)."""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ReportNLG(evaluate.Metric):
    """BLEU-1..4 / METEOR / ROUGE-L / CIDEr for generated reports (R2Gen protocol)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, normalize=True, meteor=True, per_report=False, protocol="default",
                 split_file=None, train_reports=None, r2gen_dataset="iu_xray"):
        vocabulary = None
        if protocol == "r2gen":
            if split_file is not None:
                vocabulary = R2GenVocabulary.from_split_file(split_file, r2gen_dataset)
            elif train_reports is not None:
                vocabulary = R2GenVocabulary.from_reports(train_reports, r2gen_dataset)
            else:
                raise ValueError("protocol='r2gen' needs split_file= or train_reports= for its vocabulary")
        options = ScoringOptions(meteor=meteor, protocol=protocol, vocabulary=vocabulary)
        result = compute_nlg_metrics(references, predictions, options, normalize=normalize)
        output = corpus_metrics(predictions, nlg=result, options=options)
        output["unavailable"] = dict(result.unavailable)
        if per_report:
            output["per_report"] = result.per_report
        return output
