"""The README stays true: its set-up commands are what CI runs, and every example runs."""

from __future__ import annotations

import os
import re
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import run_checked

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\w*)\n(?P<body>.*?)^(?P=indent)```", re.S | re.M)

# The one command the suite cannot run: it is the command that runs the suite (CI runs it).
TEST_COMMAND = 'python -m pip install -e ".[test]" && python -m pytest'
# The install half of the main-job command is what made this environment; the rest runs.
INSTALL_PREFIX = "python -m pip install -e . && "

# Same commands, smaller budgets: (text in the README, text the test runs).
REDUCED = [
    ("--set learning_rate=0.002 --episodes 300", "--set learning_rate=0.002 --episodes 3"),
    ("eps.zip --episodes 20", "eps.zip --episodes 3"),
    ("q-table keras-dqn --trials 20", "q-table keras-dqn --trials 2 --episodes 3"),
    ("--seeds 0 1 2 --trials 20", "--seeds 0 1 --trials 2 --episodes 3"),
    ("trials=100, seed=0, workers=2", "trials=10, seed=0, workers=2"),
    ("tournament(trials=2000, seed=0", "tournament(trials=20, episodes=20, seed=0"),
    ("seeds=[0, 1, 2], trials=50", "seeds=[0], trials=2, episodes=20"),
    ("nchain compare --all", "nchain compare --all --trials 2 --episodes 3"),
    ("nchain tutorial -o tutorial.html", "nchain tutorial --quick --force -o tutorial.html"),
]


def readme_blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    return [(m["lang"], textwrap.dedent(m["body"])) for m in FENCE.finditer(text)]


def reduce(code: str) -> str:
    for original, smaller in REDUCED:
        code = code.replace(original, smaller)
    return code


def shell_commands(block: str) -> list[str]:
    """One command per logical line: continuations joined, trailing comments dropped."""
    joined = block.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        command = re.split(r"\s#\s", line, maxsplit=1)[0].strip()
        if command and not command.startswith("#"):
            commands.append(command)
    return commands


def test_ci_runs_exactly_the_readme_test_command():
    readme = README.read_text()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    command = ci_lines[-1]
    assert command == TEST_COMMAND
    assert f"\n{command}\n" in readme


def test_every_reduction_applies():
    """A reduction that no longer matches would let a README example run at full size."""
    text = README.read_text()
    missing = [original for original, _ in REDUCED if original not in text]
    assert missing == []


@pytest.mark.slow
def test_every_readme_example_runs(tmp_path):
    """Every shell command (in order, in one directory, as a reader would type them) and
    every Python snippet (each on its own, as a reader would paste it) of the README."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # Snippets that use the example plugin find it as if it were installed.
    env["PYTHONPATH"] = str(ROOT / "examples" / "plugin" / "src")
    env.pop("NCHAIN_AGENTS_PLUGINS", None)
    counts = {"bash": 0, "python": 0, "toml": 0, "text": 0}  # text: a listing, nothing to run
    for number, (lang, body) in enumerate(readme_blocks()):
        assert lang in counts, f"README block {number} has an untested language {lang!r}"
        counts[lang] += 1
        if lang == "toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover
                import tomli as tomllib
            tomllib.loads(body)
        elif lang == "python":
            script = tmp_path / f"readme_block_{number}.py"
            script.write_text(reduce(body))
            run_checked([sys.executable, str(script)], cwd=tmp_path, env=env)
        elif lang == "bash":
            for command in shell_commands(body):
                if command == TEST_COMMAND:
                    continue
                command = reduce(command.removeprefix(INSTALL_PREFIX))
                run_checked(["bash", "-c", command], cwd=tmp_path, env=env)
    assert counts["bash"] >= 3 and counts["python"] >= 6
    assert (tmp_path / "eps.zip").exists() and (tmp_path / "result.png").exists()


@pytest.mark.slow
def test_the_four_learner_example_prints_the_readme_tables():
    """``examples/four_learners.py`` (which reproduces the README's four-learner
    section) runs, here at a tiny budget, and prints both tables in the README's shape."""
    import subprocess

    script = ROOT / "examples" / "four_learners.py"
    args = ["--trials", "3", "--seeds", "2", "--episodes", "3"]
    out = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, check=True
    ).stdout
    readme = README.read_text()
    for header in (
        "| agent | win share [95 % CI] | mean game total [95 % CI] | of optimum |",
        "| state | seed 0 |",
    ):
        assert header in out
        assert header.split(" [")[0].split(" | seed")[0] in readme
    for name in ("naive-sum", "q-table", "eps-greedy-q-table", "keras-dqn"):
        assert f"| `{name}` |" in out
