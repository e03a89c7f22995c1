"""Playing trials: the one primitive of tournaments and sweeps.

A trial trains every agent of a :class:`TrialPlan` from scratch (its own seed, its own
env), then the trained agents play one greedy game each (one full episode with
``deterministic=True``), one after another on one game env whose random stream runs on
from game to game, exactly as the tutorial's ``test_methods`` plays them: each agent
meets its own slips. Seeds come from ``numpy.random.SeedSequence(seed)``, one child per
trial and one grandchild per agent (plus one for the game env), so a trial's result never
depends on how many workers ran it or in which order. ``common_random_numbers=True``
restarts every game of a trial from the same seed instead (a different experiment).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nchain_agents.errors import InvalidArgumentError, short_repr
from nchain_agents.evaluation import evaluate
from nchain_agents.registry import load_agent


def trial_seeds(seed: int | None, trials: int, n_agents: int) -> list[tuple[list[int], int]]:
    """Per trial: one training seed per agent and one seed for the trial's game env."""
    root = np.random.SeedSequence(seed)
    out = []
    for child in root.spawn(trials):
        grandchildren = child.spawn(n_agents + 1)
        seeds = [int(g.generate_state(1)[0]) for g in grandchildren]
        out.append((seeds[:-1], seeds[-1]))
    return out


@dataclass(frozen=True)
class TrialPlan:
    """Everything a worker needs to run trials (picklable, so Ray can ship it)."""

    agents: tuple[str, ...]
    episodes: int | None
    env_id: str
    env_kwargs: dict[str, Any]
    hyperparameters: dict[str, dict[str, Any]]
    seeds: list[tuple[list[int], int]]
    common_random_numbers: bool = False


def play_trials(plan: TrialPlan, indices: Sequence[int]) -> list[list[float]]:
    """Play the given trials: the greedy-game totals, one row per trial, one per agent.

    The one primitive of tournaments and sweeps: each agent of a trial is trained from
    scratch with its own seed on its own env, then the trained agents play one greedy
    game each on the trial's game env (see the module docstring).
    """
    import gymnasium as gym

    import nchain_gym  # noqa: F401  (registers NChain-v0 in a fresh worker)

    rows = []
    for index in indices:
        agent_seeds, game_seed = plan.seeds[index]
        trained = []
        for name, agent_seed in zip(plan.agents, agent_seeds, strict=True):
            agent = load_agent(name, seed=agent_seed, **plan.hyperparameters.get(name, {}))
            trained.append(agent.learn(gym.make(plan.env_id, **plan.env_kwargs), plan.episodes))
        # One game env per trial; its stream runs on from one agent's game to the next
        # (only the first reset is seeded), unless every game restarts it (CRN).
        game_env = gym.make(plan.env_id, **plan.env_kwargs)
        totals = []
        for i, agent in enumerate(trained):
            seed = game_seed if i == 0 or plan.common_random_numbers else None
            totals.append(float(evaluate(agent, game_env, n_episodes=1, seed=seed).returns[0]))
        rows.append(totals)
    return rows


def make_env(env_id: str, env_kwargs: dict[str, Any]) -> Any:
    """``gym.make(env_id, **env_kwargs)``, or an :class:`InvalidArgumentError` naming why not."""
    import gymnasium as gym

    import nchain_gym  # noqa: F401  (registers NChain-v0)

    try:
        return gym.make(env_id, **env_kwargs)
    except (gym.error.Error, ImportError, AttributeError, TypeError, ValueError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        known = [name for name in gym.registry if isinstance(name, str)]
        close = difflib.get_close_matches(str(env_id), known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close and close[0] != env_id else ""
        settings = f" with {env_kwargs}" if env_kwargs else ""
        raise InvalidArgumentError(
            f"cannot make env {short_repr(env_id)}{settings}: {text}{hint}"
        ) from None


def play_batch(job: tuple[TrialPlan, list[int]]) -> list[list[float]]:
    """``play_trials`` on one job (what a worker thread or Ray task runs)."""
    return play_trials(*job)
