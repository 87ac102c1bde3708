"""The semi-real IU X-ray layout: findings read from real-style reports, phantoms that show them, the builder on it,
and the semi-real benchmark's scoring (research/bench/bench_semireal.py) on a few dozen studies."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import FakeStudy, write_kaggle, write_r2gen

from research.bench import bench_semireal, bench_semireal_mbr, bench_semireal_rerank
from research.semireal import (
    SEMIREAL_LABELS_CSV,
    EXTRA_FINDING_RULES,
    EXTRA_FINDINGS,
    RENDERED_OBSERVATIONS,
    LungFinding,
    RenderedFindings,
    best_report_per_content,
    chance_micro_f1,
    choose_kept_sentences,
    constant_with_finding_sentences,
    extra_finding_scores,
    findings_from_report,
    image_content_ceiling,
    read_semireal_truth,
    render_semireal_frontal,
    render_semireal_lateral,
    reports_per_content,
    semireal_scores,
    longest_repeated_ngram,
    write_semireal_studies,
)
from xray_report.evaluation import Label, label_report
from xray_report.evaluation.chexpert_labeler import label_with_rules
from xray_report.evaluation.prior_comparison import split_sentences

REPORTS = [
    ("The heart is normal in size. The lungs are clear. No pleural effusion or pneumothorax.", "No acute disease."),
    ("The heart is enlarged. Small left pleural effusion.", "Cardiomegaly with left effusion."),
    ("Right upper lobe opacity. No pneumothorax.", "Right upper lobe pneumonia versus atelectasis."),
    ("Bibasilar atelectasis. Pacemaker in place.", "Bibasilar atelectasis."),
    ("Large right pneumothorax.", "Right pneumothorax."),
    ("Nodule in the left upper lobe.", "Left upper lobe nodule."),
    ("Possible small effusion. Heart size normal.", "No definite acute process."),
    ("Dense consolidation in the left lower lobe.", "Left lower lobe consolidation."),
    ("Calcified granuloma in the right upper lobe. Degenerative changes of the thoracic spine. Lungs are hyperinflated.",
     "No acute disease. No hiatal hernia."),
]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_findings_read_from_the_report_with_side_and_zone():
    findings = findings_from_report(" ".join(REPORTS[1]), _rng())
    assert findings.observations == ("Cardiomegaly", "Pleural Effusion")
    assert findings.effusion_sides == ("left",)
    findings = findings_from_report(" ".join(REPORTS[3]), _rng())
    assert set(findings.observations) == {"Atelectasis", "Support Devices"}
    assert set(findings.lung_findings) == {LungFinding("atelectasis", "right", "lower"),
                                           LungFinding("atelectasis", "left", "lower")}
    findings = findings_from_report(" ".join(REPORTS[4]), _rng())
    assert findings.observations == ("Pneumothorax",) and findings.pneumothorax_sides == ("right",)
    assert findings_from_report(" ".join(REPORTS[5]), _rng()).lung_findings == (LungFinding("nodule", "left", "upper"),)


def test_negated_and_uncertain_findings_are_not_drawn():
    assert findings_from_report(" ".join(REPORTS[0]), _rng()) == RenderedFindings()
    # "possible" makes the effusion uncertain; "versus" makes the pneumonia / atelectasis uncertain
    assert findings_from_report(" ".join(REPORTS[6]), _rng()).observations == ()
    stated = findings_from_report(" ".join(REPORTS[2]), _rng())
    assert stated.observations == ("Lung Opacity",)
    assert stated.lung_findings == (LungFinding("opacity", "right", "upper"),)


def test_extra_findings_read_from_the_report_with_the_granuloma_zone():
    findings = findings_from_report(" ".join(REPORTS[8]), _rng())
    assert findings.observations == ()
    assert findings.extra_findings == ("Hyperinflation", "Granuloma", "Spine Degeneration")  # hernia is negated
    assert findings.lung_findings == (LungFinding("granuloma", "right", "upper"),)
    assert findings.shows_a_finding and not RenderedFindings().shows_a_finding
    stated = findings_from_report("Sternotomy wires. Tortuous aorta. Mild scoliosis. Low lung volumes. Hiatal hernia.",
                                  _rng())
    assert stated.extra_findings == ("Low Lung Volumes", "Scoliosis", "Tortuous or Calcified Aorta", "Sternotomy",
                                     "Hiatal Hernia")
    assert findings_from_report("Possible emphysema. Degenerative changes of the shoulders.", _rng()).extra_findings == ()


def test_an_unstated_side_is_drawn_from_the_seed():
    sides = {findings_from_report("Small pleural effusion.", _rng(seed)).effusion_sides for seed in range(12)}
    assert sides == {("right",), ("left",)}
    assert findings_from_report("Small pleural effusion.", _rng(3)) == findings_from_report("Small pleural effusion.", _rng(3))


def _difference(findings: RenderedFindings, height: int = 128, width: int = 120) -> np.ndarray:
    """Pixel change a finding makes, same seed (same anatomy and noise)."""
    plain = render_semireal_frontal(RenderedFindings(), _rng(5), height, width).astype(float)
    shown = render_semireal_frontal(findings, _rng(5), height, width).astype(float)
    return shown - plain


def test_each_finding_changes_the_frontal_view_where_it_lies():
    # the patient's left is the image's right; upper zone in the top half
    effusion = _difference(RenderedFindings(("Pleural Effusion",), effusion_sides=("left",)))
    rows, cols = np.nonzero(effusion)
    assert len(rows) > 50 and cols.min() >= 60 and rows.min() >= 64 and effusion.sum() > 0
    pneumothorax = _difference(RenderedFindings(("Pneumothorax",), pneumothorax_sides=("right",)))
    assert pneumothorax[:, :60].sum() < 0 and not pneumothorax[:, 60:].any()
    nodule = _difference(RenderedFindings(("Lung Lesion",), lung_findings=(LungFinding("nodule", "left", "upper"),)))
    rows, cols = np.nonzero(nodule)
    assert rows.max() < 64 and cols.min() >= 60
    device = _difference(RenderedFindings(("Support Devices",)))
    assert device.max() > 100
    heart = _difference(RenderedFindings(("Cardiomegaly",)))
    assert heart.sum() > 0


def test_each_extra_finding_changes_the_frontal_view_where_it_lies():
    height, width = 128, 120
    changes = {name: _difference(RenderedFindings(extra_findings=(name,)), height, width) for name in EXTRA_FINDINGS
               if name != "Granuloma"}
    assert all(change.any() for change in changes.values())
    # lung shape: taller and darker lungs, or shorter and denser ones (lung bases around rows 0.72-0.85 of the height)
    bases = slice(int(0.72 * height), int(0.85 * height))
    assert changes["Hyperinflation"][bases, :40].sum() < 0 < changes["Low Lung Volumes"][bases, :40].sum()
    # bright marks on the midline column (spurs, wires), on the aortic knob (image right of the midline, upper half)
    for name in ("Spine Degeneration", "Sternotomy"):
        rows, cols = np.nonzero(changes[name] > 40)
        assert len(rows) > 10 and abs(cols.mean() - width / 2) < 6, name
    rows, cols = np.nonzero(changes["Tortuous or Calcified Aorta"] > 40)
    assert cols.min() > width / 2 and rows.max() < height / 2
    # the curved spine moves to the image's left (the patient's right); the hernia's gas is dark behind the heart
    assert changes["Scoliosis"][:, : width // 2].sum() > 0 > changes["Scoliosis"][:, width // 2:].sum()
    rows, cols = np.nonzero(changes["Hiatal Hernia"] < -60)
    assert len(rows) > 10 and rows.min() > height / 2
    granuloma = _difference(RenderedFindings(lung_findings=(LungFinding("granuloma", "left", "lower"),),
                                             extra_findings=("Granuloma",)), height, width)
    rows, cols = np.nonzero(granuloma > 40)
    assert 0 < len(rows) < 30 and rows.min() > height / 2 and cols.min() > width / 2


def test_lung_finding_kinds_differ_in_shape():
    areas = {}
    for kind in ("opacity", "consolidation", "atelectasis", "nodule", "granuloma"):
        change = _difference(RenderedFindings(lung_findings=(LungFinding(kind, "right", "middle"),)))
        rows, cols = np.nonzero(change > 20)
        areas[kind] = (len(rows), rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
    assert areas["granuloma"][0] < areas["nodule"][0] < areas["atelectasis"][0] < areas["consolidation"][0]
    height, width = areas["atelectasis"][1:]
    assert width > 3 * height  # a band, not a blob


def test_the_lateral_view_shows_an_effusion():
    plain = render_semireal_lateral(RenderedFindings(), _rng(1), 96, 96).astype(float)
    fluid = render_semireal_lateral(RenderedFindings(("Pleural Effusion",), effusion_sides=("right",)), _rng(1), 96, 96)
    assert (fluid.astype(float) - plain).sum() > 0


@pytest.fixture
def kaggle_dir(tmp_path):
    studies = []
    for uid in range(1, 25):
        findings, impression = REPORTS[uid % len(REPORTS)]
        split = "train" if uid <= 16 else "val" if uid <= 20 else "test"
        studies.append(FakeStudy(uid=uid, findings=findings, impression=impression, split=split))
    write_kaggle(tmp_path / "kaggle", studies)
    write_r2gen(tmp_path / "r2gen", studies)
    return tmp_path


def test_layout_builds_with_the_real_builder_and_its_truth_equals_the_reference_labels(kaggle_dir):
    from dataset_builder import load_iu_xray

    root = kaggle_dir / "semireal"
    findings = write_semireal_studies(kaggle_dir / "kaggle", root, seed=0, image_size=64)
    assert len(findings) == 24 and read_semireal_truth(root) == findings
    dataset = load_iu_xray(root, split_file=kaggle_dir / "r2gen" / "annotation.json", image_short_side=48,
                           cache_dir=kaggle_dir / "cache")
    assert {split: len(dataset[split]) for split in dataset} == {"train": 16, "validation": 4, "test": 4}
    for split in dataset:
        for study_id, report, frontal, lateral in zip(*(dataset[split][c] for c in ("study_id", "report", "frontal", "lateral"))):
            labels = label_report(report)
            assert findings[study_id].observations == tuple(
                name for name in RENDERED_OBSERVATIONS if labels[name] == Label.POSITIVE)
            extra = label_with_rules(report, EXTRA_FINDING_RULES)
            assert findings[study_id].extra_findings == tuple(
                name for name in EXTRA_FINDINGS if extra[name] == Label.POSITIVE)
            assert frontal is not None and lateral is not None


def test_the_same_seed_writes_the_same_bytes(kaggle_dir):
    def digest(root: Path) -> str:
        files = sorted(path for path in root.rglob("*") if path.is_file())
        return hashlib.sha256(b"".join(path.read_bytes() for path in files)).hexdigest()

    first = write_semireal_studies(kaggle_dir / "kaggle", kaggle_dir / "a", seed=4, image_size=48)
    second = write_semireal_studies(kaggle_dir / "kaggle", kaggle_dir / "b", seed=4, image_size=48)
    assert first == second and digest(kaggle_dir / "a") == digest(kaggle_dir / "b")
    write_semireal_studies(kaggle_dir / "kaggle", kaggle_dir / "c", seed=5, image_size=48)
    assert digest(kaggle_dir / "c") != digest(kaggle_dir / "a")


def test_a_malformed_labels_file_names_the_file_and_row(tmp_path):
    (tmp_path / "semireal_labels.csv").write_text(
        "uid,observations,effusion_sides,pneumothorax_sides,lung_findings,extra_findings\n1,Cardiomegaly,,,opacity:right,\n")
    with pytest.raises(ValueError, match=r"semireal_labels.csv row 1.*kind:side:level"):
        read_semireal_truth(tmp_path)
    (tmp_path / "semireal_labels.csv").write_text(
        "uid,observations,effusion_sides,pneumothorax_sides,lung_findings,extra_findings\n1,Heart Attack,,,,\n")
    with pytest.raises(ValueError, match=r"unknown findings \['Heart Attack'\]"):
        read_semireal_truth(tmp_path)
    (tmp_path / "semireal_labels.csv").write_text(
        "uid,observations,effusion_sides,pneumothorax_sides,lung_findings,extra_findings\n1,,,,,Bad Knee\n")
    with pytest.raises(ValueError, match=r"row 1 .*unknown findings \['Bad Knee'\]"):
        read_semireal_truth(tmp_path)


def test_semireal_scores_by_hand():
    references = ["Large right pleural effusion. Heart is enlarged.", "The lungs are clear.", "Right pneumothorax."]
    generated = ["Right pleural effusion.", "The lungs are clear. The lungs are clear.", "The lungs are clear."]
    scores = semireal_scores(references, generated)
    # positives: reference {effusion, cardiomegaly, pneumothorax}; generated {effusion}: tp 1, fp 0, fn 2
    assert scores["rendered_ce_micro_precision"] == 1.0
    assert scores["rendered_ce_micro_recall"] == pytest.approx(1 / 3)
    assert scores["rendered_ce_micro_f1"] == pytest.approx(0.5)
    assert scores["distinct_reports"] == 3 and scores["distinct_fraction"] == 1.0
    assert scores["longest_repeated_ngram"] == 5 and scores["reports_repeating_4_gram"] == 1
    assert scores["reference_longest_repeated_ngram"] == 1  # "." twice
    assert "copied_training_reports" not in scores
    train = ["Right pleural effusion.", "the lungs are clear..", "Left pneumothorax."]
    copied = semireal_scores(references, generated, train_reports=train)
    # "Right pleural effusion." and "The lungs are clear." (case and repeated dots aside) are training reports
    assert copied["copied_training_reports"] == 2 and copied["copied_training_fraction"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="as many"):
        semireal_scores(references, generated[:2])


def test_extra_finding_scores_by_hand():
    references = ["Calcified granuloma. Degenerative changes of the spine.", "Hyperinflated lungs.", "Clear lungs."]
    generated = ["Calcified granuloma.", "No hyperinflation.", "Sternotomy wires."]
    scores = extra_finding_scores(references, generated)
    # truth {granuloma, spine, hyperinflation}; stated {granuloma, sternotomy}: tp 1, fp 1, fn 2
    assert scores.micro["precision"] == 0.5 and scores.micro["recall"] == pytest.approx(1 / 3)
    assert scores.per_observation["Sternotomy"]["fp"] == 1 and scores.per_observation["Hyperinflation"]["fn"] == 1
    assert semireal_scores(references, generated)["extra_findings_micro_f1"] == pytest.approx(0.4)


def test_chance_micro_f1_by_hand():
    observations = ("Cardiomegaly",)
    # 4 studies, 2 positive, a perfect reader: given to random studies its 2 positives hit 0, 1 or 2 of the true
    # ones with probabilities 1/6, 4/6, 1/6, so its micro F1 (= hits / 2) is 0.5 on average and 1 one time in 6
    truth = np.array([[1], [1], [0], [0]])
    perfect = chance_micro_f1(truth, truth.copy(), observations, rounds=3000)
    assert perfect["mean"] == pytest.approx(0.5, abs=0.02) and perfect["p95"] == 1.0 and perfect["rounds"] == 3000
    # the same report for every study: where it goes changes nothing
    constant = chance_micro_f1(truth, np.ones((4, 1), dtype=int), observations, rounds=50)
    assert constant["mean"] == pytest.approx(2 / 3) and constant["p95"] == pytest.approx(2 / 3)
    assert chance_micro_f1(truth, truth, observations, rounds=50, seed=3) == \
        chance_micro_f1(truth, truth, observations, rounds=50, seed=3)
    with pytest.raises(ValueError, match="rounds"):
        chance_micro_f1(truth, truth, observations, rounds=0)


def test_semireal_scores_put_a_reader_above_chance_and_an_image_blind_model_within_it():
    references = ["Right pleural effusion."] * 10 + ["The lungs are clear."] * 10
    blind = list(np.random.default_rng(0).permutation(references))  # the same findings, stated at random
    reader, shuffled = semireal_scores(references, references), semireal_scores(references, blind)
    assert reader["rendered_ce_micro_f1"] == 1.0 > reader["rendered_ce_chance_micro_f1_p95"]
    assert reader["rendered_ce_chance_micro_f1"] == pytest.approx(0.5, abs=0.05) and reader["chance_rounds"] > 0
    assert shuffled["rendered_ce_micro_f1"] <= shuffled["rendered_ce_chance_micro_f1_p95"]
    granulomas = ["Calcified granuloma."] * 5 + ["Clear lungs."] * 15
    assert semireal_scores(granulomas, granulomas)["extra_findings_chance_micro_f1"] == pytest.approx(0.25, abs=0.05)


def test_constant_with_finding_sentences_states_each_shown_finding_and_drops_the_denials():
    train = ["Mild cardiomegaly. Lungs clear.", "Mild cardiomegaly. No effusion.", "The heart is enlarged.",
             "Small left pleural effusion and cardiomegaly.", "Small right pleural effusion.", "Calcified granuloma."]
    constant = "The heart is normal in size. No pleural effusion. No pneumothorax."
    shown = [RenderedFindings(),
             RenderedFindings(observations=("Cardiomegaly",)),
             RenderedFindings(observations=("Cardiomegaly", "Pleural Effusion"), effusion_sides=("left",),
                              extra_findings=("Granuloma",)),
             RenderedFindings(observations=("Pneumothorax",), pneumothorax_sides=("left",))]
    reports = constant_with_finding_sentences(train, constant, shown)
    assert reports[0] == constant
    # the commonest sentence stating cardiomegaly alone; the constant's denial of an enlarged heart taken out
    assert reports[1] == "Mild cardiomegaly. No pleural effusion. No pneumothorax."
    # a sentence stating two findings is nobody's pick; one per finding, in the findings' order
    assert reports[2] == "Mild cardiomegaly. Small right pleural effusion. Calcified granuloma. No pneumothorax."
    # no training sentence states a pneumothorax: only the denial goes
    assert reports[3] == "The heart is normal in size. No pleural effusion."


def test_the_kept_constant_sentences_apply_to_studies_that_show_a_finding_and_are_chosen_by_bleu():
    train = ["Mild cardiomegaly.", "Mild cardiomegaly.", "Small right pleural effusion."]
    constant = "PA and lateral views were obtained. The heart is normal in size. The lungs are clear."
    normal, enlarged = RenderedFindings(), RenderedFindings(observations=("Cardiomegaly",))
    reports = constant_with_finding_sentences(train, constant, [normal, enlarged], kept_with_finding=(2,))
    assert reports == [constant, "Mild cardiomegaly. The lungs are clear."]
    # validation references that never name the views: dropping that sentence where a finding is shown scores best
    references = ["The heart is normal in size. The lungs are clear. No effusion.",
                  "Mild cardiomegaly. The lungs are clear.", "Mild cardiomegaly. The lungs are clear bilaterally."]
    assert choose_kept_sentences(train, constant, references, [normal, enlarged, enlarged]) == (2,)
    views = ["Mild cardiomegaly. PA and lateral views were obtained. The lungs are clear."] * 2
    assert choose_kept_sentences(train, constant, references[:1] + views, [normal, enlarged, enlarged]) == (0, 2)
    with pytest.raises(ValueError, match="3 references but 2 studies"):
        choose_kept_sentences(train, constant, references, [normal, enlarged])


def test_best_report_per_content_picks_within_each_content_and_falls_back_for_unseen_content():
    normal = RenderedFindings()
    enlarged = RenderedFindings(observations=("Cardiomegaly",))
    effusion = RenderedFindings(observations=("Pleural Effusion",), effusion_sides=("left",))
    effusion_right = RenderedFindings(observations=("Pleural Effusion",), effusion_sides=("right",))
    train_shown = [normal, normal, normal, enlarged, enlarged, effusion_right]
    train_reports = ["The heart is normal. The lungs are clear. No effusion.",
                     "The heart is normal. The lungs are clear. No effusion.",
                     "Normal chest.",
                     "The heart is enlarged. The lungs are clear.",
                     "Cardiomegaly. The lungs are clear.",
                     "Small right pleural effusion."]
    reports, picks = best_report_per_content(
        train_shown, train_reports, [enlarged, normal, effusion, enlarged, RenderedFindings(("Pneumothorax",))],
        fallback="FALLBACK")
    # within each content, the report closest to the others of that content (never one of another content)
    assert reports[1] == "The heart is normal. The lungs are clear. No effusion."
    assert reports[0] == reports[3] and reports[0] in train_reports[3:]
    # no training effusion on the left: the one on the right (same findings, another place); no pneumothorax at all
    assert reports[2] == "Small right pleural effusion." and reports[4] == "FALLBACK"
    assert picks == {"same_content": 3, "same_findings_other_places": 1, "fallback": 1}
    with pytest.raises(ValueError, match="one training report per training study"):
        best_report_per_content(train_shown, train_reports[:2], [normal], fallback="")


_BENCHMARKS = {module.__name__.rsplit(".", 1)[1]: module
               for module in (bench_semireal, bench_semireal_mbr, bench_semireal_rerank)}


def _bench(name: str = "bench_semireal"):
    """A semi-real benchmark script of research/bench/."""
    return _BENCHMARKS[name]


def test_the_benchmark_scores_variants_and_baselines_with_both_protocols(kaggle_dir):
    from dataset_builder import load_iu_xray

    root = kaggle_dir / "semireal"
    write_semireal_studies(kaggle_dir / "kaggle", root, seed=0, image_size=48)
    dataset = load_iu_xray(root, split_file=kaggle_dir / "r2gen" / "annotation.json", image_short_side=48,
                           cache_dir=kaggle_dir / "cache")
    references = list(dataset["test"]["report"])
    bench = _bench()
    shown = read_semireal_truth(root)
    rows = bench.score_all(dataset, {"copy": references, "blank": ["No acute disease."] * len(references)}, meteor=False,
                           shown=shown)
    constants = {"most_frequent_train_report (default)", "most_frequent_train_report (r2gen)",
                 "best_train_report_on_validation (default)", "best_train_report_on_validation (r2gen)"}
    assert set(rows) == {"copy", "blank", bench.CONTENT_ORACLE, bench.COMPOSED_ORACLE, bench.CHOSEN_ORACLE} | constants
    assert list(rows)[-3:] == [bench.CONTENT_ORACLE, bench.COMPOSED_ORACLE, bench.CHOSEN_ORACLE]
    # per kind of study: the pooled subset is the row's own corpus score; a copy of the references is as long as they
    for name, row in rows.items():
        if "default" in row:
            assert row["by_content"]["all"]["bleu_4"] == pytest.approx(row["default"]["bleu_4"], abs=1e-9)
    copy_by_content = rows["copy"]["by_content"]
    assert {"with_finding", "without_finding"} <= set(copy_by_content)
    assert all(part["length_ratio"] == pytest.approx(1.0) for part in copy_by_content.values())
    assert copy_by_content["with_finding"]["studies"] + copy_by_content["without_finding"]["studies"] == len(references)
    composed = rows[bench.COMPOSED_ORACLE]
    assert composed["semireal"]["rendered_ce_micro_recall"] > 0.5 and "r2gen" not in composed
    assert {name for name in rows if bench.is_constant_baseline(name)} == constants
    oracle = rows[bench.CONTENT_ORACLE]
    assert set(oracle) >= {"default", "semireal", "picks"} and "r2gen" not in oracle
    assert oracle["oracle"] == "best_report_per_content"
    assert rows[bench.COMPOSED_ORACLE]["oracle"] == "constant_with_finding_sentences"
    # the chosen oracle keeps, where a finding is shown, the constant's sentences picked on the validation split
    chosen = rows[bench.CHOSEN_ORACLE]
    constant = rows["best_train_report_on_validation (default)"]["example"]
    kept = choose_kept_sentences(list(dataset["train"]["report"]), constant, list(dataset["validation"]["report"]),
                                 [shown[s] for s in dataset["validation"]["study_id"]])
    assert chosen["oracle"] == "choose_kept_sentences" and "r2gen" not in chosen
    assert chosen["kept_sentences"] == [split_sentences(constant)[index].strip() for index in kept]
    assert chosen["example"] == constant_with_finding_sentences(
        list(dataset["train"]["report"]), constant, [shown[dataset["test"]["study_id"][0]]], kept)[0]
    # the oracle writes training reports of each study's own content, so it states what the phantoms show
    best_single = rows["best_train_report_on_validation (default)"]["example"]
    train_by_content = {}
    for study, report in zip(dataset["train"]["study_id"], dataset["train"]["report"]):
        train_by_content.setdefault(shown[study], set()).add(report)
    oracle_reports, picks = best_report_per_content(
        [shown[s] for s in dataset["train"]["study_id"]], list(dataset["train"]["report"]),
        [shown[s] for s in dataset["test"]["study_id"]], fallback=best_single)
    assert oracle["picks"] == picks and sum(picks.values()) == len(references) > picks["fallback"]
    assert oracle["example"] == oracle_reports[0]
    # a pick states the study's findings: a training report of the same content, or of the same findings elsewhere
    for study, report in zip(dataset["test"]["study_id"], oracle_reports):
        same_findings = {text for content, texts in train_by_content.items()
                         if content.without_places() == shown[study].without_places() for text in texts}
        assert report in same_findings or report == best_single
    assert rows["copy"]["semireal"]["rendered_ce_micro_f1"] == 1.0
    assert rows["copy"]["default"]["bleu_4"] == pytest.approx(1.0, abs=1e-6)
    assert rows["copy"]["r2gen"]["bleu_4"] == pytest.approx(1.0, abs=1e-6)
    assert rows["blank"]["semireal"]["rendered_ce_micro_f1"] == 0.0
    assert rows["blank"]["default"]["bleu_4"] < 0.5
    lines = bench.table(rows)
    assert lines[0].split()[:3] == ["R2Gen", "test", "split"] and any(line.startswith("bleu_4 (r2gen)") for line in lines)
    # the targets: "copy" as the recipe, "blank" as the shuffled-image control (a constant: at its own chance)
    targets = bench.meets_targets({"true": rows["copy"], "shuffled": rows["blank"],
                                   **{name: rows[name] for name in constants}})
    assert targets["rendered_ce_micro_f1"] and targets["bleu_4_above_best_constant"] and targets["image_blind_at_chance"]
    assert not bench.meets_targets({"true": rows["blank"], "shuffled": rows["copy"],
                                    **{name: rows[name] for name in constants}})["image_blind_at_chance"]
    assert "image_blind_at_chance" not in bench.meets_targets({"true": rows["copy"],
                                                               **{name: rows[name] for name in constants}})


def test_the_benchmark_compares_decoding_settings_on_the_validation_split(kaggle_dir, monkeypatch):
    """Each candidate's settings reach generation, for the validation studies, and its row scores what they wrote."""
    from dataset_builder import load_iu_xray

    root = kaggle_dir / "semireal"
    write_semireal_studies(kaggle_dir / "kaggle", root, seed=0, image_size=48)
    dataset = load_iu_xray(root, split_file=kaggle_dir / "r2gen" / "annotation.json", image_short_side=48,
                           cache_dir=kaggle_dir / "cache")
    references = list(dataset["validation"]["report"])
    assert any(label_report(text)[name] == Label.POSITIVE for text in references for name in RENDERED_OBSERVATIONS)
    bench = _bench()
    calls = []

    def fake_generate(model_dir, split, **settings):
        calls.append((model_dir, list(split["study_id"]), settings))
        return references if settings == {"num_beams": 3} else ["No acute disease."] * len(references)

    monkeypatch.setattr(bench, "generate_with_pipeline", fake_generate)
    rows = bench.decoding_on_validation(kaggle_dir / "model", dataset)
    assert [settings for _, _, settings in calls] == list(bench.DECODING_CANDIDATES.values())
    assert all(ids == list(dataset["validation"]["study_id"]) and path == kaggle_dir / "model" for path, ids, _ in calls)
    assert list(rows) == list(bench.DECODING_CANDIDATES)
    assert rows["3 beams"]["rendered_ce_micro_f1"] == 1.0 and rows["3 beams"]["bleu_4"] == pytest.approx(1.0, abs=1e-6)
    assert rows["greedy"]["rendered_ce_micro_f1"] == 0.0 and rows["greedy"]["bleu_4"] < 0.5
    assert rows["greedy"]["settings"] == {"num_beams": 1}


