"""The tutorial's tournament: train several agents per trial, play one greedy game each.

For each trial, every agent is trained from scratch (its own seed, its own env);
then the trained agents play one greedy game each (one full episode with
``deterministic=True``), one after another on one game env whose random stream runs
on from game to game, exactly as the tutorial's ``test_methods`` plays them: each
agent meets its own slips. The agent with the highest game total wins the trial,
ties going to the agent listed first (``np.argmax``). Seeds come from
``numpy.random.SeedSequence(seed)``, one child per trial and one grandchild per agent
(plus one for the game env), so a trial's result never depends on how many workers
ran it or in which order.

``common_random_numbers=True`` is a different experiment: every agent's game
restarts the game env from the same seed, so agents with the same policy meet the
same slips and tie (and every tie goes to the earlier agent).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nchain_agents.base import check_batch_size
from nchain_agents.errors import InvalidArgumentError, JobsFailedError
from nchain_agents.evaluation import normal_quantile, sem
from nchain_agents.experiments.trials import Trial, TrialPlan, make_env, play_batch, trial_seeds
from nchain_agents.registry import default_registry, load_agent

DEFAULT_AGENTS = ("naive-sum", "q-table", "eps-greedy-q-table")
"""The tutorial's tournament: its three tables."""
LEARNERS = (*DEFAULT_AGENTS, "keras-dqn")
"""Every built-in learner: the tutorial's three tables and its Keras DQN."""

Progress = Callable[[int, int], None]
"""Called as ``progress(trials_done, trials)`` from the calling thread."""


