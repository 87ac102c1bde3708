"""Clinical-efficacy metrics on small hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from xray_report.evaluation.chexpert_labeler import OBSERVATIONS, Label
from xray_report.evaluation.clinical_efficacy import binarize, binary_scores, clinical_efficacy_from_labels, compute_clinical_efficacy


def test_binary_scores_hand_computed() -> None:
    # two observations, four reports
    y_true = np.array([[1, 0], [1, 1], [0, 0], [1, 0]])
    y_pred = np.array([[1, 1], [0, 1], [0, 0], [1, 0]])
    scores = binary_scores(y_true, y_pred, ["A", "B"])
    a, b = scores.per_observation["A"], scores.per_observation["B"]
    assert (a["tp"], a["fp"], a["fn"], a["tn"], a["support"]) == (2, 0, 1, 1, 3)
    assert a["precision"] == 1.0 and a["recall"] == pytest.approx(2 / 3) and a["f1"] == pytest.approx(0.8)
    assert (b["tp"], b["fp"], b["fn"], b["tn"]) == (1, 1, 0, 2)
    assert b["precision"] == 0.5 and b["recall"] == 1.0 and b["f1"] == pytest.approx(2 / 3)
    # micro: TP 3, FP 1, FN 1
    assert scores.micro == pytest.approx({"precision": 0.75, "recall": 0.75, "f1": 0.75})
    # macro: unweighted means of the per-observation values
    assert scores.macro["precision"] == pytest.approx(0.75)
    assert scores.macro["recall"] == pytest.approx((2 / 3 + 1) / 2)
    assert scores.macro["f1"] == pytest.approx((0.8 + 2 / 3) / 2)


def test_zero_division_is_zero_and_absent_observations_count_in_macro() -> None:
    scores = binary_scores(np.array([[1, 0]]), np.array([[1, 0]]), ["A", "B"])
    assert scores.per_observation["B"] == pytest.approx(
        {"tp": 0, "fp": 0, "fn": 0, "tn": 1, "support": 0, "precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 1.0}
    )
    assert scores.micro["f1"] == 1.0
    assert scores.macro["f1"] == 0.5


def test_uncertain_binarisation() -> None:
    labels = {name: Label.NOT_MENTIONED for name in OBSERVATIONS}
    labels.update({"Edema": Label.UNCERTAIN, "Cardiomegaly": Label.POSITIVE, "Pneumothorax": Label.NEGATIVE})
    names = ["Edema", "Cardiomegaly", "Pneumothorax", "Fracture"]
    assert binarize(labels, names) == [0, 1, 0, 0]
    assert binarize(labels, names, uncertain_as_positive=True) == [1, 1, 0, 0]


def test_compute_clinical_efficacy_from_text() -> None:
    references = ["Mild cardiomegaly. Small left pleural effusion.", "No acute disease. Heart size normal."]
    predictions = ["The heart is enlarged. No pleural effusion. Possible pneumonia.", ""]
    result = compute_clinical_efficacy(references, predictions, ["Cardiomegaly", "Pleural Effusion", "Pneumonia", "No Finding"])
    per = result.scores.per_observation
    assert per["Cardiomegaly"]["tp"] == 1 and per["Cardiomegaly"]["f1"] == 1.0
    assert per["Pleural Effusion"]["fn"] == 1 and per["Pleural Effusion"]["f1"] == 0.0
    assert per["Pneumonia"]["fp"] == 0  # uncertain is not positive by default
    assert per["No Finding"]["tp"] == 1  # the empty prediction is labelled and counted
    assert result.scores.num_examples == 2
    # TP 2 (cardiomegaly, no finding), FP 0, FN 1 (effusion)
    assert result.scores.micro == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8})
    lenient = compute_clinical_efficacy(references, predictions, ["Pneumonia"], uncertain_as_positive=True)
    assert lenient.scores.per_observation["Pneumonia"]["fp"] == 1


def test_errors() -> None:
    with pytest.raises(ValueError, match="2 references but 1 predictions"):
        compute_clinical_efficacy(["a", "b"], ["a"])
    labels = [{name: Label.NOT_MENTIONED for name in OBSERVATIONS}]
    with pytest.raises(ValueError, match="unknown observations"):
        clinical_efficacy_from_labels(labels, labels, ["Effusion"])
    with pytest.raises(ValueError, match="nothing to score"):
        clinical_efficacy_from_labels([], [])


def test_example_based_scores_hand_computed() -> None:
    y_true = np.array([[1, 0], [1, 1], [0, 0], [1, 0]])
    y_pred = np.array([[1, 1], [0, 1], [0, 0], [1, 0]])
    example = binary_scores(y_true, y_pred, ["A", "B"]).example
    # per study (P, R, F1): (1/2, 1, 2/3), (1, 1/2, 2/3), (0, 0, 0) by zero_division=0, (1, 1, 1)
    assert example == pytest.approx({"precision": 0.625, "recall": 0.625, "f1": 7 / 12})


def _labels(**positives: Label) -> dict[str, Label]:
    labels = {name: Label.NOT_MENTIONED for name in OBSERVATIONS}
    labels.update({name.replace("_", " "): value for name, value in positives.items()})
    return labels


def test_tables_abnormal_subset_and_findings_stated() -> None:
    from xray_report.evaluation.clinical_efficacy import abnormal_studies, ce_tables, positive_findings_stated

    references = [
        _labels(Cardiomegaly=Label.POSITIVE, Pleural_Effusion=Label.POSITIVE),
        _labels(Cardiomegaly=Label.POSITIVE),
        _labels(No_Finding=Label.POSITIVE),
        _labels(Edema=Label.UNCERTAIN),
    ]
    generated = [
        _labels(Cardiomegaly=Label.POSITIVE),
        _labels(Cardiomegaly=Label.POSITIVE, Edema=Label.POSITIVE),
        _labels(No_Finding=Label.POSITIVE),
        _labels(No_Finding=Label.POSITIVE),
    ]
    assert abnormal_studies(references) == [0, 1]
    assert abnormal_studies(references, uncertain_as_positive=True) == [0, 1, 3]
    assert positive_findings_stated(references, generated) == 0.5  # study 0 misses its effusion
    assert positive_findings_stated(references, generated, uncertain_as_positive=True) == pytest.approx(1 / 3)
    assert positive_findings_stated(references[2:3], generated[2:3]) is None
    tables = ce_tables(references, generated)
    assert tables["all_studies"]["num_studies"] == 4 and tables["abnormal_studies"]["num_studies"] == 2
    five = tables["abnormal_studies"]["chexbert_5"]
    assert set(five["per_observation"]) == {"Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"}
    # abnormal studies, CheXbert-5: TP 2 (cardiomegaly twice), FP 1 (edema), FN 1 (effusion)
    assert five["micro"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})
    assert five["per_observation"]["Pleural Effusion"]["support"] == 1
    assert ce_tables(references[2:3], generated[2:3])["abnormal_studies"]["all_14"] is None


def test_example_based_single_study_and_two_shared_positives() -> None:
    one = binary_scores(np.array([[1, 1, 0]]), np.array([[1, 1, 1]]), ["A", "B", "C"]).example
    # one study: 2 shared positives of 3 predicted and 2 true -> P 2/3, R 1, F1 2*2/(3+2)
    assert one == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8})


def test_observation_subset_and_uncertain_binarisation_reach_the_tables() -> None:
    from xray_report.evaluation.clinical_efficacy import CHEXBERT_5, ce_tables

    result = compute_clinical_efficacy(["Possible pneumonia. Small effusion."], ["Small effusion."], CHEXBERT_5)
    assert set(result.scores.per_observation) == set(CHEXBERT_5)
    strict = ce_tables(result.reference_labels, result.generated_labels)
    lenient = ce_tables(result.reference_labels, result.generated_labels, uncertain_as_positive=True)
    assert strict["abnormal_studies"]["num_studies"] == lenient["abnormal_studies"]["num_studies"] == 1
    reference_only_uncertain = [{**result.reference_labels[0], "Pleural Effusion": Label.NEGATIVE}]
    assert ce_tables(reference_only_uncertain, result.generated_labels)["abnormal_studies"]["num_studies"] == 0
    assert ce_tables(reference_only_uncertain, result.generated_labels,
                     uncertain_as_positive=True)["abnormal_studies"]["num_studies"] == 1


def test_binary_scores_edges_and_errors() -> None:
    empty = binary_scores(np.zeros((0, 2)), np.zeros((0, 2)), ["A", "B"])
    assert empty.example == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert binary_scores(np.zeros((2, 0)), np.zeros((2, 0)), []).macro == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert set(empty.to_dict()) == {"num_examples", "micro", "macro", "example", "per_observation"}
    assert empty.to_dict()["num_examples"] == 0
    with pytest.raises(ValueError, match="shape mismatch"):
        binary_scores(np.zeros(2), np.zeros(2), ["A", "B"])  # one-dimensional
    with pytest.raises(ValueError, match="shape mismatch"):
        binary_scores(np.zeros((2, 3)), np.zeros((2, 3)), ["A", "B"])  # columns and names disagree


def test_from_labels_binarises_uncertain_as_asked_and_names_its_errors() -> None:
    uncertain = {name: Label.NOT_MENTIONED for name in OBSERVATIONS} | {"Edema": Label.UNCERTAIN}
    default = clinical_efficacy_from_labels([uncertain], [uncertain])
    assert default.per_observation["Edema"]["tp"] == 0  # uncertain counts as negative by default
    lenient = clinical_efficacy_from_labels([uncertain], [uncertain], uncertain_as_positive=True)
    assert lenient.per_observation["Edema"]["tp"] == 1
    with pytest.raises(ValueError, match="1 reference label sets but 0 generated label sets"):
        clinical_efficacy_from_labels([uncertain], [])
    with pytest.raises(ValueError, match="nothing to score"):
        clinical_efficacy_from_labels([], [])


def test_uncertain_binarisation_reaches_tables_findings_stated_and_the_result() -> None:
    from xray_report.evaluation.clinical_efficacy import ce_tables, positive_findings_stated

    reference = [{name: Label.NOT_MENTIONED for name in OBSERVATIONS} | {"Edema": Label.POSITIVE}]
    generated = [{name: Label.NOT_MENTIONED for name in OBSERVATIONS} | {"Edema": Label.UNCERTAIN}]
    assert positive_findings_stated(reference, generated) == 0.0
    assert positive_findings_stated(reference, generated, uncertain_as_positive=True) == 1.0
    edema = lambda tables: tables["all_studies"]["all_14"]["per_observation"]["Edema"]["tp"]  # noqa: E731
    assert edema(ce_tables(reference, generated)) == 0
    assert edema(ce_tables(reference, generated, uncertain_as_positive=True)) == 1
    assert compute_clinical_efficacy(["Edema."], ["Edema."], uncertain_as_positive=True).uncertain_as_positive is True
