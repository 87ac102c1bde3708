"""The wheel a user installs (`pip install .`, not the editable install the tests run on) carries the packages and
the data files the code reads, and setuptools builds it without a packaging warning."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "modeling", "processing", "dataset_builder", "xray_report")
DATA_FILES = ("xray_report/evaluation/data/chexpert_phrases.json", "xray_report/publishing/model_card_template.md")


def test_the_wheel_holds_every_package_and_data_file(tmp_path):
    source = tmp_path / "source"
    for name in SOURCES:  # a copy, so that the build writes nothing into the checkout
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(origin, source / name)
    modules = {str(path.relative_to(source)) for path in source.rglob("*.py") if _in_a_package(path, source)}
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(tmp_path / "wheel")],
        capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    assert "absent from the `packages` configuration" not in build.stdout + build.stderr
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(DATA_FILES) <= names
    for package in ("modeling", "processing", "dataset_builder", "xray_report", "xray_report/evaluation/data"):
        assert f"{package}/__init__.py" in names
    assert modules <= names, sorted(modules - names)[:5]


def _in_a_package(path: Path, root: Path) -> bool:
    """Whether every folder from `root` down to `path` is a package (the `evaluate` metric folders under
    xray_report/evaluation/metrics are not: `evaluate.load` reads them by path from a checkout)."""
    folders = path.relative_to(root).parents
    return all((root / folder / "__init__.py").is_file() for folder in folders if folder != Path("."))
