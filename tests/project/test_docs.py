"""The documentation stays in step with the code: generated pages are current, links resolve, the README is short."""

from __future__ import annotations

import json
import re

from conftest import REPO_ROOT
from research.bench import write_benchmarks_page

RESULTS = REPO_ROOT / "research" / "results"
LINK = re.compile(r"\]\(([^)#]+)(?:#[^)]*)?\)")


def test_benchmarks_page_is_generated_from_the_results_files() -> None:
    page = REPO_ROOT / "research" / "bench" / "README.md"
    assert page.read_text(encoding="utf-8") == write_benchmarks_page.render(), (
        "research/bench/README.md is out of date: run python -m research.bench.write_benchmarks_page"
    )


def test_relative_links_resolve() -> None:
    lab = [page for page in sorted((REPO_ROOT / "research").rglob("*.md"))  # not the mutation run's copies
           if not page.is_relative_to(REPO_ROOT / "research" / "mutation" / "run")]
    pages = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md")), *lab]
    for page in pages:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name} links to a missing {target}"


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    commands = re.findall(r"^bash \.ci/setup\.sh && .*$", text, flags=re.MULTILINE)
    assert commands[:2] == [
        "bash .ci/setup.sh && .venv/bin/python quickstart.py --output-dir outputs/quickstart",
        "bash .ci/setup.sh && .venv/bin/python -m pytest -q",
    ]
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash .ci/setup.sh && .venv/bin/python -m pytest -q" in ci  # CI calls exactly the README's test command
    assert "not a medical device" in text


def readme_figure(text: str, figure: str) -> tuple[str, str]:
    """The "our run" and "what it means" cells of the README row whose first cell is `figure`."""
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith(f"| {figure} | ")]
    assert len(rows) == 1, f"the README has {len(rows)} rows for {figure}"
    return rows[0][1].strip(), rows[0][2].strip().removesuffix("|").strip()


def test_readme_main_job_figures_are_the_recorded_run() -> None:
    """Every figure the README gives about command 1 is read from research/results/quickstart.json (or, for the
    spread over seeds, from research/results/seed_stability.json), and no other time is promised."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    run = json.loads((RESULTS / "quickstart.json").read_text(encoding="utf-8"))
    seeds = json.loads((RESULTS / "seed_stability.json").read_text(encoding="utf-8"))
    header = next(line for line in text.splitlines() if line.startswith("| figure | our run"))
    assert "`research/results/quickstart.json`" in header
    assert run["cpu_model"] in header and run["date"] in header and f"{run['cpu_threads']} cores" in header

    assert readme_figure(text, "`finding_accuracy`")[0] == f"{run['finding_accuracy']:.3f}"
    assert readme_figure(text, "`control_finding_accuracy`")[0] == f"{run['control_finding_accuracy']:.3f}"
    zone, zone_meaning = readme_figure(text, "`zone_accuracy`")
    assert zone == f"{run['zone_accuracy']:.3f}" and f"opacity studies ({run['opacity_studies']})" in zone_meaning
    summary = seeds["summary"]
    spread = f"{summary['zone_accuracy']['min']:.3f}–{summary['zone_accuracy']['max']:.3f} over seeds 0–7"
    assert spread in zone_meaning and seeds["seeds"] == list(range(8))
    pointing, pointing_meaning = readme_figure(text, "`pointing_accuracy` / `uniform_map_pointing_accuracy`")
    assert pointing == f"{run['pointing_accuracy']:.3f} / {run['uniform_map_pointing_accuracy']:.3f}"
    over_seeds = summary["pointing_accuracy"]
    assert (f"{over_seeds['min']:.2f}–{over_seeds['max']:.2f}, median {over_seeds['median']:.2f}, "
            f"{summary['seeds_meeting']['pointing_accuracy']} of {len(seeds['seeds'])} seeds ≥ "
            f"{seeds['targets']['pointing_accuracy']}") in pointing_meaning
    assert readme_figure(text, "`unfinished_reports`, `distinct_reports`")[0] == (
        f"{run['unfinished_reports']} of {run['test_studies']}, {run['distinct_reports']}")
    assert f"each of the {run['test_studies']} held-out studies" in text

    seconds, seconds_meaning = readme_figure(text, "`wall_seconds`")
    assert seconds == f"{run['wall_seconds']}"
    assert f"training {run['train_runtime_seconds']} s of it" in seconds_meaning
    assert run["cpu_model"] in seconds_meaning and "Not measured on other CPUs" in seconds_meaning
    train_seconds = summary["train_seconds"]
    assert f"trained in {train_seconds['min']:.1f}–{train_seconds['max']:.1f} s" in seconds_meaning

    # no other duration: every "N s", "N seconds" or "N minutes" in the README is one of the recorded figures
    recorded = {f"{run['wall_seconds']}", f"{run['train_runtime_seconds']}",
                f"{train_seconds['min']:.1f}–{train_seconds['max']:.1f}"}
    number = r"\d+(?:[.,]\d+)?"
    durations = set(re.findall(rf"(?<![\w.])({number}(?:\s*[–-]\s*{number})?)\s*(?:s|secs?|seconds?|mins?|minutes?|h|hours?)\b",
                               text))
    assert durations <= recorded, f"durations in the README that no results file records: {durations - recorded}"


def test_clinical_context_page_quotes_its_results_files() -> None:
    """docs/clinical_context.md: every figure is read from research/results/semireal_context.json and
    context_ceiling.json."""
    page = (REPO_ROOT / "docs" / "clinical_context.md").read_text(encoding="utf-8")
    run = json.loads((RESULTS / "semireal_context.json").read_text(encoding="utf-8"))
    ceiling = json.loads((RESULTS / "context_ceiling.json").read_text(encoding="utf-8"))
    rows = {
        "CE micro F1, findings the images show": "rendered_ce_micro_f1",
        "micro F1, findings outside CheXpert's 14 that the images show": "extra_findings_micro_f1",
        "CE micro F1, findings the images do not show": "unrendered_ce_micro_f1",
        "BLEU-4": "bleu_4", "ROUGE-L": "rouge_l", "distinct reports (share of studies)": "distinct_fraction",
    }
    for label, key in rows.items():
        row = f"| {label} | {run['with_context'][key]:.3f} | {run['without_context'][key]:.3f} |"
        assert row in page, f"docs/clinical_context.md does not quote {row!r}"
    misleading = run["misleading_context"]
    assert (f"({len(misleading['per_finding'])} findings, {misleading['studies']} study-finding pairs)"
            in " ".join(page.split()))
    assert (f"was {misleading['assertion_rate_without']:.4f} without an indication and "
            f"{misleading['assertion_rate_with']:.4f} with the misleading one") in " ".join(page.split())
    assert f"{run['test_studies']} test studies" in page and f"({run['test_studies_with_indication']} of them" in page
    assert f"`context_max_tokens={run['context_max_tokens']}`" in page
    assert f"`context_dropout={run['context_dropout']}`" in page and run["date"] in page
    flat = " ".join(page.split())
    met = run["meets_targets"]
    assert ("(within 0.01: met)" in flat) == met["rendered_ce_within_0.01"]
    assert ("raises the assertion rate by at most 0.02 (met)" in flat) == met["misleading_increase_at_most_0.02"]
    assert (f"of the {ceiling['reports_with_indication']} IU X-ray reports with an indication, "
            f"{ceiling['stating_a_finding_not_drawn']} state a CheXpert finding the phantoms do not draw, and the "
            f"indication names one of those findings in {ceiling['indication_names_one_of_them']}") in flat
