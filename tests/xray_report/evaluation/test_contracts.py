"""The evaluation functions' contracts beyond their main values: defaults, the options each passes on, the errors
and what they say, and silence on stdout (pycocoevalcap prints unless told not to). Written from the mutation run's
survivors (research/results/mutation_survivors.txt): each test fails for a small change that the value tests let pass."""

from __future__ import annotations

import logging

import pytest

from xray_report.evaluation import Label
from xray_report.evaluation.baselines import (
    BEST_ON_VALIDATION,
    MOST_FREQUENT,
    baseline_reports,
    best_single_report,
    most_frequent_report,
)
from xray_report.evaluation.clinical_efficacy import compute_clinical_efficacy
from xray_report.evaluation import nlg
from xray_report.evaluation.meteor_process import METEOR_UNAVAILABLE_MESSAGE
from xray_report.evaluation.nlg import (
    R2GenVocabulary,
    SplitFileError,
    clean_report_r2gen,
    compute_nlg_metrics,
    describe_protocol,
    protocol_preparers,
    read_split_reports,
)
from xray_report.evaluation.options import ScoringOptions

TRAIN = ["Heart normal. Lungs clear.", "Heart normal. Lungs clear.", "Small left effusion.", "Heart normal."] * 3


def test_ce_counts_uncertain_as_negative_unless_asked():
    references, generated = ["Possible small pleural effusion."], ["Small pleural effusion."]
    assert compute_clinical_efficacy(references, generated).reference_labels[0]["Pleural Effusion"] == Label.UNCERTAIN
    default = compute_clinical_efficacy(references, generated, observations=["Pleural Effusion"]).scores
    assert (default.micro["precision"], default.micro["recall"]) == (0.0, 0.0)  # a false positive
    lenient = compute_clinical_efficacy(references, generated, observations=["Pleural Effusion"],
                                        uncertain_as_positive=True).scores
    assert lenient.micro["f1"] == 1.0


def test_r2gen_cleaning_lowercases_and_the_dataset_choice_is_passed_on():
    assert clean_report_r2gen("Heart Normal. LUNGS clear") == "heart normal . lungs clear ."
    assert clean_report_r2gen("Straße") == "straße ."  # lowercased as R2Gen does, never upper-cased first ("SS")
    lines = "Heart normal.\nLungs clear."  # the MIMIC-CXR cleaner turns the line break into a sentence end
    assert R2GenVocabulary.from_reports([lines] * 3, "iu_xray").words_of(lines) == ["heart", "normal", "lungs", "clear", "."]
    assert R2GenVocabulary.from_reports([lines] * 10, "mimic_cxr").words_of(lines) == [
        "heart", "normal", ".", "lungs", "clear", "."]
    assert "." in R2GenVocabulary.from_reports([lines] * 5, "mimic_cxr", threshold=10).words  # seen 10 times here
    text = "heart  normal__\nlungs clear"
    assert clean_report_r2gen(text, "iu_xray") != clean_report_r2gen(text, "mimic_cxr")
    for dataset in ("iu_xray", "mimic_cxr"):
        vocabulary = R2GenVocabulary.from_reports([text] * 10, dataset)  # R2Gen keeps words seen 3 (IU) or 10 (MIMIC) times
        assert vocabulary.words - {nlg.R2GEN_UNK} == set(clean_report_r2gen(text, dataset).split())
        assert vocabulary.words_of(text) == clean_report_r2gen(text, dataset).split()


def test_vocabulary_options_are_kept_and_described():
    vocabulary = R2GenVocabulary.from_reports(TRAIN)
    assert vocabulary.describe() == {
        "dataset": "iu_xray", "threshold": 3, "max_seq_length": 60,
        "vocabulary_size": len(vocabulary.words), "vocabulary_source": "train reports",
    }
    short = R2GenVocabulary.from_reports(TRAIN, max_seq_length=3)
    assert short.max_seq_length == 3 and short.reference("Heart normal. Lungs clear.") == "heart normal"
    assert R2GenVocabulary.from_reports(TRAIN, max_seq_length=2).max_seq_length == 2  # the smallest allowed


@pytest.mark.parametrize("threshold, max_seq_length", [(0, 60), (3, 1), (0, 1)])
def test_vocabulary_settings_out_of_range_are_refused_with_their_values(threshold, max_seq_length):
    with pytest.raises(ValueError, match=rf"threshold must be >= 1 and max_seq_length >= 2, got {threshold} and {max_seq_length}"):
        R2GenVocabulary.from_reports(TRAIN, threshold=threshold, max_seq_length=max_seq_length)


def test_a_vocabulary_without_words_names_its_source():
    with pytest.raises(ValueError, match="my split: no train report words"):
        R2GenVocabulary.from_reports([], source="my split")


def test_split_file_vocabulary_keeps_max_seq_length(tmp_path):
    import json

    path = tmp_path / "annotation.json"
    path.write_text(json.dumps({"train": [{"id": str(i), "report": r, "split": "train"} for i, r in enumerate(TRAIN)]}))
    vocabulary = R2GenVocabulary.from_split_file(path, max_seq_length=4)
    assert vocabulary.max_seq_length == 4 and vocabulary.source == "annotation.json (train split)"
    path.write_text(json.dumps({"train": {"id": "1"}}))
    with pytest.raises(SplitFileError, match=r"annotation.json: 'train' is not a list"):
        read_split_reports(path)


