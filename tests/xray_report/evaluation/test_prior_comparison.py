"""Prior-comparison flags: sentences claiming a comparison with a prior study."""

from __future__ import annotations

import pytest

from xray_report.evaluation.prior_comparison import (
    find_prior_comparisons,
    flag_prior_comparisons,
    prior_comparison_stats,
    remove_prior_comparisons,
)

REPORT = (
    "Heart size is unchanged. The lungs are clear. Left effusion is again seen. "
    "Compared to the prior study there is interval increase in the opacity. No pneumothorax."
)


@pytest.mark.parametrize(
    ("sentence", "phrase"),
    [
        ("Stable cardiomediastinal silhouette.", "Stable"),
        ("The cardiac silhouette is unchanged.", "unchanged"),
        ("Right hilar adenopathy is again seen.", "again seen"),
        ("Larger in size in comparison to the prior exam.", "comparison to the prior"),
        ("There is interval increase in the right effusion.", "interval increase"),
        ("No significant change since the previous radiograph.", "No significant change"),
        ("There is persistent elevation of the right hemidiaphragm.", "persistent"),
        ("Redemonstrated severe compression deformity.", "Redemonstrated"),
    ],
)
def test_flags_prior_comparison_phrases(sentence: str, phrase: str) -> None:
    flagged = find_prior_comparisons(sentence)
    assert [f.phrase for f in flagged] == [phrase]
    assert flagged[0].sentence == sentence


def test_no_flag_on_plain_findings() -> None:
    assert find_prior_comparisons("The heart is normal in size. No pleural effusion. Mild degenerative changes.") == []


def test_flag_and_remove() -> None:
    flagged = find_prior_comparisons(REPORT)
    assert [f.index for f in flagged] == [0, 2, 3]
    assert [f.phrase for f in flagged] == ["unchanged", "again seen", "Compared to the prior"]
    result = flag_prior_comparisons(REPORT, remove=True)
    assert result.text == "The lungs are clear. No pneumothorax."
    assert result.text == remove_prior_comparisons(REPORT)
    assert flag_prior_comparisons(REPORT).text == REPORT and len(flag_prior_comparisons(REPORT).flagged) == 3
    with_prior = flag_prior_comparisons(REPORT, has_prior_image=True, remove=True)
    assert with_prior.text == REPORT and with_prior.flagged == []


def test_stats() -> None:
    stats = prior_comparison_stats([REPORT, "No acute disease.", "Stable cardiomegaly."])
    assert stats["num_reports"] == 3 and stats["num_reports_flagged"] == 2
    assert stats["report_rate"] == pytest.approx(2 / 3)
    assert stats["num_sentences"] == 7 and stats["num_sentences_flagged"] == 4
    assert stats["by_label"]["unchanged"] == 1 and stats["by_label"]["stable"] == 1


FAMILY_CASES = [
        ("unchanged", "Heart size is unchanged.", "Heart size is normal."),
        ("no change", "No significant change.", "No significant effusion."),
        ("stable", "Stable cardiomegaly.", "Mild cardiomegaly."),
        ("again seen", "Left effusion is again noted.", "Left effusion is noted."),
        ("redemonstrated", "Redemonstration of the nodule.", "Demonstration of a nodule."),
        ("compared with prior", "The opacity is larger compared with prior.", "The opacity is larger compared with the right."),
        ("since prior", "The opacity is larger than on prior.", "The opacity is larger than expected."),
        ("prior study", "Prior radiographs show a nodule.", "Radiographs show a nodule."),
        ("previously", "The nodule was previously described.", "The nodule was described."),
        ("interval change", "Interval decrease of the effusion.", "Decrease of the effusion."),
        ("persistent", "Persistent left basilar opacity.", "Left basilar opacity."),
        ("improved / worsened", "Aeration has improved.", "Aeration is normal."),
        ("resolved", "The effusion has resolved.", "The effusion is small."),
        ("new", "There is a new opacity.", "There is an opacity."),
        ("as before", "Heart size as before.", "Heart size as expected."),
]


def test_the_family_cases_cover_every_family() -> None:
    from xray_report.evaluation.prior_comparison import PRIOR_COMPARISON_PATTERNS

    assert [case[0] for case in FAMILY_CASES] == [name for name, _ in PRIOR_COMPARISON_PATTERNS]


@pytest.mark.parametrize(("label", "claims_a_prior", "plain"), FAMILY_CASES)
def test_every_phrase_family_flags_its_claim_and_not_the_plain_sentence(label: str, claims_a_prior: str, plain: str) -> None:
    from xray_report.evaluation.prior_comparison import PRIOR_COMPARISON_PATTERNS

    assert label in {name for name, _ in PRIOR_COMPARISON_PATTERNS}
    assert [flag.label for flag in find_prior_comparisons(claims_a_prior)] == [label]  # only this family matches
    assert find_prior_comparisons(plain) == []


def test_stats_of_no_reports_and_the_rate_keys() -> None:
    empty = prior_comparison_stats([])
    assert empty["num_reports"] == 0 and empty["report_rate"] == 0.0 and empty["sentence_rate"] == 0.0
    stats = prior_comparison_stats(["Stable cardiomegaly. No effusion."])
    assert stats["report_rate"] == 1.0 and stats["sentence_rate"] == pytest.approx(0.5)


def test_removal_still_reports_what_it_removed() -> None:
    removed = flag_prior_comparisons(REPORT, remove=True)
    assert [flag.phrase for flag in removed.flagged] == ["unchanged", "again seen", "Compared to the prior"]
    assert flag_prior_comparisons(REPORT, has_prior_image=True).flagged == []
