"""The wheel a user installs (`pip install .`, not the editable install the tests run on) carries the packages and
the data files the code reads, and the product only: none of the lab (research/: benchmarks, the semi-real benchmark
and its oracles, labeler validation studies, mutation tooling), no symbolic link, no file twice; setuptools builds it
without a packaging warning."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

from conftest import REPO_ROOT as REPO
# The lab (research/) and the root scripts travel with the sources so that the build sees the whole tree a checkout
# has; `packages = find:` must leave them out.
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "modeling", "processing", "dataset_builder", "xray_report",
           "research", "quickstart.py", "train_hf.py", "push_to_hub.py")
PACKAGES = ("modeling", "processing", "dataset_builder", "xray_report")
DATA_FILES = ("xray_report/publishing/model_card_template.md",)
LAB_NAMES = ("research", "bench", "semireal", "chexpert_conformance", "validate_labeler", "mutation", "mutmut",
             "chexpert_phrases", "quickstart")


def test_the_wheel_holds_every_package_and_data_file(tmp_path):
    source = tmp_path / "source"
    for name in SOURCES:  # a copy, so that the build writes nothing into the checkout
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "run"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(origin, source / name)
    modules = {str(path.relative_to(source)) for path in source.rglob("*.py")
               if path.relative_to(source).parts[0] in PACKAGES and _in_a_package(path, source)}
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
    for package in PACKAGES:
        assert f"{package}/__init__.py" in names
    assert modules <= names, sorted(modules - names)[:5]

    # the product only
    files = [name for name in names if ".dist-info/" not in name]
    assert {name.split("/")[0] for name in files} == set(PACKAGES)
    lab = [name for name in files if any(part in name for part in LAB_NAMES)]
    assert lab == []
    with zipfile.ZipFile(wheel) as archive:
        links = [info.filename for info in archive.infolist() if stat.S_ISLNK(info.external_attr >> 16)]
        contents = Counter(archive.read(name) for name in files if name.endswith(".py"))
    assert links == []
    assert [text[:60] for text, count in contents.items() if count > 1 and text.strip()] == []  # no module twice


def _in_a_package(path: Path, root: Path) -> bool:
    """Whether every folder from `root` down to `path` is a package (the `evaluate` metric folders under
    xray_report/evaluation/metrics are not: `evaluate.load` reads them by path from a checkout)."""
    folders = path.relative_to(root).parents
    return all((root / folder / "__init__.py").is_file() for folder in folders if folder != Path("."))
