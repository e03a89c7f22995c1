"""Test helpers shared by several test modules."""

from __future__ import annotations

import os
import subprocess
import sys
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


def run_checked(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run`` that, on a non-zero exit, fails with the command's whole output."""
    kwargs.setdefault("timeout", 600)
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, command))} exited with {result.returncode}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
        )
    return result


def child_venv(root: Path, extra_paths: tuple[Path, ...] = ()) -> Path:
    """A fresh venv that sees the packages of the running interpreter, but not its projects.

    ``venv --system-site-packages`` would expose the *base* interpreter's packages, which
    inside a venv are not the ones the tests run with (no hatchling, no gymnasium). Instead
    the child gets a ``.pth`` file listing the running interpreter's site directories as
    plain paths: their packages import, while their ``.pth`` files (editable installs of
    this very project among them) are not processed; ``extra_paths`` are added before
    them. Returns the child's python.
    """
    run_checked([sys.executable, "-m", "venv", "--without-pip", str(root)])
    python = root / ("Scripts" if os.name == "nt" else "bin") / "python"
    purelib = run_checked(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
    ).stdout.strip()
    parents = [
        entry
        for entry in sys.path
        if entry and Path(entry).name in ("site-packages", "dist-packages") and Path(entry).is_dir()
    ]
    lines = [str(p) for p in extra_paths] + parents
    (Path(purelib) / "_parent_site.pth").write_text("\n".join(lines) + "\n")
    return python


def rewrite(src, dst, *, manifest=None, replace=None, add=None, drop=()):
    """Copy a saved agent zip to ``dst``, changing its manifest (a function of the parsed
    manifest) or entries (``replace``/``add`` by name, ``drop`` names)."""
    import json
    import zipfile

    replace, add = replace or {}, add or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            if item.filename in drop:
                continue
            data = zin.read(item)
            if item.filename == "manifest.json" and manifest is not None:
                data = json.dumps(manifest(json.loads(data))).encode()
            zout.writestr(item.filename, replace.get(item.filename, data))
        for name, data in add.items():
            zout.writestr(name, data)
    return dst
