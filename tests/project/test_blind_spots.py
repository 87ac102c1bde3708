"""Bugs a mutation audit planted and the suite let through, each pinned by a test that fails when it is planted:

* target truncation keeping the end of a long report instead of its start (processing, the collator);
* the trainer's ``ce_micro_*`` metrics computed from the macro scores (training's ``make_compute_metrics``);
* ROUGE-L with hypothesis and reference swapped (``compute_nlg_metrics``);
* the temporal branch used for a study without a prior (``BioViLTModel`` with ``use_previous_image``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import EvalPrediction

from conftest import synthetic_radiograph, tiny_image_processor
from modeling import BioViLTConfig, BioViLTModel
from processing import LABEL_IGNORE_INDEX, XrayReportProcessor
from xray_report.evaluation import ScoringOptions, compute_clinical_efficacy, compute_nlg_metrics
from xray_report.training.collator import XrayReportCollator
from xray_report.training.metrics import make_compute_metrics

# distinct words, so that any window of the token sequence differs from any other
LONG_REPORT = " ".join(
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec "
    "romeo sierra tango uniform victor whiskey xray yankee zulu".split() * 3
)


def _kept(row: np.ndarray) -> list[int]:
    return [int(token) for token in row if token != LABEL_IGNORE_INDEX]


def test_a_long_target_keeps_its_start_and_ends_with_eos(report_tokenizer) -> None:
    processor = XrayReportProcessor(tiny_image_processor(), report_tokenizer, max_target_length=12)
    ids = report_tokenizer(LONG_REPORT, add_special_tokens=False)["input_ids"]
    assert len(ids) > 40 and ids[:11] != ids[-11:]
    expected = ids[:11] + [report_tokenizer.eos_token_id]
    labels = processor.make_labels([LONG_REPORT, "alpha bravo"])
    assert _kept(labels[0]) == expected
    assert _kept(labels[1]) == report_tokenizer("alpha bravo", add_special_tokens=False)["input_ids"] + [
        report_tokenizer.eos_token_id]
    # the collator, which builds the training batches, gives the model the same targets and their shifted inputs
    image = Image.fromarray(synthetic_radiograph())
    batch = XrayReportCollator(processor, use_previous_image=False)(
        [{"frontal": image, "lateral": None, "report": LONG_REPORT}])
    assert _kept(batch["labels"][0].numpy()) == expected
    assert batch["decoder_input_ids"][0].tolist() == [report_tokenizer.bos_token_id] + expected[:-1]


REFERENCES = [
    "The heart is enlarged. Small left pleural effusion.",
    "Small left pleural effusion.",
    "No acute cardiopulmonary abnormality.",
    "Right lower lobe pneumonia.",
]
GENERATED = [
    "The heart is enlarged.",
    "Small left pleural effusion.",
    "Small left pleural effusion.",
    "No acute cardiopulmonary abnormality.",
]


def test_the_trainers_micro_and_macro_ce_are_the_ce_modules(report_tokenizer) -> None:
    processor = XrayReportProcessor(tiny_image_processor(), report_tokenizer, max_target_length=64)
    options = ScoringOptions(meteor=False)
    compute_metrics = make_compute_metrics(processor, options)
    prediction = EvalPrediction(predictions=processor.make_labels(GENERATED), label_ids=processor.make_labels(REFERENCES))
    metrics = compute_metrics(prediction)
    direct = compute_clinical_efficacy(REFERENCES, GENERATED).scores
    assert direct.micro["f1"] == pytest.approx(4 / 9)  # TP 2 (Cardiomegaly, effusion), FP 2, FN 3
    assert abs(direct.micro["f1"] - direct.macro["f1"]) > 0.1 and abs(direct.micro["precision"] - direct.macro["precision"]) > 0.1
    for key in ("precision", "recall", "f1"):
        assert metrics[f"ce_micro_{key}"] == pytest.approx(direct.micro[key]), key
        assert metrics[f"ce_macro_{key}"] == pytest.approx(direct.macro[key]), key
        assert metrics[f"ce_example_{key}"] == pytest.approx(direct.example[key]), key


def _rouge_l(candidate: list[str], reference: list[str], beta: float = 1.2) -> float:
    """ROUGE-L F as pycocoevalcap defines it (longest common subsequence, beta 1.2), written out."""
    table = [[0] * (len(reference) + 1) for _ in range(len(candidate) + 1)]
    for i, word in enumerate(candidate):
        for j, other in enumerate(reference):
            table[i + 1][j + 1] = table[i][j] + 1 if word == other else max(table[i][j + 1], table[i + 1][j])
    lcs = table[-1][-1]
    precision, recall = lcs / len(candidate), lcs / len(reference)
    return (1 + beta**2) * precision * recall / (recall + beta**2 * precision)


def test_rouge_l_scores_the_hypothesis_against_the_reference() -> None:
    reference = "the heart is normal in size and the lungs are clear"
    hypothesis = "the lungs are clear"
    expected = _rouge_l(hypothesis.split(), reference.split())  # precision 1, recall 4 / 11
    swapped = _rouge_l(reference.split(), hypothesis.split())
    assert expected == pytest.approx(0.4919, abs=1e-4) and swapped == pytest.approx(0.5824, abs=1e-4)
    options = ScoringOptions(meteor=False)
    result = compute_nlg_metrics([reference, "small left pleural effusion"], [hypothesis, "small effusion"], options,
                                 normalize=False)
    second = _rouge_l("small effusion".split(), "small left pleural effusion".split())
    assert result.per_report[0]["rouge_l"] == pytest.approx(expected)
    assert result.per_report[1]["rouge_l"] == pytest.approx(second)
    assert result.corpus["rouge_l"] == pytest.approx((expected + second) / 2)


def test_a_study_without_a_prior_is_encoded_as_by_the_model_without_the_temporal_branch() -> None:
    """ResNet-18 trunk at 448 (the temporal pooler's fixed grid), no gradients: about a second on 2 CPU cores."""
    torch.manual_seed(0)
    temporal = BioViLTModel(BioViLTConfig(image_encoder_type="resnet18_multi_image", num_views=1)).eval()
    static = BioViLTModel(BioViLTConfig(image_encoder_type="resnet18_multi_image", num_views=1,
                                        use_previous_image=False)).eval()
    missing, unexpected = static.load_state_dict(temporal.state_dict(), strict=False)
    assert missing == [] and unexpected and all(key.startswith("image_encoder.vit_pooler.") for key in unexpected)
    current = torch.rand(2, 1, 3, 448, 448)
    previous = torch.rand(2, 3, 448, 448)
    previous[1] = 0  # what the collator puts where a study has no prior
    with torch.no_grad():
        mixed = temporal(current, previous_pixel_values=previous, previous_mask=torch.tensor([True, False]))
        alone = static(current[1:]).last_hidden_state[0]
        first_alone = static(current[:1]).last_hidden_state[0]
    torch.testing.assert_close(mixed.last_hidden_state[1], alone)
    assert not torch.allclose(mixed.last_hidden_state[0], first_alone)  # the prior does reach the study that has one
