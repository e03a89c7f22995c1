"""The public base of table agents: write the math as two small functions, get compiled speed.

A subclass supplies its update rule (and, if it wants, its action rule) as plain
functions in Numba's subset of Python (see :mod:`nchain_agents.tabular_rules` for the
signatures and the built-in rules), plus ``rule_parameters()`` if its rule needs
hyperparameters. In return it gets everything else: a zero-initialised table, the env
loop (one compiled call per step around a real ``env.step``), the fused NChain loop
(the whole training in one compiled loop, same random streams, bit-identical results),
``predict``, and saving and loading::

    @dataclass(kw_only=True, eq=False)
    class DoubleRewardAgent(TabularAgent):
        '''Sums twice the reward.'''

        @staticmethod
        def update_step(table, s, a, r, s2, terminated, epsilon, params):
            table[s, a] += 2.0 * r
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from nchain_agents.base import Agent, AgentState, EpisodeSink
from nchain_agents.fused import FusedNChain
from nchain_agents.tabular_rules import tutorial_action

if TYPE_CHECKING:
    from nchain_gym.dynamics import NChainParams


def _kernels() -> Any:
    from nchain_agents import _kernels

    return _kernels


@dataclass(kw_only=True, eq=False)
class TabularAgent(Agent, FusedNChain):
    """Base of table agents: a ``(n_states, n_actions)`` table, compiled rules, both loops.

    Class attributes a subclass sets:

    - ``update_step`` (required, a ``staticmethod``):
      ``(table, s, a, r, s2, terminated, epsilon, params) -> None``;
    - ``choose_action`` (optional): ``(table, s, epsilon, draws, pos) -> (action, pos)``;
      default :func:`~nchain_agents.tabular_rules.tutorial_action` (epsilon-greedy when
      the agent has an ``epsilon`` hyperparameter, and a random move on an all-zero row).

    ``predict(deterministic=True)`` plays ``argmax`` (ties to the lowest action); with
    ``deterministic=False`` it explores like the default action rule.
    """

    update_step: ClassVar[Any]
    choose_action: ClassVar[Any] = staticmethod(tutorial_action)
    default_episodes = 500
    greedy_is_a_table = True

    def rule_parameters(self) -> np.ndarray:
        """The ``params`` vector (float64) handed to ``update_step``. Default: empty."""
        return np.empty(0)

    # -- the hooks ---------------------------------------------------------------------

    def setup(self) -> None:
        self.table = np.zeros((self.n_states, self.n_actions))

    def start_learning(self) -> None:
        k = _kernels()
        cls = type(self)
        self._rules = (cls.update_step, cls.choose_action)
        self._update = k.compiled(cls.update_step)
        self._action = k.compiled(cls.choose_action)
        self._params = np.asarray(self.rule_parameters(), dtype=np.float64)
        self._draws = np.empty(k.AGENT_BLOCK)
        self._pos = k.AGENT_BLOCK  # every learn call starts a fresh block

    def act(self, state: int) -> int:
        if self._pos > len(self._draws) - 2:
            self._draws = self.rng.random(len(self._draws))
            self._pos = 0
        action, self._pos = self._action(
            self.table, state, self.current_epsilon, self._draws, self._pos
        )
        return int(action)

    def update(
        self, state: int, action: int, reward: float, next_state: int, terminated: bool
    ) -> None:
        self._update(
            self.table, state, action, reward, next_state, terminated,
            self.current_epsilon, self._params,
        )  # fmt: skip

    def learn_nchain(
        self, params: NChainParams, episodes: int, on_episode: EpisodeSink, chunked: bool
    ) -> None:
        k = _kernels()
        next_state, rewards = params.outcome_table()
        env_rng = np.random.default_rng(self.draw_env_seed())  # what env.reset(seed=...) builds
        env_buf, env_pos = np.empty(k.SLIP_BLOCK), np.zeros(1, dtype=np.int64)
        agent_pos = np.array([self._pos], dtype=np.int64)
        epsilon = np.array([self.current_epsilon])
        decay = float(getattr(self, "epsilon_decay", 1.0))
        loop, loop_params = k.train_loop(*self._rules, self._params)
        chunk = 1 if chunked else episodes
        done = 0
        try:
            while done < episodes:
                n = min(chunk, episodes - done)
                out_reward, out_epsilon = np.empty(n), np.empty(n)
                out_length = np.empty(n, dtype=np.int64)
                loop(
                    self.table, loop_params, epsilon, decay,
                    n, params.horizon, next_state, rewards, params.slip,
                    env_rng, env_buf, env_pos, self.rng, self._draws, agent_pos,
                    out_reward, out_length, out_epsilon,
                )  # fmt: skip
                done += n
                self.current_epsilon = float(epsilon[0])
                for i in range(n):
                    if not on_episode(float(out_reward[i]), int(out_length[i]), out_epsilon[i]):
                        return
        finally:
            self._pos = int(agent_pos[0])
            self.current_epsilon = float(epsilon[0])

    def policy(self, states: np.ndarray, deterministic: bool) -> np.ndarray:
        rows = self.table[states]
        greedy = rows.argmax(axis=1)
        if deterministic:
            return greedy
        n = len(states)
        explore = rows.sum(axis=1) == 0
        if not math.isnan(self.current_epsilon):
            explore |= self.rng.random(n) < self.current_epsilon
        random_actions = self.rng.integers(self.n_actions, size=n)
        return np.where(explore, random_actions, greedy)

    def q_values(self) -> np.ndarray:
        self._require_trained()
        return self.table.copy()

    # -- saving -------------------------------------------------------------------------

    def get_state(self) -> AgentState:
        return AgentState({"table": self.table, "epsilon": np.array([self.current_epsilon])})

    def state_layout(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return {"table": ((self.n_states, self.n_actions), "f"), "epsilon": ((1,), "f")}

    def check_state(self, state: AgentState) -> str | None:
        if not np.isfinite(state.arrays["table"]).all():
            return "the table holds non-finite values (did rewards overflow?)"
        epsilon = float(state.arrays["epsilon"][0])
        explores = hasattr(self, "epsilon")
        if explores and not 0.0 <= epsilon <= 1.0:
            return f"epsilon must be in [0, 1], got {epsilon!r}"
        if not explores and not math.isnan(epsilon):
            return f"{type(self).__name__} does not explore, but the file has epsilon {epsilon!r}"
        return None

    def set_state(self, state: AgentState) -> None:
        self.table = state.arrays["table"].astype(np.float64)
        self.current_epsilon = float(state.arrays["epsilon"][0])