def test_the_benchmark_passes_train_options_to_every_variant(tmp_path):
    import argparse

    from xray_report.training import parse_config

    bench = _bench()
    args = argparse.Namespace(config=bench.CONFIG, seed=3, num_train_epochs=0.5,
                              train_option=["abnormal_oversampling=1", "num_beams=1"])
    argv = bench.variant_argv(tmp_path / "studies", tmp_path / "annotation.json", tmp_path / "out", args)
    model_args, data_args, training_args = parse_config(argv)
    assert training_args.abnormal_oversampling == 1 and model_args.num_beams == 1
    assert training_args.num_train_epochs == 0.5 and training_args.seed == 3
    assert data_args.split_file == str(tmp_path / "annotation.json")
    assert bench.CONFIG.is_file() and bench.VARIANTS == ("true", "shuffled")  # the shuffled one: the same arguments


def test_the_benchmark_scores_the_observation_head_against_the_rendered_findings(kaggle_dir, report_tokenizer):
    """A head forced to call every observation present: each rendered finding's true positives are its support,
    its false positives the other test studies; a model without a head gets no head scores."""
    import torch

    from conftest import tiny_decoder_config, tiny_encoder_config, tiny_image_processor
    from dataset_builder import load_iu_xray
    from modeling import build_report_model
    from processing import XrayReportProcessor
    from xray_report.evaluation import OBSERVATIONS

    root = kaggle_dir / "semireal"
    truth = write_semireal_studies(kaggle_dir / "kaggle", root, seed=0, image_size=48)
    test = load_iu_xray(root, split_file=kaggle_dir / "r2gen" / "annotation.json", image_short_side=48,
                        cache_dir=kaggle_dir / "cache")["test"]
    processor = XrayReportProcessor(tiny_image_processor(), report_tokenizer)
    model = build_report_model(tiny_encoder_config(), tiny_decoder_config(), report_tokenizer,
                               observation_names=OBSERVATIONS)
    with torch.no_grad():
        model.observation_head.weight.zero_()
        model.observation_head.bias.fill_(5.0)
    model.save_pretrained(kaggle_dir / "with_head")
    processor.save_pretrained(kaggle_dir / "with_head")
    scores = _bench().observation_head_scores(kaggle_dir / "with_head", test)
    studies = len(test)
    for name in RENDERED_OBSERVATIONS:
        support = sum(name in truth[study_id].observations for study_id in test["study_id"])
        assert scores["per_observation"][name] == {
            "tp": support, "fp": studies - support, "fn": 0,
            "f1": 2 * support / (2 * support + studies - support) if support or studies else 0.0}
    positives = sum(len(truth[study_id].observations) for study_id in test["study_id"])
    assert positives > 0
    assert scores["micro_f1"] == pytest.approx(2 * positives / (2 * positives + len(RENDERED_OBSERVATIONS) * studies - positives))

    plain = build_report_model(tiny_encoder_config(), tiny_decoder_config(), report_tokenizer)
    plain.save_pretrained(kaggle_dir / "plain")
    processor.save_pretrained(kaggle_dir / "plain")
    assert _bench().observation_head_scores(kaggle_dir / "plain", test) is None


