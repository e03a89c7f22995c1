"""Hyperparameter and environment sweeps: agents x grid x env parameters x seeds.

Each cell plays ``trials`` trials of one agent on one env setting through the same
primitive as tournaments (:func:`nchain_agents.experiments.trials.play_trials`); the
cell's seed is part of the cell, so a
sweep gives the same table on the local backend and on Ray. Cells run as jobs of
:func:`nchain_agents.experiments.jobs.run_jobs`: on Ray, one task per cell, retried a
bounded number of times; a cell that still fails is reported in the table with its
error, and the other cells complete.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nchain_agents.errors import InvalidArgumentError
from nchain_agents.evaluation import normal_quantile, sem
from nchain_agents.experiments.jobs import JobFailure
from nchain_agents.experiments.trials import TrialPlan, make_env, play_trials, trial_seeds
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


@dataclass(frozen=True)
class CellStats:
    """What a cell measured: its greedy-game totals and their summary."""

    totals: list[float]
    mean_total: float
    mean_total_ci95: tuple[float, float]
    optimum: float | None

    @property
    def regret(self) -> float | None:
        return None if self.optimum is None else self.optimum - self.mean_total

    @property
    def fraction_of_optimum(self) -> float | None:
        return None if not self.optimum else self.mean_total / self.optimum


def run_cell(cell: Cell) -> CellStats:
    """Run one cell: its trials of one agent, through the same primitive as tournaments."""
    from nchain_gym import episode_optimum

    best = episode_optimum(make_env(cell.env_id, cell.env_kwargs))
    plan = TrialPlan(
        (cell.agent,),
        cell.episodes,
        cell.env_id,
        cell.env_kwargs,
        {cell.agent: cell.hyperparameters},
        trial_seeds(cell.seed, cell.trials, 1),
        optimum=best,
    )
    totals = [trial.totals[0] for trial in play_trials(plan, range(cell.trials))]
    mean = float(np.mean(totals))
    half = normal_quantile(0.95) * sem(totals)
    return CellStats(totals, mean, (mean - half, mean + half), best.expected_return)


@dataclass(frozen=True)
class SweepRow:
    """One cell of a sweep and what it measured (``status`` ``"ok"``) or why it failed.

    Attributes:
        agent, hyperparameters, env_id, env_kwargs, seed, trials, episodes: the cell.
        status: ``"ok"`` or ``"failed"``.
        error, attempts: why and after how many attempts a failed cell failed.
        stats: the measurements of an ``"ok"`` cell.
    """

    agent: str
    hyperparameters: dict[str, Any]
    env_id: str
    env_kwargs: dict[str, Any]
    seed: int
    trials: int
    episodes: int | None
    status: str
    error: str | None = None
    attempts: int | None = None
    stats: CellStats | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def settings(self) -> dict[str, Any]:
        """The swept hyperparameters and env keywords of this cell, together."""
        return {**self.hyperparameters, **self.env_kwargs}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready row (the measured fields only for an ``"ok"`` cell)."""
        row: dict[str, Any] = {
            "agent": self.agent,
            "hyperparameters": self.hyperparameters,
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "seed": self.seed,
            "trials": self.trials,
            "episodes": self.episodes,
            "status": self.status,
            "error": self.error,
        }
        if self.stats is None:
            row["attempts"] = self.attempts
            return row
        stats = self.stats
        row.update(
            mean_total=stats.mean_total,
            mean_total_ci95=list(stats.mean_total_ci95),
            optimum=stats.optimum,
            regret=stats.regret,
            fraction_of_optimum=stats.fraction_of_optimum,
            totals=stats.totals,
        )
        return row


@dataclass(frozen=True)
class SweepResult:
    """One row per cell, in grid order."""

    rows: list[SweepRow] = field(default_factory=list)

    @property
    def failed(self) -> list[SweepRow]:
        return [row for row in self.rows if not row.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cells": len(self.rows),
            "failed": len(self.failed),
            "rows": [row.to_dict() for row in self.rows],
        }


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
    progress: Callable[[int, int, SweepRow], None] | None = None,
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
    from nchain_agents.experiments.jobs import check_backend, check_timeout, check_workers, run_jobs

    check_backend(backend)
    workers = check_workers(workers)
    timeout = check_timeout(timeout)
    cells = expand(agents, grid, env_grid, seeds, trials, episodes, env_id)
    check_cells(cells)
    if backend == "local":
        for name in dict.fromkeys(agents):  # heavy imports once, before worker threads
            default_registry().agent_class(name).prepare()
    rows: list[SweepRow | None] = [None] * len(cells)
    done = 0

    def make_row(cell: Cell, result: Any) -> SweepRow:
        failed = isinstance(result, JobFailure)
        return SweepRow(
            cell.agent, cell.hyperparameters, cell.env_id, cell.env_kwargs, cell.seed,
            cell.trials, cell.episodes,
            status="failed" if failed else "ok",
            error=result.error if failed else None,
            attempts=result.attempts if failed else None,
            stats=None if failed else result,
        )  # fmt: skip

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
