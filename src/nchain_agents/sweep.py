"""Hyperparameter and environment sweeps: agents x grid x env parameters x seeds.

Each cell trains one agent ``trials`` times on one env setting and plays one greedy
game per trial (a one-agent tournament); the cell's seed is part of the cell, so a
sweep gives the same table on the local backend and on Ray. Cells run as jobs of
:func:`nchain_agents.distributed.run_jobs`: on Ray, one task per cell, retried a
bounded number of times; a cell that still fails is reported in the table with its
error, and the other cells complete.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nchain_agents.errors import InvalidArgumentError
from nchain_agents.registry import default_registry


@dataclass(frozen=True)
class Cell:
    """One point of the sweep (picklable, so Ray can ship it)."""

    agent: str
    hyperparameters: dict[str, Any]
    env_kwargs: dict[str, Any]
    seed: int
    trials: int
    episodes: int | None
    env_id: str


def run_cell(cell: Cell) -> dict[str, Any]:
    """Run one cell; the measured part of its row."""
    from nchain_agents.tournament import tournament

    result = tournament(
        [cell.agent],
        trials=cell.trials,
        episodes=cell.episodes,
        seed=cell.seed,
        env_id=cell.env_id,
        env_kwargs=cell.env_kwargs,
        hyperparameters={cell.agent: cell.hyperparameters},
    )
    low, high = result.total_intervals()[0]
    mean = float(result.mean_totals[0])
    optimum = result.optimum
    return {
        "mean_total": mean,
        "mean_total_ci95": [float(low), float(high)],
        "optimum": optimum,
        "regret": None if optimum is None else optimum - mean,
        "fraction_of_optimum": None if not optimum else mean / optimum,
        "totals": result.totals[:, 0].tolist(),
    }


@dataclass(frozen=True)
class SweepResult:
    """One row per cell, in grid order; failed cells carry ``status="failed"`` and ``error``."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row["status"] != "ok"]

    def to_dict(self) -> dict[str, Any]:
        return {"cells": len(self.rows), "failed": len(self.failed), "rows": self.rows}


def _values(name: str, values: Any) -> list[Any]:
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    if not values:
        raise InvalidArgumentError(f"grid entry {name!r} has no values")
    for value in values:
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise InvalidArgumentError(
                f"grid entry {name!r} has a value {value!r} that is not plain"
            )
    return values


def check_cells(cells: Sequence[Cell]) -> None:
    """Build every distinct agent setting and env setting once, so that a bad value
    (``learning_rate="abc"``, ``n=1``) is refused before any cell runs."""
    from nchain_agents.registry import load_agent
    from nchain_agents.tournament import make_env

    envs: dict[tuple, Any] = {}
    checked: set[tuple] = set()
    for cell in cells:
        env_key = (cell.env_id, tuple(sorted(cell.env_kwargs.items())))
        if env_key not in envs:
            envs[env_key] = make_env(cell.env_id, cell.env_kwargs)
        key = (cell.agent, tuple(sorted(cell.hyperparameters.items())), env_key)
        if key not in checked:
            checked.add(key)
            load_agent(cell.agent, **cell.hyperparameters).check_env(envs[env_key])


