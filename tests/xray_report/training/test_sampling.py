"""Oversampling of the training studies whose report states a finding."""

from __future__ import annotations

import pytest


def test_abnormal_oversampler_draws_studies_that_state_a_finding_more_often():
    from xray_report.training.sampling import abnormal_oversampler, states_a_finding

    reports = ["Heart size is normal. The lungs are clear."] * 75 + ["There is a large right pleural effusion."] * 25
    assert not states_a_finding(reports[0]) and states_a_finding(reports[-1])
    draws = []
    for seed in range(40):
        draws += list(abnormal_oversampler(reports, 3.0, seed=seed))
    assert len(draws) == 40 * len(reports)  # an epoch stays as many draws as studies
    share = sum(index >= 75 for index in draws) / len(draws)
    assert share == pytest.approx(3 * 25 / (3 * 25 + 75), abs=0.02)  # 0.5 instead of 0.25
    assert list(abnormal_oversampler(reports, 3.0, seed=7)) == list(abnormal_oversampler(reports, 3.0, seed=7))
    with pytest.raises(ValueError, match="0 of 75 reports state a finding"):
        abnormal_oversampler(reports[:75], 3.0)