@dataclass(frozen=True)
class TournamentResult:
    """Everything a tournament measured.

    Attributes:
        agents: the agents, in tie-breaking order.
        totals: greedy-game totals, shape ``(trials, len(agents))``.
        optimum: expected game total of the optimal stationary policy (from the
            env's exact solver), or ``None`` when the env has no model.
        seed, episodes, env_id, env_kwargs: how it was run.
        optimal_policies: per trial and agent, whether the trained agent's greedy
            policy earns the optimal expected game total, shape ``(trials, len(agents))``;
            ``None`` when the env has no model.
    """

    agents: tuple[str, ...]
    totals: np.ndarray
    optimum: float | None
    seed: int | None
    episodes: int | None
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    optimal_policies: np.ndarray | None = None

    @property
    def trials(self) -> int:
        return int(self.totals.shape[0])

    @property
    def winners(self) -> np.ndarray:
        """Index of each trial's winner (ties to the earlier agent)."""
        return np.argmax(self.totals, axis=1)

    @property
    def wins(self) -> np.ndarray:
        return np.bincount(self.winners, minlength=len(self.agents))

    @property
    def shares(self) -> np.ndarray:
        return self.wins / self.trials

    def share_intervals(self, level: float = 0.95) -> np.ndarray:
        """Wilson score intervals of the win shares, shape ``(len(agents), 2)``."""
        z = normal_quantile(level)
        n = self.trials
        p = self.shares
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return np.stack([centre - half, centre + half], axis=1)

    @property
    def mean_totals(self) -> np.ndarray:
        return self.totals.mean(axis=0)

    def total_intervals(self, level: float = 0.95) -> np.ndarray:
        """Normal-approximation intervals of the mean game totals, shape ``(len(agents), 2)``."""
        half = normal_quantile(level) * np.array([sem(col) for col in self.totals.T])
        return np.stack([self.mean_totals - half, self.mean_totals + half], axis=1)

    @property
    def regrets(self) -> np.ndarray | None:
        """``optimum - mean total`` per agent."""
        return None if self.optimum is None else self.optimum - self.mean_totals

    @property
    def fractions_of_optimum(self) -> np.ndarray | None:
        """``mean total / optimum`` per agent."""
        return None if not self.optimum else self.mean_totals / self.optimum

    @property
    def optimal_policy_shares(self) -> np.ndarray | None:
        """Per agent, the share of trials whose trained greedy policy is optimal."""
        if self.optimal_policies is None:
            return None
        return self.optimal_policies.mean(axis=0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (per-trial totals included)."""
        shares_ci = self.share_intervals()
        totals_ci = self.total_intervals()
        regrets = self.regrets
        fractions = self.fractions_of_optimum
        optimal = self.optimal_policy_shares
        return {
            "agents": list(self.agents),
            "trials": self.trials,
            "episodes": self.episodes,
            "seed": self.seed,
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "optimum": self.optimum,
            "results": [
                {
                    "agent": name,
                    "wins": int(self.wins[i]),
                    "share": float(self.shares[i]),
                    "share_ci95": [float(x) for x in shares_ci[i]],
                    "mean_total": float(self.mean_totals[i]),
                    "mean_total_ci95": [float(x) for x in totals_ci[i]],
                    "regret": None if regrets is None else float(regrets[i]),
                    "fraction_of_optimum": None if fractions is None else float(fractions[i]),
                    "optimal_policy_share": None if optimal is None else float(optimal[i]),
                }
                for i, name in enumerate(self.agents)
            ],
            "totals": self.totals.tolist(),
        }


def _check_agents(
    agents: Sequence[str], hyperparameters: dict[str, dict[str, Any]] | None
) -> tuple[tuple[str, ...], dict[str, dict[str, Any]]]:
    """The agents (registered, each once) and their keyword overrides (no ``seed``)."""
    agents = tuple(agents)
    if not agents:
        raise InvalidArgumentError("a tournament needs at least one agent")
    registry = default_registry()
    for name in agents:
        registry.get(name)  # UnknownAgentError with suggestions, before any work
    if len(set(agents)) != len(agents):
        raise InvalidArgumentError(f"each agent may take part once, got {list(agents)}")
    hyperparameters = dict(hyperparameters or {})
    stray = sorted(set(hyperparameters) - set(agents))
    if stray:
        raise InvalidArgumentError(
            f"hyperparameters given for agents not in the tournament: {stray}"
        )
    for name, values in hyperparameters.items():
        if not isinstance(values, dict):
            raise InvalidArgumentError(
                f"hyperparameters[{name!r}] must be a dict of keyword values, got {values!r}"
            )
        if "seed" in values:
            raise InvalidArgumentError(
                f"hyperparameters[{name!r}] sets 'seed': a tournament seeds every agent of "
                "every trial from its own seed argument"
            )
    return agents, hyperparameters


def tournament(
    agents: Sequence[str] = DEFAULT_AGENTS,
    trials: int = 100,
    episodes: int | None = None,
    seed: int | None = 0,
    workers: int = 1,
    env_id: str = "NChain-v0",
    env_kwargs: dict[str, Any] | None = None,
    hyperparameters: dict[str, dict[str, Any]] | None = None,
    progress: Progress | None = None,
    backend: str = "local",
    address: str | None = None,
    trials_per_task: int | None = None,
    common_random_numbers: bool = False,
    timeout: float | None = None,
    batch_size: int | None = None,
) -> TournamentResult:
    """Run the tutorial's tournament.

    Args:
        agents: registry names, in tie-breaking order (default: the three tabular agents).
        trials: number of trials (the tutorial ran 100).
        episodes: training episodes per agent; ``None`` uses each agent's default.
        seed: master seed; ``None`` for fresh entropy.
        workers: threads running trials at once on the local backend (the compiled
            paths release the GIL).
        env_id, env_kwargs: the environment, made with ``gym.make``.
        hyperparameters: per-agent keyword overrides, e.g. ``{"q-table": {"gamma": 0.9}}``.
        progress: called as ``progress(done, trials)`` as trials finish.
        backend: ``"local"`` (threads) or ``"ray"`` (tasks; see :mod:`nchain_agents.experiments.jobs`).
        address: Ray cluster address (default: ``RAY_ADDRESS`` or a local Ray).
        trials_per_task: trials in one job (default: locally, one per trial, or, when
            an agent trains in batches (keras-dqn), an equal share per worker; on Ray,
            enough for about 32 tasks, so task overhead stays small). A job trains its
            trials' agents of a kind together: batched where the agent can.
        common_random_numbers: ``False`` (default, the tutorial's experiment): the
            games of a trial are played in turn on one env whose random stream runs
            on, so each agent meets its own slips. ``True``: every game restarts from
            the same seed, so agents of a trial meet the same slips, identical
            policies tie, and ties go to the earlier agent (a different experiment).
        timeout: seconds one job (a batch of trials) may take; ``None``: no limit.
        batch_size: most agents of one kind trained at once in a batched loop
            (``None``: the agent class chooses from the work and the machine's memory).

    Raises:
        InvalidArgumentError, UnknownAgentError, HyperparameterError, SpaceMismatchError:
            bad input, found before any work starts.
        JobsFailedError: a trial failed or timed out.

    Agents with a fused NChain path use it automatically on the registered NChain-v0;
    the same seed gives the same result whatever the backend and ``workers``.
    """
    from nchain_agents.experiments.jobs import (
        JobFailure,
        check_backend,
        check_timeout,
        check_workers,
        run_jobs,
    )
    from nchain_gym import episode_optimum
    from nchain_gym.dynamics import is_whole_number

    check_backend(backend)
    agents, hyperparameters = _check_agents(agents, hyperparameters)
    if not is_whole_number(trials, 1):
        raise InvalidArgumentError(f"trials must be an integer >= 1, got {trials!r}")
    workers = check_workers(workers)
    timeout = check_timeout(timeout)
    if episodes is not None and not is_whole_number(episodes, 0):
        raise InvalidArgumentError(f"episodes must be None or an integer >= 0, got {episodes!r}")
    if trials_per_task is not None and not is_whole_number(trials_per_task, 1):
        raise InvalidArgumentError(
            f"trials_per_task must be None or an integer >= 1, got {trials_per_task!r}"
        )
    batch_size = check_batch_size(batch_size)
    registry = default_registry()
    env_kwargs = dict(env_kwargs or {})
    env = make_env(env_id, env_kwargs)
    for name in agents:  # hyperparameters and spaces, checked before any work
        load_agent(name, **hyperparameters.get(name, {})).check_env(env)
    best = episode_optimum(env)
    optimum = best.expected_return
    trials = int(trials)
    plan = TrialPlan(
        agents,
        episodes,
        env_id,
        env_kwargs,
        hyperparameters,
        trial_seeds(seed, trials, len(agents)),
        bool(common_random_numbers),
        batch_size,
        best,
    )
    if backend == "local":
        for name in agents:  # heavy imports once, here, before worker threads start
            registry.agent_class(name).prepare()
    size = trials_per_task or _job_size(agents, trials, workers, backend)
    batches = [list(range(i, min(i + size, trials))) for i in range(0, trials, size)]
    done = 0

    def on_result(index: int, result: Any) -> None:
        nonlocal done
        done += len(batches[index])
        if progress is not None and not isinstance(result, JobFailure):
            progress(done, trials)

    results = run_jobs(
        play_batch,
        [(plan, batch) for batch in batches],
        backend=backend,
        workers=workers,
        address=address,
        max_retries=0 if backend == "local" else 2,
        on_result=on_result,
        timeout=timeout,
    )
    played: list[Trial] = []
    for batch, result in zip(batches, results, strict=True):
        if isinstance(result, JobFailure):
            raise JobsFailedError(
                f"trials {batch[0]}-{batch[-1]} failed after {result.attempts} attempt(s): "
                f"{result.error}"
            )
        played.extend(result)
    totals = np.array([trial.totals for trial in played], dtype=np.float64)
    if not all(math.isfinite(x) for x in totals.ravel()):
        raise JobsFailedError("a game returned a non-finite total (did rewards overflow?)")
    flags = [trial.optimal for trial in played]
    optimal = None if any(f is None for f in flags) else np.array(flags, dtype=bool)
    return TournamentResult(
        agents, totals, optimum, seed, episodes, env_id, env_kwargs, optimal_policies=optimal
    )


def _job_size(agents: tuple[str, ...], trials: int, workers: int, backend: str) -> int:
    """Trials per job: about 32 Ray tasks; locally one trial per job, unless an agent
    trains in batches, whose batches are then one per worker (each job trains its
    trials' agents together)."""
    if backend != "local":
        return max(1, math.ceil(trials / 32))
    from nchain_agents.fused import trains_in_batches

    registry = default_registry()
    if any(trains_in_batches(registry.agent_class(name)) for name in agents):
        return max(1, math.ceil(trials / workers))
    return 1
