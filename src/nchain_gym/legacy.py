"""The Gym 0.x API of 2018 over Gymnasium's envs, for code written before Gymnasium.

Old tutorials call ``s = env.reset()`` and ``new_s, r, done, _ = env.step(a)``;
Gymnasium 1.x returns ``(obs, info)`` from ``reset`` and five values from ``step``,
and no longer ships a wrapper back. Import this module in place of ``gym``::

    import nchain_gym.legacy as gym

    env = gym.make("NChain-v0")
    s = env.reset()
    new_s, r, done, _ = env.step(0)

``make`` passes every keyword argument to ``gymnasium.make`` (``max_episode_steps``,
``render_mode``, the env's own parameters) and returns the env behind the old API:

- ``reset()`` returns the observation only;
- ``step(action)`` returns ``(obs, reward, done, info)`` with ``done = terminated or
  truncated``; ``info["TimeLimit.truncated"]`` says the time limit ended the episode,
  as Gym 0.x's ``TimeLimit`` did;
- ``seed(seed)`` seeds the next ``reset`` and returns ``[seed]``;
- ``render(mode="human")`` renders in the env's ``render_mode`` (Gymnasium fixes the
  mode at ``make``: pass ``render_mode="ansi"``); text is printed for ``"human"``;
- ``close()``, ``action_space``, ``observation_space``, ``spec``, ``unwrapped``, and
  any other attribute of the Gymnasium env.
"""

from __future__ import annotations

from typing import Any

import gymnasium

import nchain_gym  # noqa: F401  (registers NChain-v0)

__all__ = ["LegacyEnv", "make"]


def make(id: str, **kwargs: Any) -> LegacyEnv:
    """``gymnasium.make(id, **kwargs)`` behind the Gym 0.x API."""
    return LegacyEnv(gymnasium.make(id, **kwargs))


class LegacyEnv:
    """A Gymnasium env seen through the Gym 0.x API (see the module docstring)."""

    def __init__(self, env: gymnasium.Env) -> None:
        self.env = env
        self._next_seed: int | None = None

    @property
    def action_space(self) -> Any:
        return self.env.action_space

    @property
    def observation_space(self) -> Any:
        return self.env.observation_space

    def reset(self) -> Any:
        """Start an episode; returns the first observation."""
        seed, self._next_seed = self._next_seed, None
        obs, _ = self.env.reset(seed=seed)
        return obs

    def step(self, action: Any) -> tuple[Any, Any, bool, dict[str, Any]]:
        """One step; returns ``(obs, reward, done, info)``."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        if truncated and not terminated:
            info["TimeLimit.truncated"] = True
        return obs, reward, bool(terminated or truncated), info

    def seed(self, seed: int | None = None) -> list[int | None]:
        """Seed the next ``reset`` (Gym 0.x style); returns ``[seed]``."""
        self._next_seed = seed
        return [seed]

    def render(self, mode: str = "human") -> Any:
        """Render in the ``render_mode`` given to ``make``; text is printed for ``"human"``."""
        out = self.env.render()
        if mode == "human" and isinstance(out, str):
            print(out, end="")
            return None
        return out

    def close(self) -> None:
        self.env.close()

    def __getattr__(self, name: str) -> Any:
        if name == "env":  # not set yet (e.g. during unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.env, name)

    def __repr__(self) -> str:
        return f"<LegacyEnv {self.env}>"
