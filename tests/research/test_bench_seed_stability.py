"""The seed-stability benchmark's bookkeeping: which targets a seed meets, and the summary over seeds."""

from __future__ import annotations

from research.bench import bench_seed_stability

TARGETS = {"finding_accuracy": 0.9, "control_finding_accuracy_at_most": 0.6, "zone_accuracy": 0.8,
           "pointing_accuracy": 0.8}


def _module():
    return bench_seed_stability


def _scores(zone: float, pointing: float | None, unfinished: int = 0) -> dict:
    return {"finding_accuracy": 1.0, "control_finding_accuracy": 0.5, "zone_accuracy": zone,
            "pointing_accuracy": pointing, "uniform_map_pointing_accuracy": 0.18, "distinct_reports": 12,
            "unfinished_reports": unfinished, "train_seconds": 100.0}


def test_meets_targets_checks_each_bar_and_counts_no_map_as_a_miss() -> None:
    bench = _module()
    met = bench.meets_targets(_scores(zone=0.8, pointing=None), TARGETS)
    assert met == {"finding_accuracy": True, "control": True, "zone_accuracy": True, "pointing_accuracy": False,
                   "finished": True}
    assert not bench.meets_targets(_scores(zone=0.79, pointing=0.9, unfinished=1), TARGETS)["zone_accuracy"]
    assert not bench.meets_targets(_scores(zone=0.79, pointing=0.9, unfinished=1), TARGETS)["finished"]


def test_summary_reports_median_range_and_seeds_meeting_each_target() -> None:
    bench = _module()
    runs = {}
    for seed, zone in enumerate([0.2, 1.0, 0.5]):
        runs[str(seed)] = _scores(zone=zone, pointing=0.1)
        runs[str(seed)]["meets_targets"] = bench.meets_targets(runs[str(seed)], TARGETS)
    summary = bench.summarise(runs)
    assert summary["zone_accuracy"] == {"median": 0.5, "min": 0.2, "max": 1.0}
    assert summary["seeds_meeting"]["zone_accuracy"] == 1
    assert summary["seeds_meeting"]["finding_accuracy"] == 3
    assert summary["seeds_meeting"]["pointing_accuracy"] == 0
