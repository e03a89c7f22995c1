"""``random``: the uniform-random baseline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nchain_agents.base import Agent, AgentState
from nchain_agents.hookspecs import hookimpl


@dataclass(kw_only=True, eq=False)
class RandomAgent(Agent):
    """Uniform-random actions: the floor every learner should beat.

    It learns nothing; ``learn`` only records the returns of random play, and its
    value table is all zeros. ``predict`` draws a uniformly random action in every
    mode, ``deterministic=True`` included: a baseline that turned greedy on its zero
    table would always play action 0, which on NChain-v0 is the optimal policy.
    """

    default_episodes = 10

    def setup(self) -> None:
        pass

    def act(self, state: int) -> int:
        return int(self.rng.integers(self.n_actions))

    def update(
        self, state: int, action: int, reward: float, next_state: int, terminated: bool
    ) -> None:
        pass

    def policy(self, states: np.ndarray, deterministic: bool) -> np.ndarray:
        return self.rng.integers(self.n_actions, size=states.shape)

    def q_values(self) -> np.ndarray:
        return np.zeros((self.n_states, self.n_actions))

    def get_state(self) -> AgentState:
        return AgentState()

    def state_layout(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return {}

    def set_state(self, state: AgentState) -> None:
        pass


@hookimpl
def register_agents(register):
    register("random", RandomAgent)
