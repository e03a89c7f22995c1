"""Test helpers shared by several test modules."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_distribution(
    root: Path,
    name: str,
    version: str,
    entry_points: dict[str, str],
    modules: dict[str, str],
) -> Path:
    """A real installed-looking distribution: ``*.dist-info`` with entry_points.txt + modules."""
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = ["[nchain_agents]", *(f"{k} = {v}" for k, v in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for filename, source in modules.items():
        (root / filename).write_text(textwrap.dedent(source))
    return root
