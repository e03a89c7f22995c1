"""What a plain install pulls in: TensorFlow only with the keras extra."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def names(requirements):
    import re

    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_plain_install_has_no_tensorflow():
    core = names(project()["dependencies"])
    assert core >= {"gymnasium", "numpy", "pluggy"}
    assert not core & {"tensorflow", "keras", "tf-keras", "torch", "ray", "matplotlib"}


def test_keras_extra_and_test_extra():
    extras = project()["optional-dependencies"]
    assert names(extras["keras"]) == {"tensorflow", "keras"}
    assert "nchain-rl[keras,plot,ray]" in extras["test"]
