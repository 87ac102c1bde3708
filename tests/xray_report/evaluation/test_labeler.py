"""Rule-based CheXpert labeler: negation / uncertainty cases in IU X-ray phrasing."""

from __future__ import annotations

import pytest

from xray_report.evaluation.chexpert_labeler import (
    OBSERVATIONS,
    PATHOLOGIES,
    Label,
    ObservationRule,
    label_report,
    label_report_with_mentions,
    label_with_rules,
    split_report_sentences,
)

P, N, U, M = Label.POSITIVE, Label.NEGATIVE, Label.UNCERTAIN, Label.NOT_MENTIONED


@pytest.mark.parametrize(
    ("text", "observation", "expected"),
    [
        # negation before the finding, across a list, with the "XXXX" mask
        ("No pleural effusion.", "Pleural Effusion", N),
        ("There are no XXXX of a pleural effusion.", "Pleural Effusion", N),
        ("No focal consolidation, suspicious pulmonary opacity, large pleural effusion, or pneumothorax is identified.", "Pneumothorax", N),
        ("Lungs are clear without focal consolidation, effusion or pneumothorax.", "Consolidation", N),
        ("Negative for focal pulmonary consolidation, pleural effusion, or pneumothorax.", "Pleural Effusion", N),
        ("There is no evidence of pneumothorax.", "Pneumothorax", N),
        ("There is no focal air space opacity to suggest a pneumonia.", "Pneumonia", N),
        # negation after the finding
        ("Pneumothorax is not seen.", "Pneumothorax", N),
        ("The previously seen right effusion has resolved.", "Pleural Effusion", N),
        # uncertainty
        ("Cannot exclude pneumonia.", "Pneumonia", U),
        ("Pneumonia cannot be excluded.", "Pneumonia", U),
        ("Left basilar patchy opacities, which may represent atelectasis or infection.", "Atelectasis", U),
        ("Question small bilateral pleural effusions.", "Pleural Effusion", U),
        ("Small bilateral pleural effusions suspected.", "Pleural Effusion", U),
        ("Borderline heart size.", "Cardiomegaly", U),
        # CheXpert's rules give borderline uncertainty to "borderline heart size" only
        ("Borderline cardiomegaly.", "Cardiomegaly", P),
        # negation rules CheXpert applies before its uncertainty rules
        ("No definite pneumothorax.", "Pneumothorax", N),
        ("No obvious pleural effusion.", "Pleural Effusion", N),
        ("Atelectasis rather than pneumonia.", "Pneumonia", N),
        ("Atelectasis rather than pneumonia.", "Atelectasis", P),
        ("Interval clearing of the left basilar opacity.", "Lung Opacity", N),
        ("Drainage of the right pleural effusion.", "Pleural Effusion", N),
        ("Evaluation to exclude pneumothorax.", "Pneumothorax", N),
        ("The left chest tube has been removed.", "Support Devices", N),
        ("Left pleural effusion with interval resolution.", "Pleural Effusion", N),
        ("No focal consolidation, suspicious pulmonary opacity, pleural effusion, or pneumothorax.", "Lung Opacity", N),
        ("No focal consolidation, suspicious pulmonary opacity, pleural effusion, or pneumothorax.", "Pneumothorax", N),
        # post-negation uncertainty rules
        ("Pneumonia is less likely.", "Pneumonia", U),
        ("This would be atelectasis.", "Atelectasis", U),
        ("Findings favor atelectasis.", "Atelectasis", U),
        ("Atelectasis may have this appearance.", "Atelectasis", U),
        ("The cardiac silhouette is obscured.", "Cardiomegaly", U),
        ("Overlying soft tissue obscures the cardiac silhouette.", "Cardiomegaly", N),
        ("The nodule is not clearly seen.", "Lung Lesion", U),
        ("A small effusion was not appreciated.", "Pleural Effusion", U),
        ("No new consolidation.", "Consolidation", U),
        # hedges CheXpert reads as positive
        ("Bibasilar opacities likely represent atelectasis.", "Atelectasis", P),
        ("Findings suggestive of pneumonia.", "Pneumonia", P),
        # the finding itself stays positive when only its cause is uncertain
        ("Left basilar patchy opacities, which may represent atelectasis or infection.", "Lung Opacity", P),
        # normal statements
        ("Heart size is normal.", "Cardiomegaly", N),
        ("The heart is not enlarged.", "Cardiomegaly", N),
        ("Heart size and pulmonary vascularity within normal limits.", "Cardiomegaly", N),
        ("The heart size is at the upper limits of normal.", "Cardiomegaly", N),
        ("The cardiomediastinal silhouette is within normal limits.", "Enlarged Cardiomediastinum", N),
        # positives
        ("Mild cardiomegaly, no effusion.", "Cardiomegaly", P),
        ("Mild cardiomegaly, no effusion.", "Pleural Effusion", N),
        ("The heart is moderately enlarged.", "Cardiomegaly", P),
        ("There is widening of the mediastinum.", "Enlarged Cardiomediastinum", P),
        ("No change in mild cardiomegaly.", "Cardiomegaly", P),
        ("Stable small left pleural effusion.", "Pleural Effusion", P),
        ("Mild blunting of right costophrenic XXXX.", "Pleural Effusion", P),
        ("Old healed right rib fractures.", "Fracture", P),
        ("Right chest XXXX tip is visualized in the distal SVC.", "Support Devices", P),
        ("Tracheostomy tube in satisfactory position.", "Support Devices", P),
        ("A 5 mm stable right apical nodule.", "Lung Lesion", P),
        ("There is right upper lobe airspace disease.", "Lung Opacity", P),
        ("Small right apical pneumothorax.", "Pneumothorax", P),
        # look-alikes that are not the observation
        ("Small pericardial effusion.", "Pleural Effusion", M),
        ("Residuals of prior granulomatous infection.", "Pneumonia", M),
        ("Lytic lesion of the humerus.", "Lung Lesion", M),
        ("Retrocardiac lucency represents a large hiatal hernia.", "Cardiomegaly", M),
    ],
)
def test_labeler_cases(text: str, observation: str, expected: Label) -> None:
    result = label_report_with_mentions(text)
    assert result.labels[observation] is expected, [(m.observation, m.text, m.label, m.cue) for m in result.mentions]


