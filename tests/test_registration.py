"""gym.make("NChain-v0") in a fresh interpreter that never imports nchain_gym."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from helpers import child_venv, run_checked

ROOT = Path(__file__).resolve().parents[1]
PROBE = (
    "import sys, gymnasium as gym\n"
    "env = gym.make('NChain-v0')\n"
    "print(env.reset(seed=0)[0], env.spec.max_episode_steps, 'nchain_gym' in sys.modules)\n"
)


def run_python(code, python=sys.executable, env_extra=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "NCHAIN_GYM_NO_AUTOREGISTER"}
    env.update(env_extra or {})
    return subprocess.run(
        [python, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def test_make_without_importing_nchain_gym(tmp_path):
    result = run_python(PROBE, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1000", "True"]


def test_opt_out_variable(tmp_path):
    result = run_python(PROBE, env_extra={"NCHAIN_GYM_NO_AUTOREGISTER": "1"}, cwd=tmp_path)
    assert result.returncode != 0
    assert "NChain" in result.stderr and "doesn't exist" in result.stderr
    # Importing the package by hand still registers it.
    result = run_python(
        "import nchain_gym, gymnasium as gym; print(gym.make('NChain-v0').reset(seed=0)[0])",
        env_extra={"NCHAIN_GYM_NO_AUTOREGISTER": "1"},
        cwd=tmp_path,
    )
    assert result.stdout.strip() == "0", result.stderr


def test_hook_imports_neither_gymnasium_nor_numpy(tmp_path):
    result = run_python(
        "import sys\n"
        "mods = ('gymnasium', 'numpy', 'nchain_gym')\n"
        "hook = '_nchain_gym_autoregister' in sys.modules\n"
        "print(sorted(m for m in mods if m in sys.modules), hook)",
        cwd=tmp_path,
    )
    assert result.stdout.strip() == "[] True", result.stderr


def test_importing_gymnasium_submodule_first_also_registers(tmp_path):
    result = run_python(
        "from gymnasium.spaces import Discrete\nimport gymnasium as gym\n"
        "print(gym.make('NChain-v0').unwrapped.n)",
        cwd=tmp_path,
    )
    assert result.stdout.strip() == "5", result.stderr


@pytest.mark.slow
def test_regular_install_into_a_venv(tmp_path):
    """`pip install .` (not editable) ships the hook too: install into a fresh venv."""
    venv = tmp_path / "venv"
    python = str(child_venv(venv))
    run_checked(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(ROOT)],
        cwd=tmp_path,
    )
    code = PROBE + (
        "import nchain_gym, _nchain_gym_autoregister as hook\n"
        "print(nchain_gym.__file__)\nprint(hook.__file__)\n"
    )
    result = run_python(code, python=python, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    first, pkg_file, hook_file = result.stdout.splitlines()
    assert first.split() == ["0", "1000", "True"]
    venv_site = sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    assert Path(pkg_file).is_relative_to(venv_site)
    assert Path(hook_file).is_relative_to(venv_site)