def test_image_content_ceiling_counts_what_the_images_can_tell_apart():
    normal = RenderedFindings()
    right_effusion = RenderedFindings(("Pleural Effusion",), effusion_sides=("right",))
    left_effusion = RenderedFindings(("Pleural Effusion",), effusion_sides=("left",))
    ceiling = image_content_ceiling([normal, right_effusion, normal, left_effusion, RenderedFindings(),
                                     RenderedFindings(("Pleural Effusion",), effusion_sides=("right",))])
    assert ceiling == {"studies": 6, "distinct_contents": 3, "distinct_fraction": 0.5, "without_rendered_finding": 3}
    spine = RenderedFindings(extra_findings=("Spine Degeneration",))  # an extra finding alone is a finding shown
    assert image_content_ceiling([normal, spine, spine]) == {
        "studies": 3, "distinct_contents": 2, "distinct_fraction": 2 / 3, "without_rendered_finding": 1}
    assert reports_per_content([normal, spine], ["Clear.", "Clear."])["studies_without_rendered_finding"] == 1
    with pytest.raises(ValueError, match="at least one study"):
        image_content_ceiling([])


def test_reports_per_content_counts_reports_that_change_while_the_findings_do_not():
    normal = RenderedFindings()
    effusion = RenderedFindings(("Pleural Effusion",), effusion_sides=("right",))
    shown = [normal, normal, normal, effusion, effusion]
    follows_findings = ["Clear.", "Clear.", "Clear.", "Effusion.", "Effusion."]
    assert reports_per_content(shown, follows_findings) == {
        "content_report_pairs": 2, "reports_without_rendered_finding": 1, "studies_without_rendered_finding": 3}
    # two normal phrasings and one effusion report written once for a normal study
    varies = ["Clear.", "Normal chest.", "Effusion.", "Effusion.", "Effusion."]
    assert reports_per_content(shown, varies) == {
        "content_report_pairs": 4, "reports_without_rendered_finding": 3, "studies_without_rendered_finding": 3}
    with pytest.raises(ValueError, match="one generated report per study"):
        reports_per_content(shown, follows_findings[:4])


