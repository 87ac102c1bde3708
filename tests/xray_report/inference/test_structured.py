"""Structured output: Findings / Impression split (rule, headers, fitted on training text), labels, flags."""

from __future__ import annotations

import csv
import json
import re

from conftest import require_shared
from xray_report.evaluation import OBSERVATIONS
from xray_report.evaluation.prior_comparison import split_sentences
from xray_report.evaluation.sections import SectionSplitter, fit_splitter_from_csv
from xray_report.inference.structured import structure_report

REPORT = "Heart size is unchanged. The lungs are clear. There is a small left pleural effusion. No acute cardiopulmonary abnormality."


def test_rule_split_takes_impression_style_suffix():
    sections = SectionSplitter().split(REPORT)
    assert sections.method == "rule"
    assert sections.impression == "No acute cardiopulmonary abnormality."
    assert sections.findings.startswith("Heart size is unchanged.") and sections.findings.endswith("effusion.")
    # with no impression-style sentence the last sentence is the impression (every target ends with one)
    assert SectionSplitter().split("Lungs are clear. Small effusion.").impression == "Small effusion."
    assert SectionSplitter(require_impression=False).split("Lungs are clear. Small effusion.").impression == ""


def test_headers_decide_when_present():
    sections = SectionSplitter().split("FINDINGS: Lungs are clear. IMPRESSION: Normal chest.")
    assert (sections.findings, sections.impression, sections.method) == ("Lungs are clear.", "Normal chest.", "headers")


def test_structure_report_flags_removes_and_labels():
    kept = structure_report(REPORT)
    assert [f["phrase"] for f in kept.flags] == ["unchanged"] and kept.report == REPORT
    assert list(kept.labels) == list(OBSERVATIONS) and kept.labels["Pleural Effusion"] == "positive"
    removed = structure_report(REPORT, remove_prior_claims=True)
    assert "unchanged" not in removed.report and removed.generated == REPORT
    assert removed.flags[0]["removed"] is True and removed.findings.startswith("The lungs are clear.")
    assert structure_report(REPORT, has_prior_image=True).flags == []


def test_fitted_splitter_beats_the_rule_on_the_iu_xray_test_split(tmp_path):
    """Fitted on the R2Gen training studies' findings / impressions, scored on the 590 test studies."""
    reports = require_shared("data", "iu_xray", "kaggle", "indiana_reports.csv")
    annotation = json.loads(require_shared("data", "iu_xray", "r2gen", "annotation.json").read_text())
    uid = lambda entry: re.match(r"CXR(\d+)_", entry["id"]).group(1)  # noqa: E731
    train = {uid(e) for e in annotation["train"]}
    test = {uid(e) for e in annotation["test"]}
    fitted = fit_splitter_from_csv(reports, keep_ids=train)
    fitted = SectionSplitter.load(fitted.save(tmp_path / "section_splitter.json"))
    assert fitted.method == "fitted" and fitted.require_impression

    def exact(splitter: SectionSplitter) -> float:
        hits = total = 0
        with reports.open(newline="") as handle:
            for row in csv.DictReader(handle):
                findings, impression = row["findings"].strip(), row["impression"].strip()
                if row["uid"] in test and findings and impression:
                    total += 1
                    hits += split_sentences(splitter.split(f"{findings} {impression}").impression) == split_sentences(impression)
        return hits / total

    fitted_rate, rule_rate = exact(fitted), exact(SectionSplitter())
    assert fitted_rate > 0.70 and fitted_rate > rule_rate + 0.05, (fitted_rate, rule_rate)
