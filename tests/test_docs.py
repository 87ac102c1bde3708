"""The documentation stays in step with the code: generated pages are current, links resolve, the README is short."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#]+)(?:#[^)]*)?\)")


def test_benchmarks_page_is_generated_from_the_results_files() -> None:
    spec = importlib.util.spec_from_file_location("write_benchmarks_page", REPO_ROOT / "bench" / "write_benchmarks_page.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (REPO_ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8") == module.render(), (
        "docs/benchmarks.md is out of date: run python bench/write_benchmarks_page.py"
    )


def test_relative_links_resolve() -> None:
    for page in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
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
