"""The R2Gen scoring protocol, pinned step by step, and the trivial-baseline rows."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from conftest import REPO_ROOT
from xray_report.evaluation.baselines import BEST_ON_VALIDATION, MOST_FREQUENT, baseline_reports, best_single_report
from xray_report.evaluation.nlg import (
    R2GEN_UNK,
    R2GenVocabulary,
    SplitFileError,
    clean_report_r2gen,
    compute_nlg_metrics,
)
from xray_report.evaluation.options import ScoringOptions
from xray_report.evaluation.scoring import Prediction, score_predictions

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs java, absent on this machine")

TRAIN = ["Heart normal. Lungs clear."] * 3 + ["Rare word here.", "Heart normal. Small left effusion."]
VAL = ["Heart normal. Lungs clear.", "Valword valword valword valword. Lungs clear."]
TEST = ["Heart normal. Small effusion.", "Lungs clear. Heart normal."]


def _annotation(path: Path, train=TRAIN, val=VAL, test=TEST) -> Path:
    def entries(split: str, reports: list[str]) -> list[dict]:
        return [{"id": f"{split}{i}", "report": r, "image_path": [], "split": split} for i, r in enumerate(reports)]

    path.write_text(json.dumps({"train": entries("train", train), "val": entries("val", val),
                                "test": entries("test", test)}), encoding="utf-8")
    return path


def test_cleaning_reproduces_every_quirk() -> None:
    text = 'The heart is NORMAL.. 1. No "acute" disease/process; x<y>=z?@ 4.5 cm. T4-T5 ok. 11. Left: base!'
    # "1. " is deleted anywhere (so "11. Left" -> "1Left"); ':-[' is a character range that also deletes
    # ';<=>?@'; the dot of a decimal is deleted, not a sentence end; the hyphen stays.
    assert clean_report_r2gen(text) == "the heart is normal . no acute diseaseprocess xyz 45 cm . t4-t5 ok . 1left base ."
    assert clean_report_r2gen("Heart normal 2. Lungs clear") == "heart normal . lungs clear ."
    assert clean_report_r2gen("No effusion. . Clear.").split() == ["no", "effusion", ".", ".", "clear", "."]
    assert clean_report_r2gen("Heart\n\nnormal__size", dataset="mimic_cxr") == "heart normalsize ."
    with pytest.raises(ValueError, match="unknown R2Gen dataset"):
        clean_report_r2gen("x", dataset="chexpert")


def test_vocabulary_counts_train_reports_only(tmp_path: Path) -> None:
    vocabulary = R2GenVocabulary.from_split_file(_annotation(tmp_path / "annotation.json"))
    assert vocabulary.words == {"heart", "normal", ".", "lungs", "clear", R2GEN_UNK}  # "valword" is only in val
    assert vocabulary.reference(VAL[1]) == "<unk> <unk> <unk> <unk> . lungs clear ."
    assert vocabulary.prediction("Rare heart.") == "<unk> heart ."
    looser = R2GenVocabulary.from_split_file(tmp_path / "annotation.json", threshold=1)
    assert {"rare", "small", "left", "effusion"} <= looser.words and "valword" not in looser.words
    assert vocabulary.describe()["vocabulary_source"] == "annotation.json (train split)"


def test_references_are_cut_to_59_words_and_predictions_are_not() -> None:
    vocabulary = R2GenVocabulary.from_reports(["heart " * 5])
    long_report = "heart " * 70
    assert len(vocabulary.reference(long_report).split()) == 59
    assert len(vocabulary.prediction(long_report).split()) == 71  # 70 words and the final " ."
    assert len(R2GenVocabulary.from_reports(["heart " * 5], dataset="mimic_cxr").reference(long_report).split()) == 71


@pytest.mark.parametrize(
    "content, message",
    [("not json", "cannot read the split file"), ('{"train": []}', "non-empty 'train'"),
     ('{"train": [{"id": "a"}]}', r"train\[0\] has no 'report'"), ("[1]", "JSON object")],
)
def test_malformed_split_files_name_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "annotation.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SplitFileError, match=message) as info:
        R2GenVocabulary.from_split_file(path)
    assert str(path) in str(info.value)


def _direct_scores(gts: dict, res: dict) -> dict[str, float]:
    with contextlib.redirect_stdout(io.StringIO()):
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return {"bleu_4": bleu[3], "bleu_1": bleu[0], "rouge_l": Rouge().compute_score(gts, res)[0],
            "cider": Cider().compute_score(gts, res)[0]}


def test_scores_equal_pycocoevalcap_on_the_cleaned_strings(tmp_path: Path) -> None:
    vocabulary = R2GenVocabulary.from_split_file(_annotation(tmp_path / "annotation.json"), threshold=1)
    references = ["The heart is normal. Lungs clear. 4.5 cm nodule.", "Small left effusion; heart normal."]
    predictions = ["Heart normal. Lungs clear.", "Left effusion. Rare heart."]
    ours = compute_nlg_metrics(references, predictions,
                               ScoringOptions(meteor=False, protocol="r2gen", vocabulary=vocabulary))
    gts = {i: [vocabulary.reference(r)] for i, r in enumerate(references)}
    res = {i: [vocabulary.prediction(p)] for i, p in enumerate(predictions)}
    assert gts[0][0] == "<unk> heart <unk> normal . lungs clear . <unk> <unk> <unk> ."  # "the", "is", "45" ... unseen
    for key, value in _direct_scores(gts, res).items():
        assert ours.corpus[key] == pytest.approx(value, abs=1e-12), key
    default = compute_nlg_metrics(references, predictions, ScoringOptions(meteor=False))
    assert default.corpus != ours.corpus
    with pytest.raises(ValueError, match="needs the vocabulary"):
        compute_nlg_metrics(references, predictions, ScoringOptions(protocol="r2gen"))
    with pytest.raises(ValueError, match="unknown protocol"):
        compute_nlg_metrics(references, predictions, ScoringOptions(protocol="coco"))


@needs_java
def test_unk_survives_meteor_norm() -> None:
    from pycocoevalcap.meteor.meteor import Meteor

    vocabulary = R2GenVocabulary.from_reports(["heart normal lungs clear"] * 3)
    references = ["Heart xylo normal. Lungs clear.", "Heart normal."]
    predictions = ["Heart zyxo normal. Lungs clear.", "Heart lungs."]  # "zyxo" and "xylo" both become <unk>
    ours = compute_nlg_metrics(references, predictions, ScoringOptions(protocol="r2gen", vocabulary=vocabulary))
    gts = {i: [vocabulary.reference(r)] for i, r in enumerate(references)}
    res = {i: [vocabulary.prediction(p)] for i, p in enumerate(predictions)}
    direct = Meteor()
    score, scores = direct.compute_score(gts, res)
    del direct  # its __del__ stops the Java process
    assert ours.corpus["meteor"] == pytest.approx(score, abs=1e-9)
    assert ours.per_report[0]["meteor"] == pytest.approx(scores[0], abs=1e-9)
    assert ours.per_report[0]["meteor"] > 0.9  # the <unk> tokens match each other through -norm


def test_baselines_most_frequent_and_best_single() -> None:
    train = ["Heart normal. Lungs clear.", "heart normal.. lungs clear", "Small left effusion.",
             "Heart normal. Lungs clear. No effusion.", "Small left effusion."]
    validation = ["Heart normal. Lungs clear. No effusion.", "Heart normal. Lungs clear. No effusion. No pneumothorax."]
    baselines = baseline_reports(train, validation)
    assert baselines[MOST_FREQUENT] == "Heart normal. Lungs clear."  # two raw spellings of one cleaned form
    brute_force = {}
    for candidate in set(train):
        scores = compute_nlg_metrics(validation, [candidate] * len(validation), ScoringOptions(meteor=False))
        brute_force[candidate] = scores.corpus["bleu_4"]
    assert baselines[BEST_ON_VALIDATION] == max(brute_force, key=brute_force.get)
    assert baselines[BEST_ON_VALIDATION] == "Heart normal. Lungs clear. No effusion."
    assert set(baseline_reports(train)) == {MOST_FREQUENT}  # no validation reports, no best single
    with pytest.raises(ValueError, match="no validation report"):
        best_single_report(train, [])


def test_scoring_reports_baselines_scored_like_the_model(tmp_path: Path) -> None:
    vocabulary = R2GenVocabulary.from_split_file(_annotation(tmp_path / "annotation.json"))
    rows = [Prediction(f"s{i}", ref, ref, i + 1) for i, ref in enumerate(TEST)]
    baselines = {MOST_FREQUENT: TRAIN[0]}
    options = ScoringOptions(meteor=False, protocol="r2gen", vocabulary=vocabulary)
    result = score_predictions(rows, options, baselines=baselines)
    row = result["baselines"][MOST_FREQUENT]
    constant = compute_nlg_metrics(TEST, [TRAIN[0]] * 2, options)
    assert row["report"] == TRAIN[0] and row["corpus"]["bleu_1"] == pytest.approx(constant.corpus["bleu_1"])
    assert row["corpus"]["distinct_reports"] == 1 and result["corpus"]["distinct_reports"] == 2
    assert result["corpus"]["bleu_1"] == pytest.approx(1.0)
    assert result["protocol"]["name"] == "r2gen" and result["protocol"]["r2gen"]["threshold"] == 3


def test_scoring_cli_r2gen_protocol(tmp_path: Path) -> None:
    annotation = _annotation(tmp_path / "annotation.json")
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("".join(json.dumps({"study_id": f"t{i}", "reference": r, "generated": TRAIN[0]}) + "\n"
                                   for i, r in enumerate(TEST)), encoding="utf-8")
    output = tmp_path / "metrics.json"
    command = [sys.executable, "-m", "xray_report.evaluation", str(predictions), "--protocol", "r2gen",
               "--split-file", str(annotation), "--output", str(output), "--no-meteor"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(output.read_text())
    assert set(result["baselines"]) == {MOST_FREQUENT, BEST_ON_VALIDATION}
    assert result["protocol"]["r2gen"]["vocabulary_size"] == 6
    # the model here *is* the most frequent training report, so both rows are equal
    assert result["baselines"][MOST_FREQUENT]["corpus"]["bleu_4"] == pytest.approx(result["corpus"]["bleu_4"])
    missing = subprocess.run(command[:6] + ["--output", str(output)], cwd=REPO_ROOT, capture_output=True, text=True)
    assert missing.returncode == 2 and "needs --split-file" in missing.stderr
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    bad = subprocess.run(command[:7] + [str(tmp_path / "bad.json"), "--output", str(output)], cwd=REPO_ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "bad.json" in bad.stderr and "cannot read the split file" in bad.stderr
