"""CheXbert: the real loading code on a locally written checkpoint of the public file's format (a tiny BERT), the
class and head order, the scores and their uncertain convention, and "unavailable, with the reason" when the weights
cannot be had."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizer

from xray_report.evaluation.chexbert import (
    CHEXBERT_CONDITIONS,
    CHEXBERT_HUB_ID,
    CheXbertUnavailable,
    chexbert_efficacy,
    chexbert_metrics,
    decode_classes,
    load_chexbert,
    read_chexbert_state_dict,
)
from xray_report.evaluation.chexpert_labeler import OBSERVATIONS, Label
from xray_report.evaluation.clinical_efficacy import CHEXBERT_5
from xray_report.evaluation.options import ScoringOptions
from xray_report.evaluation.scoring import Prediction, score_predictions

P, N, U, M = Label.POSITIVE, Label.NEGATIVE, Label.UNCERTAIN, Label.NOT_MENTIONED
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "no", "pleural", "effusion", "small", "heart", "is", "normal", "."]
# the class each head will predict, CheXbert's order: 0 blank, 1 positive, 2 negative, 3 uncertain (No Finding: 0/1)
CLASSES = [1, 3, 2, 0, 1, 2, 3, 0, 2, 1, 0, 3, 1, 0]


@pytest.fixture(scope="module")
def config() -> BertConfig:
    return BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=24, max_position_embeddings=512)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bert-tokenizer")
    BertTokenizer(vocab={word: index for index, word in enumerate(WORDS)}).save_pretrained(folder)
    return folder


def write_public_checkpoint(path: Path, config: BertConfig, classes: list[int], *, position_ids: bool = False) -> dict:
    """A checkpoint laid out as the public chexbert.pth: torch.save of {"epoch", "model_state_dict",
    "optimizer_state_dict"}, the weights of the DataParallel-wrapped bert_labeler ("module.bert.*",
    "module.linear_heads.N.*"). Each head predicts `classes[N]` whatever the report (zero weights, one-hot bias)."""
    torch.manual_seed(0)
    weights = {f"module.bert.{key}": value for key, value in BertModel(config).state_dict().items()}
    if position_ids:  # what transformers 3.x-4.30 wrote as a buffer
        weights["module.bert.embeddings.position_ids"] = torch.arange(config.max_position_embeddings)[None]
    for head, chosen in enumerate(classes):
        width = 2 if head == 13 else 4
        weights[f"module.linear_heads.{head}.weight"] = torch.zeros(width, config.hidden_size)
        weights[f"module.linear_heads.{head}.bias"] = torch.nn.functional.one_hot(torch.tensor(chosen), width).float() * 5
    torch.save({"epoch": 3, "model_state_dict": weights, "optimizer_state_dict": {"state": {}, "param_groups": []}}, path)
    return weights


def test_the_public_format_loads_and_heads_map_to_observations(tmp_path, config, tokenizer_dir) -> None:
    weights = write_public_checkpoint(tmp_path / "chexbert.pth", config, CLASSES, position_ids=True)
    chexbert = load_chexbert(tmp_path / "chexbert.pth", tokenizer=tokenizer_dir, config=config)
    loaded = chexbert.model.state_dict()
    assert torch.equal(loaded["bert.embeddings.word_embeddings.weight"], weights["module.bert.embeddings.word_embeddings.weight"])
    assert torch.equal(loaded["linear_heads.13.bias"], weights["module.linear_heads.13.bias"])
    assert not chexbert.model.training
    labels = chexbert.label_reports(["No pleural effusion.", "", "Small effusion. " * 400])
    expected = {name: ((M, P) if name == "No Finding" else (M, P, N, U))[chosen]
                for name, chosen in zip(CHEXBERT_CONDITIONS, CLASSES)}
    assert labels == [expected] * 3
    assert list(labels[0]) == list(OBSERVATIONS)  # CheXpert's order, not CheXbert's
    # CheXbert's order differs from CheXpert's: Lung Opacity is its third head, Lung Lesion its fourth
    assert labels[0]["Lung Opacity"] is N and labels[0]["Lung Lesion"] is M and labels[0]["No Finding"] is M
    # a report longer than 512 pieces is cut to [CLS] + 510 + [SEP], as CheXbert's tokenize does
    ids = chexbert.tokenizer(["Small effusion. " * 400], truncation=True, max_length=512)["input_ids"][0]
    assert len(ids) == 512 and ids[0] == 2 and ids[-1] == 3


def test_a_folder_a_bare_state_dict_and_what_cannot_be_loaded(tmp_path, config, tokenizer_dir) -> None:
    write_public_checkpoint(tmp_path / "chexbert.pth", config, CLASSES)
    assert load_chexbert(tmp_path, tokenizer=tokenizer_dir, config=config).source == str(tmp_path / "chexbert.pth")
    bare = tmp_path / "bare.pth"
    torch.save(torch.load(tmp_path / "chexbert.pth")["model_state_dict"], bare)
    assert set(read_chexbert_state_dict(bare)) == set(read_chexbert_state_dict(tmp_path / "chexbert.pth"))
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    with pytest.raises(CheXbertUnavailable, match="no chexbert.pth in this folder"):
        load_chexbert(empty)
    (tmp_path / "damaged.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheXbertUnavailable, match="not a readable CheXbert checkpoint"):
        load_chexbert(tmp_path / "damaged.pth", tokenizer=tokenizer_dir, config=config)
    wrong = BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=24)
    with pytest.raises(CheXbertUnavailable, match="does not fit the CheXbert architecture.*missing.*encoder.layer.1"):
        load_chexbert(tmp_path / "chexbert.pth", tokenizer=tokenizer_dir, config=wrong)
    with pytest.raises(CheXbertUnavailable, match="no such file or folder"):
        load_chexbert(tmp_path / "absent.pth")
    with pytest.raises(CheXbertUnavailable, match="tokenizer"):
        load_chexbert(tmp_path / "chexbert.pth", tokenizer=tmp_path / "no_tokenizer", config=config)


def test_without_weights_chexbert_is_unavailable_with_the_reason_never_zero(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert chexbert_metrics(["a"], ["b"], None) == (None, None)
    scores, reason = chexbert_metrics(["No effusion."], ["Small effusion."], CHEXBERT_HUB_ID)
    assert scores is None and "StanfordAIMI/RRG_scorers/chexbert.pth could not be had" in reason
    predictions = [Prediction("1", "No effusion.", "Small effusion.", 2)]
    result = score_predictions(predictions, ScoringOptions(meteor=False, chexbert=CHEXBERT_HUB_ID))
    assert result["chexbert"] is None and "could not be had" in result["unavailable"]["chexbert"]
    assert not any(key.startswith("chexbert_") for key in result["corpus"])
    plain = score_predictions(predictions, ScoringOptions(meteor=False))
    assert plain["chexbert"] is None and "chexbert" not in plain["unavailable"]


class FixedLabels:
    """A labeler that returns given labels per report text (the scores are then checked by hand)."""

    def __init__(self, table: dict[str, dict[str, Label]]) -> None:
        self.table = table

    def label_reports(self, reports):
        return [{name: self.table[report].get(name, M) for name in OBSERVATIONS} for report in reports]


def test_scores_for_14_and_5_with_the_uncertain_convention_named() -> None:
    labeler = FixedLabels({
        "r1": {"Cardiomegaly": P, "Edema": U, "Support Devices": P},
        "r2": {"No Finding": P},
        "g1": {"Cardiomegaly": P, "Edema": P, "Fracture": P},
        "g2": {"No Finding": P, "Pleural Effusion": U},
    })
    strict = chexbert_efficacy(["r1", "r2"], ["g1", "g2"], labeler)
    assert strict["uncertain"] == "uncertain counted as negative (CheXbert: positive class vs rest)"
    # 14: true {Cardiomegaly, Support Devices}, {No Finding}; predicted {Cardiomegaly, Edema, Fracture}, {No Finding}
    assert strict["all_14"]["micro"] == pytest.approx({"precision": 2 / 4, "recall": 2 / 3, "f1": 4 / 7})
    assert strict["all_14"]["example"] == pytest.approx({"precision": (1 / 3 + 1) / 2, "recall": (1 / 2 + 1) / 2,
                                                         "f1": (2 / 5 + 1) / 2})
    assert strict["all_14"]["macro"]["f1"] == pytest.approx(2 / 14)  # Cardiomegaly and No Finding score 1
    # 5: true {Cardiomegaly}, {}; predicted {Cardiomegaly, Edema}, {}
    assert strict["chexbert_5"]["micro"] == pytest.approx({"precision": 1 / 2, "recall": 1.0, "f1": 2 / 3})
    assert strict["chexbert_5"]["macro"]["f1"] == pytest.approx(1 / 5)
    assert list(strict["chexbert_5"]["per_observation"]) == list(CHEXBERT_5)
    lenient = chexbert_efficacy(["r1", "r2"], ["g1", "g2"], labeler, uncertain_as_positive=True)
    assert lenient["uncertain"] == "uncertain counted as positive (F1-CheXbert convention)"
    # Edema now true and predicted in study 1; Pleural Effusion predicted in study 2
    assert lenient["chexbert_5"]["micro"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 4 / 5})
    assert lenient["reference_labels"][0]["Edema"] == "uncertain"


def test_the_scorer_reports_chexbert_next_to_the_rule_based_ce(tmp_path, config, tokenizer_dir, monkeypatch) -> None:
    write_public_checkpoint(tmp_path / "chexbert.pth", config, CLASSES)
    chexbert = load_chexbert(tmp_path / "chexbert.pth", tokenizer=tokenizer_dir, config=config)
    import xray_report.evaluation.chexbert as module

    monkeypatch.setattr(module, "_cached", lambda source: chexbert if source == str(tmp_path) else module.load_chexbert(source))
    predictions = [Prediction("1", "No pleural effusion.", "Small pleural effusion.", 2),
                   Prediction("2", "Heart is normal.", "Heart is normal.", 3)]
    result = score_predictions(predictions, ScoringOptions(meteor=False, chexbert=str(tmp_path)))
    assert "chexbert" not in result["unavailable"]
    block = result["chexbert"]
    assert block["labeler"] == str(tmp_path / "chexbert.pth") and block["uncertain"].startswith("uncertain counted as negative")
    # every report gets the same labels here, so positives agree everywhere: F1 1 on the observations that are positive
    assert result["corpus"]["chexbert_14_micro_f1"] == 1.0 and result["corpus"]["chexbert_5_micro_f1"] == 1.0
    assert set(key for key in result["corpus"] if key.startswith("chexbert_")) == {
        f"chexbert_{n}_{a}_{k}" for n in ("14", "5") for a in ("micro", "macro", "example") for k in ("precision", "recall", "f1")}
    assert result["corpus"]["ce_micro_f1"] is not None  # the rule-based CE is still there
    json.dumps(result)


def test_decode_classes_checks_its_input() -> None:
    with pytest.raises(ValueError, match="expected 14 classes"):
        decode_classes([0] * 13)
    assert decode_classes([0] * 13 + [1])["No Finding"] is P
