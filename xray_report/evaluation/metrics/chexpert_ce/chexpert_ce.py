"""Local `evaluate` metric: clinical efficacy (CheXpert observation precision / recall / F1).

Load it offline from a checkout of the project, with the project installed (``pip install -e ".[metrics]"``)::

    import evaluate
    metric = evaluate.load("xray_report/evaluation/metrics/chexpert_ce")
    metric.compute(predictions=["small left pleural effusion ."], references=["left pleural effusion ."])

Both sides are labelled with the project's rule-based CheXpert labeler and scored with
:func:`xray_report.evaluation.clinical_efficacy.clinical_efficacy_from_labels` (positive = 1, uncertain = 0 unless
``uncertain_as_positive=True``; micro and macro averages over the 14 observations by default). Both are imported
from the installed package: this folder holds only the ``evaluate`` wrapper, never a copy of the labeler.
"""

import datasets
import evaluate

from xray_report.evaluation.chexpert_labeler import OBSERVATIONS, label_report
from xray_report.evaluation.clinical_efficacy import clinical_efficacy_from_labels

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
    micro_precision, micro_recall, micro_f1, macro_precision, macro_recall, macro_f1, example_precision,
    example_recall, example_f1 (float),
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
        reference_labels = [label_report(text) for text in references]
        generated_labels = [label_report(text) for text in predictions]
        scores = clinical_efficacy_from_labels(
            reference_labels, generated_labels, names, uncertain_as_positive=uncertain_as_positive
        )
        output = {f"micro_{k}": v for k, v in scores.micro.items()}
        output.update({f"macro_{k}": v for k, v in scores.macro.items()})
        output.update({f"example_{k}": v for k, v in scores.example.items()})
        output["per_observation"] = scores.per_observation
        if return_labels:
            output["reference_labels"] = [{k: v.value for k, v in l.items()} for l in reference_labels]
            output["generated_labels"] = [{k: v.value for k, v in l.items()} for l in generated_labels]
        return output
