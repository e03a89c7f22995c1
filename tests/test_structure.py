"""The code's shape: no import cycles, and nothing private crosses the package line."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(path: Path) -> list[tuple[str, str | None]]:
    """``(module, name)`` for every import in the file, function-level ones included."""
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node.module, alias.name) for alias in node.names]
    return out


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        for target, name in imports(path):
            for candidate in (f"{target}.{name}" if name else None, target):
                while candidate and candidate not in mods:
                    candidate = candidate.rpartition(".")[0]
                if candidate and candidate != module and not module.startswith(candidate + "."):
                    graph[module].add(candidate)
                    break
    return graph


def test_no_import_cycles():
    """Every module's imports, including those inside functions, form no cycle."""
    graph = import_graph()
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_agents_use_only_public_names_of_the_env_package():
    private = []
    for module, path in modules().items():
        if not module.startswith("nchain_agents"):
            continue
        for target, name in imports(path):
            if target.startswith("nchain_gym") and (
                any(part.startswith("_") for part in target.split("."))
                or (name is not None and name.startswith("_"))
            ):
                private.append(f"{module}: from {target} import {name}")
    assert private == []
