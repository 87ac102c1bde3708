"""The labeler against the CheXpert labeler's lists and rules (research/labeler/chexpert_conformance.py), the
recorded figures (research/results/labeler_conformance.json) and the figures docs/evaluation.md quotes."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from research.labeler import chexpert_conformance as conformance_module
from research.labeler.chexpert_conformance import (
    SETS,
    agreement,
    build_sentence,
    check_sources,
    chexpert_aggregate,
    chexpert_expected,
    chexpert_labels,
    chexpert_mentions,
    chexpert_phrases,
    conformance,
    coverage,
    held_out,
    rule_sentences,
    TemplateError,
)
from research.labeler.chexpert_patterns import PATTERN_CASES, PatternCase
from xray_report.evaluation.chexpert_labeler import Label, label_report

RESULTS = REPO_ROOT / "research" / "results" / "labeler_conformance.json"
DOC = REPO_ROOT / "docs" / "evaluation.md"
P, N, U, M = Label.POSITIVE, Label.NEGATIVE, Label.UNCERTAIN, Label.NOT_MENTIONED


@pytest.fixture(scope="module")
def measured() -> dict[str, object]:
    return conformance()


def test_phrase_lists_are_complete() -> None:
    phrases = chexpert_phrases()
    assert len(phrases["mention"]) == 14 and sum(map(len, phrases["mention"].values())) == 148
    assert phrases["unmention"]["Lung Lesion"] == ["calcified nodul", "massive", "massengale"]


def test_rule_table_has_every_rule_line_with_sentences_or_a_reason() -> None:
    table = coverage()
    assert table["rules"] == 152  # 153 rule lines in the three files, one of them twice
    assert table["rules_with_sentences"] == 147
    assert all(item["why"] for item in table["rules_without_sentences"])
    assert {case.file for case in PATTERN_CASES} == {"pre_negation_uncertainty", "negation", "post_negation_uncertainty"}


@pytest.mark.skipif(not os.environ.get("CHEXPERT_LABELER_DIR"),
                    reason="set CHEXPERT_LABELER_DIR to a checkout of stanfordmlgroup/chexpert-labeler")
def test_tables_equal_a_checkout_of_the_chexpert_labeler() -> None:
    source = check_sources(Path(os.environ["CHEXPERT_LABELER_DIR"]))
    assert source["phrases_equal"] and not source["rules_missing"] and not source["rules_not_in_files"]


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
    # the phrase " mediastinum" needs its space; "in the  mediastinum" (two spaces) never unmentions it
    assert chexpert_mentions("Mediastinum is widened.") == []
    assert ("Enlarged Cardiomediastinum", " mediastinum") in chexpert_mentions("Node in the mediastinum.")
    # stages/aggregate.py checks "negative and uncertain" before "positive"
    assert chexpert_aggregate([N, U, P]) is U and chexpert_aggregate([N, P]) is P and chexpert_aggregate([U]) is U
    assert chexpert_labels([("Edema", "edema", N), ("Edema", "edema", U), ("Edema", "edema", P)])["Edema"] is U


def test_sentences_give_each_slot_its_label_and_refuse_stray_mentions() -> None:
    built = build_sentence("{Y} rather than {x}.", "pneumonia", N, "atelectasis", P)
    assert built.text == "Atelectasis rather than pneumonia."
    assert sorted(built.mentions) == [("Atelectasis", "atelecta", P), ("Pneumonia", "pneumonia", N)]
    with pytest.raises(TemplateError, match="outside the slots"):
        build_sentence("Opacity suspicious for {x}.", "pneumonia", U)
    # "and/or" is read as "or", as CheXpert's loader rewrites it
    assert build_sentence("{X} and/or {y}.", "effusion", U, "atelectasis", U).x_observations == ["Pleural Effusion"]


def test_rule_sentences_take_the_direction_of_their_file() -> None:
    case = PatternCase("negation", "{} <{} {lemma:/exclude/}", ("To exclude {x}.",))
    sentences = rule_sentences([case])
    assert len(sentences) == 12 and all(s.expected[s.observation] is N for s in sentences if s.observation != "No Finding")
    post = rule_sentences([PatternCase("post_negation_uncertainty", "{} >{} {lemma:/question/}", ("Question {x}.",))])
    assert post[0].text == "Question pneumothorax." and post[0].expected["Pneumothorax"] is U


def test_held_out_entries_name_every_observation_chexpert_finds() -> None:
    sentences = held_out()
    assert len(sentences) > 150
    by_text = {s.text: s.expected for s in sentences}
    assert by_text["No large pleural effusion; small pleural effusion cannot be excluded."]["Pleural Effusion"] is U
    assert by_text["Retrocardiac opacity obscures the cardiac silhouette."]["Cardiomegaly"] is N


def test_targets_are_met(measured: dict[str, object]) -> None:
    summary = measured["summary"]
    assert summary["macro_agreement"] >= 0.95
    assert summary["rule_agreement"] >= 0.90 and summary["rule_sentences"] > 2000
    assert measured["held_out"]["agreement"] >= 0.95
    assert measured["sample_reports"]["agreement"] == 1.0  # the Stanford tool's own output
    files = measured["rule_sentences"]["per_rule_file"]
    assert all(files[name]["agreement"] >= 0.90 for name in files)


def test_recorded_results_are_this_tree(measured: dict[str, object]) -> None:
    recorded = json.loads(RESULTS.read_text(encoding="utf-8"))
    assert recorded["summary"] == pytest.approx(measured["summary"]), (
        "research/results/labeler_conformance.json is out of date: run python -m research.labeler.chexpert_conformance"
    )
    assert recorded["source_check"] is not None and recorded["source_check"]["phrases_equal"]
    assert recorded["source_check"]["rules_missing"] == [] and recorded["source_check"]["rules_not_in_files"] == []


def test_docs_quote_the_recorded_figures() -> None:
    recorded = json.loads(RESULTS.read_text(encoding="utf-8"))
    doc = DOC.read_text(encoding="utf-8")
    section = doc[doc.index("### Conformance with the CheXpert labeler"):doc.index("### CE metrics")]
    summary = recorded["summary"]
    prose = " ".join(section.split())
    assert f"macro agreement **{summary['macro_agreement']:.3f}**" in prose
    assert f"rule agreement **{summary['rule_agreement']:.3f}**" in prose
    for name in SETS:
        part = recorded[name]
        row = re.search(rf"^\| {name.replace('_', ' ')}\b[^\n]*\| ([\d,]+) \| ([\d.]+) \|$", section, re.M)
        assert row, name
        assert (row.group(1), row.group(2)) == (f"{part['num_sentences']:,}", f"{part['agreement']:.3f}"), name


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
        ("Atelectasis/pneumonia.", {"Atelectasis": U, "Pneumonia": U}),
        ("History of pneumonia.", {"Pneumonia": N}),
        ("Rule out pneumothorax.", {"Pneumothorax": N}),
        ("Interval resolution of the left effusion.", {"Pleural Effusion": N}),
        ("No new consolidation.", {"Consolidation": U, "No Finding": M}),
        ("No definite pneumothorax.", {"Pneumothorax": N, "No Finding": P}),
        ("Mild pulmonary vascular congestion.", {"Edema": U}),
        ("Heart size is stable.", {"Cardiomegaly": U, "No Finding": M}),
        ("Heart size is normal and stable.", {"Cardiomegaly": N, "No Finding": P}),
        ("The cardiomediastinal silhouette is normal.", {"Enlarged Cardiomediastinum": N, "Cardiomegaly": M}),
        ("No change in the heart size.", {"Cardiomegaly": M}),  # CheXpert's unmention "in the heart size"
        ("Left basilar scarring.", {"Lung Opacity": P}),
        ("Chronic interstitial markings.", {"Lung Opacity": P, "No Finding": M}),
        ("Pulmonary fibrosis.", {"Pleural Other": P}),
        ("Endotracheal tube in good position.", {"Support Devices": P}),
        ("No effusion. Possible effusion. Small effusion.", {"Pleural Effusion": U}),  # CheXpert's aggregation
        # deliberate differences: word boundaries, look-alikes, negations CheXpert's rules miss
        ("History of tuberculosis.", {"Support Devices": M}),
        ("Degenerative endplate changes.", {"Support Devices": M}),
        ("Sequela of granulomatous infection.", {"Pneumonia": M}),
        ("Kerley B lines.", {"Support Devices": M, "Edema": P}),
        ("Aortic valve calcification.", {"Support Devices": M}),
        ("Pericardial effusion.", {"Pleural Effusion": M}),
        ("Pneumothorax is not seen.", {"Pneumothorax": N}),
        ("Pneumonia is unlikely.", {"Pneumonia": U}),
        ("Calcified granuloma adjacent to the heart.", {"Cardiomegaly": M}),
    ],
)
def test_conventions_and_deliberate_differences(text: str, expected: dict[str, Label]) -> None:
    labels = label_report(text)
    assert {name: labels[name] for name in expected} == expected


def test_cli_writes_the_results_file_and_refuses_a_checkout_that_differs(tmp_path: Path, monkeypatch) -> None:
    small = {"summary": {"macro_agreement": 1.0, "rule_agreement": 1.0, "rule_sentences": 1}, "source_check": None,
             **{name: {"num_sentences": 1, "agreement": 1.0} for name in SETS}}
    monkeypatch.setattr(conformance_module, "conformance", lambda chexpert_dir=None: small)
    output = tmp_path / "conformance.json"
    assert conformance_module.main(["--output", str(output)]) == 0
    assert json.loads(output.read_text())["summary"]["rule_sentences"] == 1
    assert conformance_module.main(["--output-dir", str(tmp_path / "dir")]) == 0
    assert "| rule sentences | 1 | 1.000 |" in (tmp_path / "dir" / "conformance.md").read_text()
    differs = {**small, "source_check": {"phrases_equal": True, "rules_missing": ["negation: {}"], "rules_not_in_files": []}}
    monkeypatch.setattr(conformance_module, "conformance", lambda chexpert_dir=None: differs)
    assert conformance_module.main(["--output", str(tmp_path / "other.json"), "--chexpert-labeler", str(tmp_path)]) == 1
    assert not (tmp_path / "other.json").exists()


def test_agreement_names_each_disagreement() -> None:
    sentences = rule_sentences([PatternCase("negation", "{} >{dependency:/neg/} {}", ("No {x}.",))])[:2]
    assert [s.text for s in sentences] == ["No pneumothorax.", "No pleural effusion."]
    result = agreement(sentences, lambda text: {**label_report(text), "Pneumothorax": N})
    assert result["num_disagreements"] == 1
    assert result["disagreements"][0]["text"] == "No pleural effusion."
    assert result["disagreements"][0]["differs"]["Pneumothorax"] == {"chexpert": "not_mentioned", "ours": "negative"}