def test_mbr_keeps_the_candidate_closest_to_the_others():
    mbr = _bench("bench_semireal_mbr")
    report = "The heart is normal in size. The lungs are clear."
    assert mbr.sentence_bleu_4(report, report) == pytest.approx(1.0)
    assert mbr.sentence_bleu_4("Large left pleural effusion.", report) < 0.2
    assert mbr.sentence_bleu_4("", report) == 0.0
    outlier, near, central = ("Large left pleural effusion.", "The heart is normal. The lungs are clear.", report)
    assert mbr.mbr_choice([outlier, near, central, "The heart is normal in size. The lungs are clear bilaterally."]) \
        == central


def test_typicality_reranking_prefers_common_training_sentences_by_its_weight():
    rerank = _bench("bench_semireal_rerank")
    train = ["The heart is normal. The lungs are clear."] * 3 + ["Heart size is within normal limits. Lungs clear."]
    prior = rerank.SentencePrior(train)
    assert prior.typicality("The lungs are clear.") == pytest.approx(math.log(4 / 5))
    assert prior.typicality("Unseen sentence.") == pytest.approx(math.log(1 / 5))
    assert prior.typicality("") == 0.0
    rare_first = rerank.Candidates(["Heart size is within normal limits. Lungs clear.", "The heart is normal."],
                                   [-0.5, -0.6])
    assert rerank.rerank_by_typicality([rare_first], prior, 0.0) == [rare_first.texts[0]]
    assert rerank.rerank_by_typicality([rare_first], prior, 1.0) == ["The heart is normal."]


