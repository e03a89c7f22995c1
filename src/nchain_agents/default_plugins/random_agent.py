"""``random``: the uniform-random baseline."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nchain_agents.base import Agent
from nchain_agents.hookspecs import hookimpl

if TYPE_CHECKING:
    import gymnasium as gym


@dataclass(kw_only=True, eq=False)
class RandomAgent(Agent):
    """Uniform-random actions: the floor every learner should beat.

    It learns nothing; ``learn`` only records the returns of random play, and its
    value table is all zeros. ``predict`` draws a uniformly random action in every
    mode, ``deterministic=True`` included: a baseline that turned greedy on its zero
    table would always play action 0, which on NChain-v0 is the optimal policy.
    """

    default_episodes = 10

    def _setup(self) -> None:
        self._table = np.zeros((self.n_states, self.n_actions))

    def _learn(self, env: gym.Env, episodes: int, on_episode: Callable[..., bool]) -> None:
        rng = self._rng
        for episode in range(episodes):
            env.reset(seed=self.env_seed() if episode == 0 else None)
            total, steps = 0.0, 0
            while True:
                _, reward, terminated, truncated, _ = env.step(int(rng.integers(self.n_actions)))
                total += float(reward)
                steps += 1
                if terminated or truncated:
                    break
            if not on_episode(total, steps, math.nan):
                break

    def _predict(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        return self._rng.integers(self.n_actions, size=observations.shape)

    def q_values(self) -> np.ndarray:
        self._require_trained()
        return self._table.copy()

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _expected_arrays(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return {}

    def _restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        pass


@hookimpl
def register_agents(register):
    register("random", RandomAgent)
