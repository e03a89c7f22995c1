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
from typing import TYPE_CHECKING, Any

import numpy as np

from nchain_agents.errors import InvalidArgumentError, short_repr
from nchain_agents.evaluation import evaluate
from nchain_agents.registry import load_agent

if TYPE_CHECKING:
    from nchain_gym import EpisodeOptimum


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
    """Everything a worker needs to run trials (picklable, so Ray can ship it).

    ``batch_size`` caps how many agents of one kind train at once when the agent class
    trains batches (``None``: the class chooses from the work and the machine).
    ``optimum`` is the env's :func:`~nchain_gym.episode_optimum`, computed once by the
    caller (``None``: each job computes it).
    """

    agents: tuple[str, ...]
    episodes: int | None
    env_id: str
    env_kwargs: dict[str, Any]
    hyperparameters: dict[str, dict[str, Any]]
    seeds: list[tuple[list[int], int]]
    common_random_numbers: bool = False
    batch_size: int | None = None
    optimum: EpisodeOptimum | None = None


@dataclass(frozen=True)
class Trial:
    """One trial's outcome, per agent in plan order.

    Attributes:
        totals: the greedy-game totals.
        optimal: whether each agent's greedy policy earns the optimal expected game
            total (``None`` when the env has no model the solver handles).
    """

    totals: list[float]
    optimal: list[bool] | None


def play_trials(plan: TrialPlan, indices: Sequence[int]) -> list[Trial]:
    """Play the given trials, in order.

    The one primitive of tournaments and sweeps. Each agent of each trial is trained
    from scratch with its own seed (all trials' agents of one kind together, through
    :func:`~nchain_agents.learn_many`, so a kind with a batched loop trains them in
    lock-step; each still ends exactly as if trained alone); then, trial by trial, the
    trained agents play one greedy game each on the trial's game env (see the module
    docstring).
    """
    from nchain_agents.base import learn_many
    from nchain_gym import episode_optimum

    indices = list(indices)
    env = make_env(plan.env_id, plan.env_kwargs)
    trained: list[list[Any]] = []
    for j, name in enumerate(plan.agents):
        hyperparameters = plan.hyperparameters.get(name, {})
        agents = [
            load_agent(name, seed=plan.seeds[index][0][j], **hyperparameters) for index in indices
        ]
        trained.append(learn_many(agents, env, plan.episodes, batch_size=plan.batch_size))
    best = plan.optimum if plan.optimum is not None else episode_optimum(env)
    verdicts: dict[bytes, bool] = {}  # greedy policy -> optimal? (few distinct ones)
    out = []
    for k, index in enumerate(indices):
        game_seed = plan.seeds[index][1]
        # One game env per trial; its stream runs on from one agent's game to the next
        # (only the first reset is seeded), unless every game restarts it (CRN).
        game_env = make_env(plan.env_id, plan.env_kwargs)
        totals = []
        for j in range(len(plan.agents)):
            seed = game_seed if j == 0 or plan.common_random_numbers else None
            result = evaluate(trained[j][k], game_env, n_episodes=1, seed=seed)
            totals.append(float(result.returns[0]))
        optimal = None
        if best.solution is not None and best.expected_return is not None:
            optimal = [_plays_optimally(agents[k], best, env, verdicts) for agents in trained]
        out.append(Trial(totals, optimal))
    return out


def _plays_optimally(
    agent: Any, best: EpisodeOptimum, env: Any, verdicts: dict[bytes, bool]
) -> bool:
    """Whether ``agent``'s greedy policy earns the optimal expected game total (to 1e-9)."""
    from nchain_gym import policy_return

    assert best.solution is not None and best.expected_return is not None and best.horizon
    greedy = agent.predict(np.arange(agent.n_states), deterministic=True)[0]
    key = np.asarray(greedy, dtype=np.int64).tobytes()
    if key not in verdicts:
        if np.array_equal(greedy, best.solution.policy):
            verdicts[key] = True
        else:
            value = policy_return(env, greedy, horizon=best.horizon)
            limit = best.expected_return - 1e-9 * max(1.0, abs(best.expected_return))
            verdicts[key] = bool(value >= limit)
    return verdicts[key]


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


def play_batch(job: tuple[TrialPlan, list[int]]) -> list[Trial]:
    """``play_trials`` on one job (what a worker thread or Ray task runs)."""
    return play_trials(*job)