def test_consensus_reranking_keeps_the_stated_findings_and_picks_the_common_wording():
    rerank = _bench("bench_semireal_rerank")
    effusion = "There is a small right pleural effusion. The heart is normal in size. The lungs are clear."
    copied = "Small right pleural effusion. Old healed rib fracture."  # one training study's own details
    train = [effusion] * 3 + [copied] + \
            ["The heart is normal in size. The lungs are clear. No pleural effusion or pneumothorax."] * 5
    consensus = rerank.ContentConsensus(train)
    assert rerank.positive_findings(effusion) == ("Pleural Effusion",)
    normal = "The heart is normal in size. The lungs are clear. No pleural effusion or pneumothorax."
    found = rerank.Candidates([copied, normal, effusion], [-0.1, -0.2, -0.3])
    assert rerank.rerank_by_consensus([found], consensus) == [effusion]

    class FavoursTheNormalReport:
        def expected_bleu(self, text, findings):
            assert findings == ("Pleural Effusion",)  # always scored against the top beam's findings
            return {copied: -2.0, normal: 0.0, effusion: -1.0}[text]

    # the normal candidate would score highest but does not state the effusion the top beam states
    assert rerank.rerank_by_consensus([found], FavoursTheNormalReport()) == [effusion]
    assert consensus.expected_bleu(effusion, ("Pleural Effusion",)) > consensus.expected_bleu(copied, ("Pleural Effusion",))
    assert consensus.expected_bleu("Too short.", ()) == -math.inf


