"""Every entry point the README and docs/*.md show in a ```bash block answers `--help`.

The commands are read from the pages themselves, so a command added to the documentation is checked without
touching this file. An entry point is what the user's command starts in this project: a script of the repository
(`python train_hf.py ...`, also behind `accelerate launch ...` or `torchrun ...`), a module of one of its packages
(`python -m xray_report.inference ...`) or a console script it installs (`xray-report ...`). Other programs
(`pip`, `bash`, `pytest`) are not ours and are skipped. Each distinct entry point runs once, in its own process,
with `--help` and no network.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
BASH_BLOCK = re.compile(r"^```(?:bash|sh|shell)[ \t]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
PYTHON = re.compile(r"^(?:.*/)?python(?:3(?:\.\d+)?)?$")  # python, python3, .venv/bin/python, /usr/bin/python3.11
LAUNCHERS = {("accelerate", "launch"), ("accelerate-launch",), ("torchrun",)}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def console_scripts() -> dict[str, str]:
    """`name -> "module:function"` of the console scripts setup.cfg installs."""
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg", encoding="utf-8")
    lines = config.get("options.entry_points", "console_scripts", fallback="").strip().splitlines()
    return {name.strip(): target.strip() for name, target in (line.split("=", 1) for line in lines if "=" in line)}


def documented_commands() -> list[tuple[str, list[str]]]:
    """`(page name, tokens)` of every command in the pages' bash blocks (continuations joined, comments dropped)."""
    commands = []
    for page in PAGES:
        for block in BASH_BLOCK.findall(page.read_text(encoding="utf-8")):
            for line in re.sub(r"\\\n", " ", block).splitlines():
                try:
                    tokens = shlex.split(line, comments=True)
                except ValueError as error:
                    raise AssertionError(f"{page.name}: cannot parse the shell line {line!r}: {error}") from error
                command: list[str] = []
                for token in [*tokens, "&&"]:
                    if token in {"&&", "||", ";", "|"}:
                        if command:
                            commands.append((page.name, command))
                        command = []
                    else:
                        command.append(token)
    return commands


def _is_project_module(module: str) -> bool:
    top = module.split(".")[0]
    return (REPO_ROOT / top / "__init__.py").is_file() or (REPO_ROOT / f"{top}.py").is_file()


def _after_interpreter(arguments: list[str]) -> tuple[str, str] | None:
    """The script or module a `python`-like argument list runs, when it is the project's."""
    for index, token in enumerate(arguments):
        if token == "-m":
            module = arguments[index + 1] if index + 1 < len(arguments) else ""
            if (REPO_ROOT / f"{module}.py").is_file():  # `python -m train_hf` runs the script `train_hf.py`
                return ("script", f"{module}.py")
            return ("module", module) if _is_project_module(module) else None
        if token.endswith(".py"):
            return ("script", token) if (REPO_ROOT / token).is_file() else None
        if not token.startswith("-"):
            return None
    return None


def entry_point(tokens: list[str]) -> tuple[str, str] | None:
    """`("script" | "module" | "console", name)` of the project's entry point a command runs, or None."""
    while tokens and ENV_ASSIGNMENT.match(tokens[0]):
        tokens = tokens[1:]
    if not tokens:
        return None
    if PYTHON.match(tokens[0]):
        return _after_interpreter(tokens[1:])
    for launcher in LAUNCHERS:
        if tuple(tokens[: len(launcher)]) == launcher:
            # launcher options take values (`--num_processes 2`): the first script or `-m` names what runs
            rest = tokens[len(launcher):]
            start = next((i for i, token in enumerate(rest) if token.endswith(".py") or token == "-m"), None)
            return None if start is None else _after_interpreter(rest[start:])
    if tokens[0] in console_scripts():
        return ("console", tokens[0])
    return None


def documented_entry_points() -> dict[tuple[str, str], str]:
    """Each distinct entry point -> the first documented command that uses it (for the failure message)."""
    found: dict[tuple[str, str], str] = {}
    for page, tokens in documented_commands():
        point = entry_point(tokens)
        if point is not None:
            found.setdefault(point, f"{page}: {shlex.join(tokens)}")
    return found


ENTRY_POINTS = documented_entry_points()


def help_command(kind: str, name: str) -> list[str]:
    if kind == "script":
        return [sys.executable, str(REPO_ROOT / name), "--help"]
    if kind == "module":
        return [sys.executable, "-m", name, "--help"]
    module, function = console_scripts()[name].split(":")
    # what the installed wrapper does, without depending on the wrapper being (re)installed
    code = f"import sys; from {module} import {function} as main; sys.argv[0] = {name!r}; sys.exit(main())"
    return [sys.executable, "-c", code, "--help"]


def test_the_documented_commands_are_found() -> None:
    names = {name for _, name in ENTRY_POINTS}
    assert {"quickstart.py", "train_hf.py", "push_to_hub.py", "xray-report"} <= names, sorted(names)
    # `accelerate launch [options] train_hf.py` and `torchrun ... train_hf.py` name the script, not the launcher
    assert entry_point(shlex.split("accelerate launch --multi_gpu --num_processes 2 train_hf.py c.yaml")) == (
        "script", "train_hf.py")
    assert entry_point(shlex.split("torchrun --nproc_per_node 8 train_hf.py c.yaml")) == ("script", "train_hf.py")
    assert entry_point(shlex.split("HF_HUB_OFFLINE=1 .venv/bin/python -m xray_report.inference --model m x")) == (
        "module", "xray_report.inference")
    assert entry_point(shlex.split("python -m train_hf --help")) == ("script", "train_hf.py")
    assert entry_point(shlex.split("python -m pytest -q")) is None
    assert entry_point(shlex.split("pip install -e .[metrics]")) is None


@pytest.fixture(scope="module")
def help_outputs() -> dict[tuple[str, str], subprocess.CompletedProcess]:
    """Every entry point's `--help`, all started at once (each is mostly import time, so they share the cores)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    running = {point: subprocess.Popen(help_command(*point), cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True) for point in sorted(ENTRY_POINTS)}
    outputs = {}
    for point, process in running.items():
        try:
            stdout, stderr = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        outputs[point] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return outputs


@pytest.mark.parametrize(("kind", "name"), sorted(ENTRY_POINTS), ids=[name for _, name in sorted(ENTRY_POINTS)])
def test_entry_point_answers_help(kind: str, name: str, help_outputs) -> None:
    completed = help_outputs[(kind, name)]
    documented = ENTRY_POINTS[(kind, name)]
    assert completed.returncode == 0, f"`{name} --help` failed ({documented}):\n{completed.stderr[-3000:]}"
    assert re.search(r"^usage: ", completed.stdout, flags=re.MULTILINE), (
        f"`{name} --help` printed no usage line ({documented}):\n{completed.stdout[:2000]}"
    )
