"""Evaluating a trained agent on an environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import gymnasium as gym


@dataclass(frozen=True)
class EvaluationResult:
    """Per-episode returns and lengths of an evaluation, with their summary."""

    returns: np.ndarray
    lengths: np.ndarray

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    def confidence_interval(self, level: float = 0.95) -> tuple[float, float]:
        """Normal-approximation confidence interval of the mean return."""
        half = normal_quantile(level) * sem(self.returns)
        return self.mean - half, self.mean + half


def normal_quantile(level: float) -> float:
    """Two-sided standard-normal quantile: 1.96 for ``level=0.95``."""
    from statistics import NormalDist

    if not 0.0 < level < 1.0:
        from nchain_agents.errors import InvalidArgumentError

        raise InvalidArgumentError(f"confidence level must be in (0, 1), got {level!r}")
    return NormalDist().inv_cdf(0.5 + level / 2)


def sem(values: Any) -> float:
    """Standard error of the mean (0 for fewer than two values)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return 0.0
    return float(np.std(values, ddof=1) / np.sqrt(values.size))


def evaluate(
    agent: Any,
    env: gym.Env,
    n_episodes: int = 10,
    seed: int | None = None,
    deterministic: bool = True,
) -> EvaluationResult:
    """Run ``n_episodes`` full episodes with ``agent.predict`` and record their returns.

    The agent is called the way Stable-Baselines3's ``evaluate_policy`` calls a model
    (``predict(obs, state=..., episode_start=..., deterministic=...)``), so any SB3
    model works here too, and our agents work in ``evaluate_policy``.

    Args:
        agent: anything with an SB3-style ``predict``.
        env: a Gymnasium env (its own TimeLimit ends the episodes).
        n_episodes: number of episodes, at least 1.
        seed: seed for the first ``reset``; later episodes continue its stream.
        deterministic: greedy actions (default) or the agent's behaviour policy.
    """
    from nchain_agents.base import Agent, check_episodes_end
    from nchain_agents.errors import InvalidArgumentError
    from nchain_gym.dynamics import is_whole_number

    if not is_whole_number(n_episodes, 1):
        raise InvalidArgumentError(f"n_episodes must be an integer >= 1, got {n_episodes!r}")
    if seed is not None and not is_whole_number(seed, 0):
        raise InvalidArgumentError(f"seed must be None or an integer >= 0, got {seed!r}")
    check_episodes_end(env)  # an episode that never ends would never return
    greedy = None
    if isinstance(agent, Agent):
        agent.check_env(env)  # spaces must match what the agent was trained on
        agent.q_values()  # a NotTrainedError now rather than mid-episode
        if deterministic and type(agent).greedy_is_a_table:
            greedy = agent.predict(np.arange(agent.n_states), deterministic=True)[0].tolist()
    returns = np.zeros(n_episodes)
    lengths = np.zeros(n_episodes, dtype=np.int64)
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        state, start, total, steps = None, True, 0.0, 0
        while True:
            if greedy is not None:
                action = greedy[int(obs)]
            else:
                action, state = agent.predict(
                    obs, state=state, episode_start=np.array([start]), deterministic=deterministic
                )
            obs, reward, terminated, truncated, _ = env.step(int(np.asarray(action).item()))
            total += float(reward)
            steps += 1
            start = False
            if terminated or truncated:
                break
        returns[episode], lengths[episode] = total, steps
    return EvaluationResult(returns, lengths)