def test_pairs_of_the_wrong_type_are_named():
    with pytest.raises(TypeError, match="pair 0: reference and prediction must be str, got str and int"):
        compute_nlg_metrics(["Heart normal."], [3], ScoringOptions(meteor=False))
    with pytest.raises(TypeError, match="got NoneType and str"):
        compute_nlg_metrics([None], ["Heart normal."], ScoringOptions(meteor=False))


def test_protocol_defaults_and_the_normalize_option():
    reference, prediction = protocol_preparers()
    assert reference("Heart  NORMAL.") == prediction("Heart  NORMAL.") == nlg.normalize_report("Heart  NORMAL.")
    _, raw = protocol_preparers(ScoringOptions(), normalize=False)
    assert raw("Heart  NORMAL.") == "Heart NORMAL."
    normalised = compute_nlg_metrics(["heart normal ."], ["Heart Normal."], ScoringOptions(meteor=False))
    as_written = compute_nlg_metrics(["heart normal ."], ["Heart Normal."], ScoringOptions(meteor=False), normalize=False)
    assert normalised.corpus["bleu_1"] > as_written.corpus["bleu_1"]


def test_protocol_descriptions():
    default = ("default: report normalisation, whole reports; pycocoevalcap Bleu(4)/Meteor/Rouge/Cider on "
               "space-separated tokens")
    vocabulary = R2GenVocabulary.from_reports(TRAIN)
    assert describe_protocol() == default
    assert describe_protocol(ScoringOptions(vocabulary=vocabulary)) == default
    r2gen = describe_protocol(ScoringOptions(protocol="r2gen", vocabulary=vocabulary))
    assert r2gen != default and "references cut to 59 words" in r2gen
    assert r2gen.endswith("pycocoevalcap Bleu(4)/Meteor/Rouge/Cider")


def test_scorers_print_nothing(capsys):
    compute_nlg_metrics(["Heart normal. Lungs clear."], ["Heart normal."], ScoringOptions(meteor=False))
    best_single_report(TRAIN, ["Heart normal. Lungs clear.", "Heart normal."])
    assert capsys.readouterr().out == ""


def test_a_scorer_not_requested_or_not_available_is_said(monkeypatch, caplog):
    result = compute_nlg_metrics(["Heart normal."], ["Heart normal."], ScoringOptions(meteor=False))
    assert result.unavailable == {"meteor": "METEOR not requested"} and result.corpus["meteor"] is None
    monkeypatch.setattr(nlg, "java_available", lambda: False)
    with caplog.at_level(logging.WARNING):
        result = compute_nlg_metrics(["Heart normal."], ["Heart normal."])  # METEOR is asked for by default
    assert result.unavailable == {"meteor": METEOR_UNAVAILABLE_MESSAGE}
    assert METEOR_UNAVAILABLE_MESSAGE in caplog.messages


def test_baselines_default_protocol_and_the_r2gen_vocabulary_passed_on():
    assert most_frequent_report(TRAIN) == "Heart normal. Lungs clear."
    vocabulary = R2GenVocabulary.from_reports(TRAIN)
    validation = ["Heart normal. Lungs clear.", "Heart normal."]
    r2gen = ScoringOptions(protocol="r2gen", vocabulary=vocabulary)
    assert most_frequent_report(TRAIN, r2gen) == "Heart normal. Lungs clear."
    assert best_single_report(TRAIN, validation, r2gen) in TRAIN
    assert set(baseline_reports(TRAIN, validation, r2gen)) == {MOST_FREQUENT, BEST_ON_VALIDATION}
    with pytest.raises(ValueError, match="needs the vocabulary"):
        most_frequent_report(TRAIN, ScoringOptions(protocol="r2gen"))


def test_baselines_refuse_empty_training_reports_by_name():
    for call in (lambda: most_frequent_report(["", " "]), lambda: best_single_report(["", " "], ["Heart normal."])):
        with pytest.raises(ValueError, match="^no non-empty training report to choose a baseline from$"):
            call()


def test_best_single_report_logs_what_it_scores(caplog):
    with caplog.at_level(logging.INFO, logger="xray_report.evaluation.baselines"):
        best_single_report(TRAIN, ["Heart normal.", "Lungs clear."])
    assert "scoring 3 distinct training reports on 2 validation studies" in caplog.messages


def test_messages_of_the_empty_and_missing_inputs_in_full():
    with pytest.raises(ValueError, match="^nothing to score: references and predictions are empty$"):
        compute_nlg_metrics([], [], ScoringOptions(meteor=False))
    with pytest.raises(ValueError, match=r"^protocol 'r2gen' needs the vocabulary of the split's train reports \(R2GenVocabulary\)$"):
        ScoringOptions(protocol="r2gen")
    with pytest.raises(ValueError, match="^no validation report to choose the best single training report on$"):
        best_single_report(TRAIN, [])


def test_unnormalised_scoring_treats_the_meteor_separator_as_a_space() -> None:
    references = ["heart size normal lungs clear", "no pleural effusion seen here"]
    plain = nlg.compute_nlg_metrics(references, ["heart size normal lungs clear", "no pleural effusion seen here"],
                                    ScoringOptions(meteor=False), normalize=False)
    piped = nlg.compute_nlg_metrics(references, ["heart|size normal lungs|clear", "no pleural|effusion seen here"],
                                    ScoringOptions(meteor=False), normalize=False)
    assert piped.corpus == plain.corpus and plain.corpus["bleu_4"] == pytest.approx(1.0)
