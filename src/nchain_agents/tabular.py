"""What the three tabular agents share: the table, the two training paths, saving.

The math itself (action choice and update rules) lives once, compiled, in
:mod:`nchain_agents._kernels`; both paths here call it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from nchain_agents.base import Agent

if TYPE_CHECKING:
    import gymnasium as gym


def _kernels():
    from nchain_agents import _kernels

    return _kernels


@dataclass(kw_only=True, eq=False)
class TabularAgent(Agent):
    """Base of the table-based agents: ``argmax`` play, zero-row exploration, a saved table.

    Subclasses set ``kind`` (which update rule), ``explores`` (epsilon-greedy or
    not) and declare their hyperparameters; this class reads ``gamma``,
    ``learning_rate``, ``update_rule``, ``epsilon`` and ``epsilon_decay`` when they
    exist.
    """

    kind: ClassVar[int]
    explores: ClassVar[bool] = False
    zero_row_rule: ClassVar[bool] = True
    default_episodes = 500
    has_fused_path = True

    def _setup(self) -> None:
        self._table = np.zeros((self.n_states, self.n_actions))
        self._epsilon = np.array([getattr(self, "epsilon", math.nan)], dtype=np.float64)

    # -- the pieces both paths need -----------------------------------------------------

    def _rule_args(self) -> tuple[int, float, float, bool]:
        return (
            self.kind,
            float(getattr(self, "gamma", 0.0)),
            float(getattr(self, "learning_rate", 0.0)),
            getattr(self, "update_rule", "standard") == "tutorial",
        )

    @property
    def current_epsilon(self) -> float:
        """The exploration rate the next episode decays from (``nan`` if it does not explore)."""
        return float(self._epsilon[0]) if self.is_trained else getattr(self, "epsilon", math.nan)

    # -- env path: a real env.step per step ----------------------------------------------

    def _learn(self, env: gym.Env, episodes: int, on_episode: Callable[..., bool]) -> None:
        k = _kernels()
        kind, gamma, lr, tutorial = self._rule_args()
        explore, zero_row = self.explores, self.zero_row_rule
        decay = float(getattr(self, "epsilon_decay", 1.0))
        table, rng = self._table, self._rng
        block = k.AGENT_BLOCK
        draws, pos = np.empty(0), block
        choose, update = k.choose_action, k.update
        for episode in range(episodes):
            s, _ = env.reset(seed=self.env_seed() if episode == 0 else None)
            if explore:
                self._epsilon[0] *= decay
            eps = float(self._epsilon[0])
            total, steps = 0.0, 0
            while True:
                if pos > block - 2:
                    draws, pos = rng.random(block), 0
                a, pos = choose(table, s, eps, explore, zero_row, draws, pos)
                s2, r, terminated, truncated, _ = env.step(a)
                s2, r = int(s2), float(r)
                update(kind, table, s, a, r, s2, bool(terminated), gamma, lr, tutorial)
                total += r
                steps += 1
                s = s2
                if terminated or truncated:
                    break
            if not on_episode(total, steps, eps):
                break

    # -- fused path: NChain's dynamics inside the compiled loop ---------------------------

    def _learn_fused(
        self,
        params: dict[str, Any],
        episodes: int,
        on_episode: Callable[..., bool],
        chunked: bool,
    ) -> None:
        from nchain_gym.env import outcome_table

        k = _kernels()
        next_state, rewards = outcome_table(params["n"], params["small"], params["large"])
        max_steps = params["max_episode_steps"]
        env_rng = np.random.default_rng(self.env_seed())  # what env.reset(seed=...) builds
        env_buf, env_pos = np.empty(k.ENV_BLOCK), np.zeros(1, dtype=np.int64)
        agent_buf = np.empty(k.AGENT_BLOCK)
        agent_pos = np.array([k.AGENT_BLOCK], dtype=np.int64)
        kind, gamma, lr, tutorial = self._rule_args()
        chunk = 1 if chunked else episodes
        done = 0
        while done < episodes:
            n = min(chunk, episodes - done)
            out_reward, out_epsilon = np.empty(n), np.empty(n)
            out_length = np.empty(n, dtype=np.int64)
            k.train_nchain(
                self._table, kind, gamma, lr, tutorial, self.explores, self.zero_row_rule,
                self._epsilon, float(getattr(self, "epsilon_decay", 1.0)),
                n, max_steps, next_state, rewards, params["slip"],
                env_rng, env_buf, env_pos, self._rng, agent_buf, agent_pos,
                out_reward, out_length, out_epsilon,
            )  # fmt: skip
            done += n
            for i in range(n):
                if not on_episode(out_reward[i], out_length[i], out_epsilon[i]):
                    return

    # -- playing and saving ---------------------------------------------------------------

    def _predict(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        rows = self._table[observations]
        greedy = rows.argmax(axis=1)
        if deterministic:
            return greedy
        n = len(observations)
        explore = np.zeros(n, dtype=bool)
        if self.explores:
            explore |= self._rng.random(n) < self.current_epsilon
        if self.zero_row_rule:
            explore |= rows.sum(axis=1) == 0
        random_actions = self._rng.integers(self.n_actions, size=n)
        return np.where(explore, random_actions, greedy)

    def q_values(self) -> np.ndarray:
        self._require_trained()
        return self._table.copy()

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"table": self._table, "epsilon": self._epsilon}

    def _expected_arrays(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return {"table": ((self.n_states, self.n_actions), "f"), "epsilon": ((1,), "f")}

    def _check_arrays(self, arrays: dict[str, np.ndarray]) -> str | None:
        if not np.isfinite(arrays["table"]).all():
            return "the table holds non-finite values (did rewards overflow?)"
        epsilon = float(arrays["epsilon"][0])
        if self.explores and not 0.0 <= epsilon <= 1.0:
            return f"epsilon must be in [0, 1], got {epsilon!r}"
        if not self.explores and not math.isnan(epsilon):
            return f"{type(self).__name__} does not explore, but the file has epsilon {epsilon!r}"
        return None

    def _restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self._table = arrays["table"].astype(np.float64)
        self._epsilon = arrays["epsilon"].astype(np.float64)
