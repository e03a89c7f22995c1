"""An example plugin for nchain_agents: Expected SARSA on the public Agent API.

The whole contract is: a subclass of ``nchain_agents.Agent`` (a keyword-only
dataclass whose fields are the hyperparameters), and a ``register_agents`` hook
marked with ``@nchain_agents.hookimpl``, published as an entry point in the
``nchain_agents`` group (see this package's ``pyproject.toml``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import nchain_agents
from nchain_agents import Agent, hyperparameter, in_range

__version__ = "0.1.0"


@dataclass(kw_only=True, eq=False)
class ExpectedSarsaAgent(Agent):
    """Expected SARSA with an epsilon-greedy policy (on-policy TD control).

    Update: ``Q[s,a] += lr * (r + gamma * E_pi[Q[s',.]] - Q[s,a])``, where the
    expectation is under the epsilon-greedy policy itself.
    """

    gamma: float = hyperparameter(0.95, "discount factor", in_range(0, 1))
    learning_rate: float = hyperparameter(0.1, "step size", in_range(0, 1, low_open=True))
    epsilon: float = hyperparameter(0.1, "exploration rate", in_range(0, 1))

    default_episodes = 200

    def _setup(self):
        self._q = np.zeros((self.n_states, self.n_actions))

    def _policy(self, s):
        probs = np.full(self.n_actions, self.epsilon / self.n_actions)
        probs[np.argmax(self._q[s])] += 1.0 - self.epsilon
        return probs

    def _learn(self, env, episodes, on_episode):
        rng, q = self._rng, self._q
        for episode in range(episodes):
            s, _ = env.reset(seed=self.env_seed() if episode == 0 else None)
            total, steps = 0.0, 0
            while True:
                a = int(rng.choice(self.n_actions, p=self._policy(s)))
                s2, r, terminated, truncated, _ = env.step(a)
                expected = 0.0 if terminated else float(self._policy(s2) @ q[s2])
                q[s, a] += self.learning_rate * (r + self.gamma * expected - q[s, a])
                total, steps, s = total + float(r), steps + 1, s2
                if terminated or truncated:
                    break
            if not on_episode(total, steps, self.epsilon):
                break

    def _predict(self, observations, deterministic):
        if deterministic:
            return self._q[observations].argmax(axis=1)
        return np.array([self._rng.choice(self.n_actions, p=self._policy(s)) for s in observations])

    def q_values(self):
        self._require_trained()
        return self._q.copy()

    def _state_arrays(self):
        return {"q": self._q}

    def _expected_arrays(self):
        return {"q": ((self.n_states, self.n_actions), "f")}

    def _restore_arrays(self, arrays):
        self._q = arrays["q"].astype(np.float64)


@nchain_agents.hookimpl
def register_agents(register):
    register("expected-sarsa", ExpectedSarsaAgent)
