"""Small proof of learning: trained on synthetic studies, the tiny model states the image-determined findings.

The full benchmark (bench/bench_proof_of_learning.py, 1200 studies) also scores the opacity's zone and the
heatmaps' pointing game next to the shuffled-image control; this CI version trains on fewer studies for fewer steps
and asks for the findings only.
"""

from __future__ import annotations

import pytest

from training_fixtures import run, tiny_argv, write_studies

BAR = 0.85
"""Mean accuracy over the three findings (an image-blind report: about 0.5; 0.989 measured on 2 cores)."""


def test_synthetic_reports_are_recovered_by_the_labeler():
    """The benchmark's premise: the labeler reads each reference report's findings back exactly."""
    import numpy as np

    from synthetic import finding_accuracy, report_for, sample_findings

    rng = np.random.default_rng(0)
    truth = [sample_findings(rng) for _ in range(200)]
    references = [" ".join(report_for(study)) for study in truth]
    scores = finding_accuracy(truth, references)
    assert scores["finding_accuracy"] == 1.0 and scores["zone_accuracy"] == 1.0
    flipped = finding_accuracy(truth, [" ".join(report_for(type(s)(not s.cardiomegaly, s.effusion, s.opacity_zone)))
                                       for s in truth])
    assert flipped["accuracy_cardiomegaly"] == 0.0


def test_builder_reads_the_synthetic_kaggle_layout(tmp_path):
    from dataset_builder import load_iu_xray
    from synthetic import read_truth

    data_dir = write_studies(tmp_path / "studies", num_studies=20)
    dataset = load_iu_xray(data_dir, cache_dir=tmp_path / "cache", image_short_side=80)
    assert sum(len(split) for split in dataset.values()) == 20
    row = dataset["train"][0]
    assert row["lateral"] is not None and row["frontal"].size[0] <= 80 or row["frontal"].size[1] <= 80
    truth = read_truth(data_dir)[row["study_id"]]
    assert ("enlarged" in row["report"]) == truth.cardiomegaly


@pytest.mark.slow
def test_tiny_model_learns_findings_from_images(tmp_path):
    """Every finding is read from the images: each one's accuracy clears the best image-blind guess (the test split's
    majority value) by a wide margin. Measured: 0.989 mean (1.0 / 0.967 / 1.0) on 300 studies, 250 steps, 2 cores."""
    import json

    from synthetic import FINDING_OBSERVATIONS, best_constant_report, finding_accuracy, read_truth

    data_dir = write_studies(tmp_path / "studies", num_studies=300, seed=1)
    result = run(tiny_argv(data_dir, tmp_path / "model", "--max_steps", "250", "--per_device_train_batch_size", "16",
                           "--warmup_steps", "20", "--logging_steps", "50", "--do_predict", "true",
                           "--max_new_tokens", "60", "--per_device_eval_batch_size", "60"))
    truth = read_truth(data_dir)
    rows = [json.loads(line) for line in result.predictions_path.read_text().splitlines()]
    test_truth = [truth[row["study_id"]] for row in rows]
    scores = finding_accuracy(test_truth, [row["generated"] for row in rows])
    train = result.dataset["train"]
    control_text, _ = best_constant_report([truth[i] for i in train["study_id"]], list(train["report"]))
    control = finding_accuracy(test_truth, [control_text] * len(rows))
    assert scores["finding_accuracy"] >= max(BAR, control["finding_accuracy"] + 0.3), (scores, control, rows[:3])
    for name in FINDING_OBSERVATIONS:
        key = f"accuracy_{name.lower().replace(' ', '_')}"
        present = sum(study.observations()[name] for study in test_truth) / len(test_truth)
        majority = max(present, 1 - present)  # no image-blind guess of this finding does better on this split
        assert scores[key] >= majority + 0.2, (key, scores[key], majority)
