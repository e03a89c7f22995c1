"""An example plugin for nchain_agents: Expected SARSA, compiled, in a few lines.

The agent is a :class:`nchain_agents.TabularAgent`: its math is two plain functions
(compiled with Numba the first time they run), and it gets the rest from the base:
the zero table, the env loop, the fused NChain loop (bit-identical, ~100x faster),
``predict``, saving and loading. The package registers it with a ``register_agents``
hook marked ``@nchain_agents.hookimpl``, published as an entry point in the
``nchain_agents`` group (see this package's ``pyproject.toml``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import nchain_agents
from nchain_agents import TabularAgent, hyperparameter, in_range

__version__ = "0.2.0"


def expected_sarsa_update(table, s, a, r, s2, terminated, epsilon, params):
    """``Q[s,a] += lr * (r + gamma * E_pi[Q[s',.]] - Q[s,a])`` under the epsilon-greedy pi."""
    gamma, lr = params[0], params[1]
    n_actions = table.shape[1]
    best = 0
    for b in range(1, n_actions):
        if table[s2, b] > table[s2, best]:
            best = b
    expected = (1.0 - epsilon) * table[s2, best]
    for b in range(n_actions):
        expected += epsilon / n_actions * table[s2, b]
    future = 0.0 if terminated else gamma * expected
    table[s, a] += lr * (r + future - table[s, a])


def epsilon_greedy(table, s, epsilon, draws, pos):
    """Random with probability epsilon (two draws), else argmax (one draw): the policy
    the update takes its expectation under (no special case for untried states)."""
    if draws[pos] < epsilon:
        return int(draws[pos + 1] * table.shape[1]), pos + 2
    best = 0
    for b in range(1, table.shape[1]):
        if table[s, b] > table[s, best]:
            best = b
    return best, pos + 1


@dataclass(kw_only=True, eq=False)
class ExpectedSarsaAgent(TabularAgent):
    """Expected SARSA with an epsilon-greedy policy (on-policy TD control).

    Update: ``Q[s,a] += lr * (r + gamma * E_pi[Q[s',.]] - Q[s,a])``, where the
    expectation is under the epsilon-greedy policy itself.
    """

    gamma: float = hyperparameter(0.95, "discount factor", in_range(0, 1))
    learning_rate: float = hyperparameter(0.1, "step size", in_range(0, 1, low_open=True))
    epsilon: float = hyperparameter(0.1, "exploration rate (constant)", in_range(0, 1))

    default_episodes = 200
    update_step = staticmethod(expected_sarsa_update)
    choose_action = staticmethod(epsilon_greedy)

    def rule_parameters(self) -> np.ndarray:
        return np.array([self.gamma, self.learning_rate])


@nchain_agents.hookimpl
def register_agents(register):
    register("expected-sarsa", ExpectedSarsaAgent)
