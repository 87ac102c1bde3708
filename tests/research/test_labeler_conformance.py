"""The labeler against the CheXpert labeler's lists and conventions, and what it deliberately does better."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from research.labeler.chexpert_conformance import (
    agreement,
    chexpert_expected,
    chexpert_mentions,
    chexpert_phrases,
    phrase_templates,
    trigger_sentences,
)
from xray_report.evaluation.chexpert_labeler import Label, label_report

REPO_ROOT = Path(__file__).resolve().parents[2]
P, N, U, M = Label.POSITIVE, Label.NEGATIVE, Label.UNCERTAIN, Label.NOT_MENTIONED


def test_phrase_lists_are_complete() -> None:
    phrases = chexpert_phrases()
    assert len(phrases["mention"]) == 14 and sum(map(len, phrases["mention"].values())) == 148
    assert phrases["unmention"]["Lung Lesion"] == ["calcified nodul", "massive", "massengale"]


def test_expectation_follows_chexpert_extraction_and_aggregation() -> None:
    # "calcified nodul" unmentions the lesion; "calcifi" is an other finding, which blocks No Finding
    mentions = chexpert_mentions("There is a calcified nodule.")
    assert ("No Finding", "calcifi") in mentions and all(obs != "Lung Lesion" for obs, _ in mentions)
    assert chexpert_expected(mentions, P)["No Finding"] is M
    # a support device does not block No Finding; heart failure adds an uncertain Cardiomegaly
    assert chexpert_expected(chexpert_mentions("There is a picc."), P)["No Finding"] is P
    failure = chexpert_expected(chexpert_mentions("There is heart failure."), P)
    assert failure["Edema"] is P and failure["Cardiomegaly"] is U
    assert chexpert_expected(chexpert_mentions("There is vascular congestion."), P)["Edema"] is U
    assert chexpert_expected(chexpert_mentions("Opacity over the heart."), P)["Cardiomegaly"] is M


def test_phrase_templates_agreement_target() -> None:
    sentences = phrase_templates()
    assert len(sentences) > 1400
    result = agreement(sentences)
    assert result["agreement"] >= 0.95, result["disagreements"][:10]


def test_trigger_sentences_agreement_target() -> None:
    sentences = trigger_sentences()
    assert len(sentences) > 300
    result = agreement(sentences)
    assert result["agreement"] >= 0.90, result["disagreements"][:10]


@pytest.mark.parametrize(
    "text, expected",
    [
        # CheXpert conventions
        ("Congestive heart failure.", {"Edema": P, "Cardiomegaly": U, "No Finding": M}),
        ("Calcified granuloma in the right upper lobe.", {"No Finding": M, "Lung Lesion": M}),
        ("Degenerative changes of the thoracic spine.", {"No Finding": M}),
        ("Right PICC line in place. Lungs are clear.", {"Support Devices": P, "No Finding": P}),
        ("No pleural effusion or pneumothorax.", {"Pleural Effusion": N, "Pneumothorax": N, "No Finding": P}),
        ("Atelectasis or pneumonia.", {"Atelectasis": U, "Pneumonia": U}),
        ("History of pneumonia.", {"Pneumonia": N}),
        ("Rule out pneumothorax.", {"Pneumothorax": N}),
        ("Interval resolution of the left effusion.", {"Pleural Effusion": N}),
        ("No new consolidation.", {"Consolidation": U, "No Finding": M}),
        ("No definite pneumothorax.", {"Pneumothorax": U}),
        ("Mild pulmonary vascular congestion.", {"Edema": U}),
        ("Heart size is stable.", {"Cardiomegaly": U, "No Finding": M}),
        ("Heart size is normal and stable.", {"Cardiomegaly": N, "No Finding": P}),
        ("Left basilar scarring.", {"Lung Opacity": P}),
        ("Chronic interstitial markings.", {"Lung Opacity": P, "No Finding": M}),
        ("Pulmonary fibrosis.", {"Pleural Other": P}),
        ("Endotracheal tube in good position.", {"Support Devices": P}),
        # deliberate differences: word boundaries and look-alikes
        ("History of tuberculosis.", {"Support Devices": M}),
        ("Degenerative endplate changes.", {"Support Devices": M}),
        ("Sequela of granulomatous infection.", {"Pneumonia": M}),
        ("Kerley B lines.", {"Support Devices": M, "Edema": P}),
        ("Aortic valve calcification.", {"Support Devices": M}),
        ("Pericardial effusion.", {"Pleural Effusion": M}),
    ],
)
def test_conventions_and_deliberate_differences(text: str, expected: dict[str, Label]) -> None:
    labels = label_report(text)
    assert {name: labels[name] for name in expected} == expected


def test_cli_writes_both_figures(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "research.labeler.chexpert_conformance", "--output-dir", str(tmp_path)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "conformance.json").read_text())
    assert set(result) == {"phrase_templates", "trigger_sentences"}
    assert "| phrase templates |" in (tmp_path / "conformance.md").read_text()
