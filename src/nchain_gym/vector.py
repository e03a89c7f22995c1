"""A NumPy-batched NChain: ``gym.make_vec("NChain-v0", num_envs=N)``."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from nchain_gym.dynamics import is_whole_number, outcome_table, validate_params

# Rows of raw 64-bit draws taken from ``np_random`` per Generator call.
_DRAW_ROWS = 64


class NChainVectorEnv(VectorEnv):
    """``num_envs`` independent NChain environments stepped together with NumPy.

    The dynamics are those of :class:`nchain_gym.NChainEnv` (built from the same
    :func:`nchain_gym.dynamics.outcome`), with the slip drawn per environment from this
    vector env's own ``np_random``. Each sub-environment is truncated after
    ``max_episode_steps`` and reset on the following ``step`` call (Gymnasium's
    ``AutoresetMode.NEXT_STEP``): that call ignores its action and returns the
    reset observation 0 with reward 0.

    Args:
        num_envs: number of sub-environments, at least 1.
        n, slip, small, large: as for :class:`nchain_gym.NChainEnv`.
        max_episode_steps: steps before truncation, at least 1 (``None``: never).
        render_mode: only ``None`` is supported.
    """

    metadata = {  # noqa: RUF012
        "autoreset_mode": AutoresetMode.NEXT_STEP,
        "render_modes": [],
    }

    def __init__(
        self,
        num_envs: int = 1,
        n: int = 5,
        slip: float = 0.2,
        small: float = 2,
        large: float = 10,
        max_episode_steps: int | None = 1000,
        render_mode: str | None = None,
    ) -> None:
        if not is_whole_number(num_envs, 1):
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if max_episode_steps is not None and not is_whole_number(max_episode_steps, 1):
            raise ValueError(
                f"max_episode_steps must be None or an integer >= 1, got {max_episode_steps!r}"
            )
        if render_mode is not None:
            raise ValueError(
                f"NChainVectorEnv has no render modes, got render_mode={render_mode!r}"
            )
        self.num_envs = int(num_envs)
        self.n, self.slip, self.small, self.large = validate_params(n, slip, small, large)
        self.max_episode_steps = max_episode_steps
        self.render_mode = None

        self.single_observation_space = spaces.Discrete(self.n)
        self.single_action_space = spaces.Discrete(2)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        next_state, reward = outcome_table(self.n, self.small, self.large)
        self._next_flat = next_state.ravel()  # index: state * 2 + taken
        self._reward_flat = reward.ravel()
        # slipped <=> raw < threshold, raw uniform on [0, 2**64): P = slip exactly
        # up to 2**-64 (slip == 1 is the one value a uint64 threshold cannot hold).
        self._always_slip = self.slip >= 1.0
        self._threshold = np.uint64(min(int(self.slip * 2.0**64), 2**64 - 1))

        self._state = np.zeros(self.num_envs, dtype=np.int64)
        self._elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)
        self._any_needs_reset = False
        self._reset_called = False
        self._draws = np.empty((0, self.num_envs), dtype=np.uint64)
        self._draw_row = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ValueError(
                "NChainVectorEnv.reset takes one integer seed for all sub-environments, "
                f"got {seed!r}"
            )
        super().reset(seed=seed)
        if seed is not None:
            self._draws = np.empty((0, self.num_envs), dtype=np.uint64)
            self._draw_row = 0
        self._state[:] = 0
        self._elapsed[:] = 0
        self._needs_reset[:] = False
        self._any_needs_reset = False
        self._reset_called = True
        return self._state.copy(), {}

    def _slipped(self) -> np.ndarray:
        if self._always_slip:
            return np.ones(self.num_envs, dtype=bool)
        if self._draw_row >= len(self._draws):
            self._draws = self.np_random.bit_generator.random_raw((_DRAW_ROWS, self.num_envs))
            self._draw_row = 0
        row = self._draws[self._draw_row]
        self._draw_row += 1
        return row < self._threshold

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._reset_called:
            raise RuntimeError(
                "NChainVectorEnv.step() was called before reset(); call reset() first"
            )
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or actions.dtype.kind not in "iu":
            raise ValueError(
                f"actions must be an integer array of shape ({self.num_envs},) with values "
                f"0 (FORWARD) or 1 (BACKWARD), got {actions!r}"
            )
        bad = (actions > 1) if actions.dtype.kind == "u" else ((actions < 0) | (actions > 1))
        if bad.any():
            raise ValueError(
                f"actions must be 0 (FORWARD) or 1 (BACKWARD), got {actions[bad][:5].tolist()} "
                f"among {self.num_envs} actions"
            )

        taken = actions.astype(np.int64) ^ self._slipped()
        index = self._state * 2 + taken
        state = self._next_flat[index]
        reward = self._reward_flat[index]
        self._elapsed += 1

        if self._any_needs_reset:
            mask = self._needs_reset
            state[mask] = 0
            reward[mask] = 0.0
            self._elapsed[mask] = 0

        self._state = state
        terminated = np.zeros(self.num_envs, dtype=bool)
        if self.max_episode_steps is None:
            truncated = np.zeros(self.num_envs, dtype=bool)
        else:
            truncated = self._elapsed >= self.max_episode_steps
        self._needs_reset = truncated
        self._any_needs_reset = bool(truncated.any())
        return state.copy(), reward, terminated, truncated, {}