def test_beam_candidates_returns_every_beam_of_each_study_best_first(kaggle_dir, report_tokenizer):
    from conftest import tiny_decoder_config, tiny_encoder_config, tiny_image_processor
    from dataset_builder import load_iu_xray
    from modeling import build_report_model
    from processing import XrayReportProcessor

    root = kaggle_dir / "semireal"
    write_semireal_studies(kaggle_dir / "kaggle", root, seed=0, image_size=48)
    test = load_iu_xray(root, split_file=kaggle_dir / "r2gen" / "annotation.json", image_short_side=48,
                        cache_dir=kaggle_dir / "cache")["test"]
    processor = XrayReportProcessor(tiny_image_processor(), report_tokenizer)
    model = build_report_model(tiny_encoder_config(), tiny_decoder_config(), report_tokenizer)
    model.generation_config.max_new_tokens = 6
    model.save_pretrained(kaggle_dir / "model")
    processor.save_pretrained(kaggle_dir / "model")
    found = _bench("bench_semireal_rerank").beam_candidates(kaggle_dir / "model", test, num_beams=3, batch_size=2)
    assert len(found) == len(test) > 2  # more studies than one batch
    for item in found:
        assert len(item.texts) == len(item.scores) == 3
        assert item.scores == sorted(item.scores, reverse=True)


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        ("", 0),
        ("No effusion.", 0),
        ("a b a", 1),  # "a" twice; no 2-gram twice
        ("a a a a", 3),  # overlapping occurrences count
        ("The heart. the HEART.", 3),  # case-blind; "." is a word: "the heart ." twice
        ("The lungs are clear. The lungs are clear.", 5),  # the loop's length, not more
        ("Size 4.5 cm, stable; size 4.5 cm", 5),  # "size 4 . 5 cm" twice: punctuation marks are words
    ],
)
def test_longest_repeated_ngram_by_hand(report: str, expected: int) -> None:
    assert longest_repeated_ngram(report) == expected


def test_a_semi_real_folder_is_recorded_as_such_by_the_product(tmp_path):
    """The training record recognises the folder write_semireal_studies writes by its labels file, a data fact the
    product keeps (xray_report.training.record.SEMIREAL_LABELS_CSV) without importing the lab."""
    import datasets

    from xray_report.synthetic import write_kaggle_studies
    from xray_report.training import DataArguments
    from xray_report.training.record import IU_XRAY_TERMS, SEMIREAL_NAME, build_dataset_record

    splits = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"study_id": ["1", "2"]}),
                                   "test": datasets.Dataset.from_dict({"study_id": ["3"]})})
    write_kaggle_studies(tmp_path / "synthetic", 3, seed=5, frontal_size=(32, 30), lateral_size=(32, 32))
    write_semireal_studies(tmp_path / "synthetic", tmp_path / "semireal", image_size=32)
    assert (tmp_path / "semireal" / SEMIREAL_LABELS_CSV).is_file()
    semireal = build_dataset_record(DataArguments(data_dir=str(tmp_path / "semireal")), splits)
    assert (semireal.name, semireal.synthetic, semireal.terms) == (SEMIREAL_NAME, False, IU_XRAY_TERMS)