def expand(
    agents: Sequence[str],
    grid: Mapping[str, Any] | None,
    env_grid: Mapping[str, Any] | None,
    seeds: Sequence[int],
    trials: int,
    episodes: int | None,
    env_id: str,
) -> list[Cell]:
    """The cells of a sweep, in a fixed order: agent, hyperparameters, env setting, seed.

    A hyperparameter in ``grid`` applies to the agents that have it and is ignored
    by the others; a name no agent has is an error.
    """
    from nchain_gym.dynamics import is_whole_number

    registry = default_registry()
    grid = {k: _values(k, v) for k, v in (grid or {}).items()}
    env_grid = {k: _values(k, v) for k, v in (env_grid or {}).items()}
    if isinstance(agents, str) or not agents:
        raise InvalidArgumentError(f"agents must be a non-empty list of names, got {agents!r}")
    if isinstance(seeds, (str, int)) or not seeds:
        raise InvalidArgumentError(f"seeds must be a non-empty list of seeds, got {seeds!r}")
    bad_seeds = [s for s in seeds if not is_whole_number(s, 0)]
    if bad_seeds or len(set(seeds)) != len(seeds):
        raise InvalidArgumentError(f"seeds must be distinct integers >= 0, got {list(seeds)!r}")
    if not is_whole_number(trials, 1):
        raise InvalidArgumentError(f"trials must be an integer >= 1, got {trials!r}")
    if episodes is not None and not is_whole_number(episodes, 0):
        raise InvalidArgumentError(f"episodes must be None or an integer >= 0, got {episodes!r}")
    if "seed" in grid:
        raise InvalidArgumentError("sweep seeds with seeds=[...], not a 'seed' grid entry")
    accepted: dict[str, list[str]] = {}
    for agent in agents:
        names = set(registry.agent_class(agent).hyperparameter_docs()) - {"seed"}
        accepted[agent] = sorted(names & set(grid))
    unused = sorted(set(grid) - {k for keys in accepted.values() for k in keys})
    if unused:
        valid = sorted(
            {k for a in agents for k in registry.agent_class(a).hyperparameter_docs()} - {"seed"}
        )
        raise InvalidArgumentError(
            f"no agent in the sweep has hyperparameter(s) {unused}; valid: {', '.join(valid)}"
        )
    cells = []
    env_keys = list(env_grid)
    for agent in agents:
        keys = accepted[agent]
        for hp_values in itertools.product(*(grid[k] for k in keys)):
            for env_values in itertools.product(*(env_grid[k] for k in env_keys)):
                for seed in seeds:
                    cells.append(
                        Cell(
                            agent,
                            dict(zip(keys, hp_values, strict=True)),
                            dict(zip(env_keys, env_values, strict=True)),
                            int(seed),
                            trials,
                            episodes,
                            env_id,
                        )
                    )
    return cells


def sweep(
    agents: Sequence[str],
    grid: Mapping[str, Any] | None = None,
    env_grid: Mapping[str, Any] | None = None,
    seeds: Sequence[int] = (0,),
    trials: int = 10,
    episodes: int | None = None,
    env_id: str = "NChain-v0",
    backend: str = "local",
    address: str | None = None,
    workers: int = 1,
    max_retries: int = 2,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    timeout: float | None = None,
) -> SweepResult:
    """Sweep agents x hyperparameter grid x env parameters x seeds.

    Args:
        agents: registry names.
        grid: ``{hyperparameter: [values]}``, applied to the agents that have it.
        env_grid: ``{env keyword: [values]}`` for ``gym.make(env_id, ...)``.
        seeds: one cell per seed; each cell's trials are seeded from it.
        trials: trials per cell (one trained agent and one greedy game each).
        episodes: training episodes (``None``: the agent's default).
        env_id: the Gymnasium id.
        backend: ``"local"`` or ``"ray"``; ``address`` picks a Ray cluster.
        workers: threads for the local backend.
        max_retries: extra attempts for a failing cell before it is reported.
        progress: called as ``progress(done, cells, row)`` as each cell finishes.
        timeout: seconds one cell may take (all its attempts); a cell that takes longer
            is reported as failed and the sweep goes on. ``None``: no limit.

    Bad input (unknown agents or names, bad values, envs that cannot be made) is
    refused before any cell runs.
    """
    from nchain_agents.distributed import (
        JobFailure,
        check_backend,
        check_timeout,
        check_workers,
        run_jobs,
    )

    check_backend(backend)
    workers = check_workers(workers)
    timeout = check_timeout(timeout)
    cells = expand(agents, grid, env_grid, seeds, trials, episodes, env_id)
    check_cells(cells)
    if backend == "local":
        for name in dict.fromkeys(agents):  # heavy imports once, before worker threads
            default_registry().agent_class(name).prepare()
    rows: list[dict[str, Any] | None] = [None] * len(cells)
    done = 0

    def make_row(cell: Cell, result: Any) -> dict[str, Any]:
        row = {
            "agent": cell.agent,
            "hyperparameters": cell.hyperparameters,
            "env_id": cell.env_id,
            "env_kwargs": cell.env_kwargs,
            "seed": cell.seed,
            "trials": cell.trials,
            "episodes": cell.episodes,
        }
        if isinstance(result, JobFailure):
            row.update(status="failed", error=result.error, attempts=result.attempts)
        else:
            row.update(status="ok", error=None, **result)
        return row

    def on_result(index: int, result: Any) -> None:
        nonlocal done
        row = rows[index] = make_row(cells[index], result)
        done += 1
        if progress is not None:
            progress(done, len(cells), row)

    run_jobs(
        run_cell,
        cells,
        backend=backend,
        workers=workers,
        address=address,
        max_retries=max_retries,
        on_result=on_result,
        timeout=timeout,
    )
    return SweepResult([row for row in rows if row is not None])