def test_report_labels_cover_all_observations_and_aggregate_positive_first() -> None:
    report = (
        "The heart is normal in size. No pleural effusion. Small left pleural effusion is noted. "
        "1. Possible left lower lobe pneumonia. 2. No pneumothorax."
    )
    labels = label_report(report)
    assert set(labels) == set(OBSERVATIONS)
    assert labels["Pleural Effusion"] is P  # positive beats the negative mention
    assert labels["Pneumonia"] is U
    assert labels["Pneumothorax"] is N
    assert labels["Cardiomegaly"] is N
    assert labels["Lung Lesion"] is M
    assert labels["No Finding"] is M  # a positive / uncertain pathology rules it out


def test_no_finding_rule() -> None:
    normal = label_report("The heart is normal in size. The lungs are clear. No pneumothorax or pleural effusion.")
    assert normal["No Finding"] is P
    devices_only = label_report("Right chest port. No acute cardiopulmonary disease.")
    assert devices_only["Support Devices"] is P and devices_only["No Finding"] is P
    uncertain = label_report("Cannot exclude pneumonia.")
    assert uncertain["No Finding"] is M
    assert label_report("")["No Finding"] is P
    assert set(PATHOLOGIES) == set(OBSERVATIONS) - {"No Finding", "Support Devices"}


def test_label_with_rules_applies_the_same_cue_analysis_to_other_findings() -> None:
    rules = (
        ObservationRule("Hernia", mentions=(r"hiatal hernia",)),
        ObservationRule("Spine", mentions=(r"degenerat\w*",), exclusions=(r"degenerat\w* (?:\w+ ){0,3}?shoulders?",)),
    )
    cases = {
        "Small hiatal hernia. Degenerative changes of the thoracic spine.": (Label.POSITIVE, Label.POSITIVE),
        "No hiatal hernia. Degenerative changes of both shoulders.": (Label.NEGATIVE, Label.NOT_MENTIONED),
        "Possible hiatal hernia.": (Label.UNCERTAIN, Label.NOT_MENTIONED),
        "The lungs are clear.": (Label.NOT_MENTIONED, Label.NOT_MENTIONED),
    }
    for text, (hernia, spine) in cases.items():
        assert label_with_rules(text, rules) == {"Hernia": hernia, "Spine": spine}, text


def test_sentence_split_handles_missing_space_and_list_numbers() -> None:
    sentences = split_report_sentences("Opacity in the left apex.There is no effusion. 1. No acute disease. 2. Nodule 4.5 cm.")
    assert sentences == ["opacity in the left apex", "there is no effusion", "no acute disease", "nodule 4.5 cm"]
