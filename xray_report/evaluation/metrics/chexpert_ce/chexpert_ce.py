"""Local `evaluate` metric: clinical efficacy (CheXpert observation precision / recall / F1).

Load it offline from a checkout of the project, with the project installed (``pip install -e ".[metrics]"``)::

    import evaluate
    metric = evaluate.load("xray_report/evaluation/metrics/chexpert_ce")
    metric.compute(predictions=["small left pleural effusion ."], references=["left pleural effusion ."])

Both sides are labelled with the project's rule-based CheXpert labeler and scored with
:func:`xray_report.evaluation.clinical_efficacy.compute_clinical_efficacy` (positive = 1, uncertain = 0 unless
``uncertain_as_positive=True``; micro, macro and example-based averages over the 14 observations by default); the
flat values are :func:`xray_report.evaluation.scoring.corpus_metrics`'s, with the keys of the scoring command and
of training's metrics. All are imported from the installed package: this folder holds only the ``evaluate``
wrapper, never a copy of the labeler.
"""

import datasets
import evaluate

from xray_report.evaluation.chexpert_labeler import OBSERVATIONS
from xray_report.evaluation.clinical_efficacy import compute_clinical_efficacy
from xray_report.evaluation.scoring import corpus_metrics

_DESCRIPTION = """Clinical efficacy of generated reports: the 14 CheXpert observations are labelled on the
generated and the reference report by a rule-based labeler with negation and uncertainty handling, and the
generated labels are scored against the reference labels (micro / macro precision, recall, F1)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): generated reports.
    references (list of str): reference reports (ground truth).
    uncertain_as_positive (bool, default False): count uncertain labels as positive.
    observations (list of str, optional): observations to score (default: all 14).
    return_labels (bool, default False): also return both label sets (observation -> value per report).
Returns:
    ce_micro_precision, ce_micro_recall, ce_micro_f1, ce_macro_precision, ce_macro_recall, ce_macro_f1,
    ce_example_precision, ce_example_recall, ce_example_f1 (float), positive_findings_stated (float, None when
    no reference states a pathology), distinct_reports and empty_generated (int): the keys of
    `python -m xray_report.evaluation` and of training's metrics;
    per_observation (dict: observation -> tp, fp, fn, tn, support, precision, recall, f1, accuracy).
Examples:
    >>> metric = evaluate.load("xray_report/evaluation/metrics/chexpert_ce")
    >>> out = metric.compute(predictions=["cardiomegaly ."], references=["the heart is enlarged ."])
    >>> out["per_observation"]["Cardiomegaly"]["f1"]
    1.0
"""

_CITATION = """Irvin et al. 2019, CheXpert (the 14 observations and their labeling conventions)."""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ChexpertCE(evaluate.Metric):
    """Clinical-efficacy precision / recall / F1 from a rule-based CheXpert labeler."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, uncertain_as_positive=False, observations=None, return_labels=False):
        names = tuple(observations) if observations else OBSERVATIONS
        ce = compute_clinical_efficacy(references, predictions, names, uncertain_as_positive=uncertain_as_positive)
        output = {**corpus_metrics(predictions, ce=ce), "per_observation": ce.scores.per_observation}
        if return_labels:
            output["reference_labels"] = [{k: v.value for k, v in l.items()} for l in ce.reference_labels]
            output["generated_labels"] = [{k: v.value for k, v in l.items()} for l in ce.generated_labels]
        return output
