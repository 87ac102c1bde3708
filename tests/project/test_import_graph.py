"""Layers point one way: modeling ← processing ← data / training / evaluation ← inference / publishing / demo ← scripts.

Every import of a project package anywhere in a module (top level or inside a function) counts. Command-line
entry modules belong to the scripts layer wherever their file lives; only they may import lazily (to answer
``--help`` at once), and no module may import a package of a higher layer. The lab (``research/``: benchmarks,
oracles, validation studies) sits above all of them: it imports the product as a user would, and nothing the
product ships or runs imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO_ROOT
LAYERS: dict[str, int] = {
    "modeling": 0,
    "processing": 1,
    "dataset_builder": 2, "xray_report.evaluation": 2, "xray_report.training": 2, "xray_report.synthetic": 2,
    "xray_report.results": 2,
    "xray_report.inference": 3, "xray_report.publishing": 3, "xray_report.demo": 3,
}
SCRIPT_MODULES = {
    "modeling/convert_biovilt_checkpoint.py", "xray_report/synthetic/make_studies.py", "xray_report/evaluation/cli.py",
    "xray_report/evaluation/__main__.py", "xray_report/inference/cli.py", "xray_report/inference/__main__.py",
    "xray_report/demo/app.py",
}
SCRIPT_LAYER = 4


def _package_of(module: str) -> str:
    """The layered package a module belongs to (``xray_report.training.data`` -> ``xray_report.training``)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "xray_report" else parts[0]


def _project_imports(path: Path) -> list[tuple[str, bool]]:
    """(imported project package, imported inside a function) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            names = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module]
            found.extend((_package_of(name), in_function) for name in names if _package_of(name) in LAYERS)
            visit(child, nested)

    visit(tree, False)
    return found


def _modules() -> list[tuple[str, Path]]:
    return [
        (package, path)
        for package in LAYERS
        for path in sorted((REPO_ROOT / package.replace(".", "/")).rglob("*.py"))
    ]


PRODUCT_FILES = ("modeling", "processing", "dataset_builder", "xray_report", "space", "train_hf.py", "push_to_hub.py",
                 "quickstart.py")
"""The installed packages, the Space and the entry scripts: everything a user installs or runs."""


def _imported_modules(path: Path) -> list[str]:
    """Every absolute module name imported anywhere in the file (``import a.b`` and ``from a.b import c``)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_no_module_imports_a_higher_layer() -> None:
    violations = []
    for package, path in _modules():
        relative = path.relative_to(REPO_ROOT).as_posix()
        layer = SCRIPT_LAYER if relative in SCRIPT_MODULES else LAYERS[package]
        for imported, _ in _project_imports(path):
            if imported != package and LAYERS[imported] > layer:
                violations.append(f"{relative} (layer {layer}) imports {imported} (layer {LAYERS[imported]})")
    assert violations == []


def test_only_entry_modules_import_project_packages_inside_functions() -> None:
    hidden = [
        f"{path.relative_to(REPO_ROOT).as_posix()} imports {imported} inside a function"
        for package, path in _modules()
        if path.relative_to(REPO_ROOT).as_posix() not in SCRIPT_MODULES
        for imported, in_function in _project_imports(path)
        if in_function and imported != package
    ]
    assert hidden == []


def test_package_graph_has_no_cycle() -> None:
    edges: dict[str, set[str]] = {package: set() for package in LAYERS}
    for package, path in _modules():
        if path.relative_to(REPO_ROOT).as_posix() in SCRIPT_MODULES:
            continue
        edges[package] |= {imported for imported, _ in _project_imports(path) if imported != package}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in edges[start])

    assert [package for package in LAYERS if reaches(package, package, {package})] == []


def test_no_product_module_imports_the_lab() -> None:
    files = [path for name in PRODUCT_FILES for path in ((REPO_ROOT / name).rglob("*.py") if (REPO_ROOT / name).is_dir()
                                                          else [REPO_ROOT / name])]
    assert len(files) > 50
    lab = [f"{path.relative_to(REPO_ROOT).as_posix()} imports {name}" for path in files
           for name in _imported_modules(path) if name.split(".")[0] in ("research", "bench")]
    assert lab == []


def test_the_check_sees_a_violation() -> None:
    # the parser finds imports at any depth, so a function-local import of a higher layer cannot hide
    source = "def f():\n    if True:\n        from xray_report.inference.cli import main\n"
    probe = REPO_ROOT / "tests" / "_probe_module.py"
    probe.write_text(source, encoding="utf-8")
    try:
        assert _project_imports(probe) == [("xray_report.inference", True)]
        probe.write_text("def f():\n    from research.semireal import write_semireal_studies\nimport research.bench\n",
                         encoding="utf-8")
        assert sorted(_imported_modules(probe)) == ["research.bench", "research.semireal"]
    finally:
        probe.unlink()
