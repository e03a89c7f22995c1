"""The one agent API: ``learn`` / ``predict`` / ``save`` / ``load``, shaped like SB3's.

An agent is a keyword-only dataclass whose init fields are its hyperparameters
(declared with :func:`hyperparameter`, validated on construction). Subclasses
implement a handful of ``_``-methods; everything a user calls lives here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from nchain_agents.errors import (
    HyperparameterError,
    NotTrainedError,
    SpaceMismatchError,
)
from nchain_agents.history import Callback, EpisodeStats, History
from nchain_agents.hyperparameters import (
    Check,
    hyperparameter,
    in_range,
    one_of,
    validate_fields,
)

__all__ = [
    "Agent",
    "Callback",
    "Check",
    "EpisodeStats",
    "History",
    "discrete_size",
    "hyperparameter",
    "in_range",
    "one_of",
]

if TYPE_CHECKING:
    from typing import Self

    import gymnasium as gym


def discrete_size(space: Any, what: str) -> int:
    """The size ``n`` of a ``Discrete`` space that starts at 0, or a SpaceMismatchError."""
    from gymnasium import spaces

    if not isinstance(space, spaces.Discrete):
        raise SpaceMismatchError(
            f"the {what} space must be gymnasium.spaces.Discrete, got {space!r}"
        )
    if int(space.start) != 0:
        raise SpaceMismatchError(f"the {what} space must start at 0, got {space!r}")
    return int(space.n)


@dataclass(kw_only=True, eq=False)
class Agent:
    """Base class of every agent, built-in or from a plugin.

    Subclasses are keyword-only dataclasses: their init fields (declared with
    :func:`hyperparameter`) are the hyperparameters. They implement:

    - ``_setup()``: allocate the table or model for ``self.n_states`` / ``self.n_actions``;
    - ``_learn(env, episodes, on_episode)``: train, calling ``on_episode(reward,
      length, epsilon)`` after each episode (it returns ``False`` to stop);
    - ``_predict(observations, deterministic)``: actions for a 1-D int array;
    - ``q_values()``: the ``(n_states, n_actions)`` value table;
    - ``_state_arrays()`` / ``_restore_arrays(arrays)`` and, if they need them,
      ``_state_files()`` / ``_restore_files(files)`` for saving.
    """

    seed: int | None = hyperparameter(None, "seed of the agent's own random generator")

    default_episodes: ClassVar[int] = 100
    """The training budget of ``learn(env)`` when ``episodes`` is not given."""
    has_fused_path: ClassVar[bool] = False
    """Whether ``_learn_fused`` runs NChain inside a compiled loop (see ``learn``)."""

    def __post_init__(self) -> None:
        validate_fields(self)
        self.n_states: int | None = None
        self.n_actions: int | None = None
        self.history = History()
        self.num_timesteps = 0
        self._rng = np.random.default_rng(self.seed)

    # -- introspection ----------------------------------------------------------------

    @classmethod
    def hyperparameter_docs(cls) -> dict[str, tuple[Any, str]]:
        """``{name: (default, doc)}`` for every hyperparameter, ``seed`` included."""
        return {
            f.name: (f.default, f.metadata.get("doc", ""))
            for f in dataclasses.fields(cls)
            if f.init
        }

    @classmethod
    def summary(cls) -> str:
        """The first non-blank line of the class docstring (the class name if there is none)."""
        doc = cls.__doc__ if isinstance(cls.__doc__, str) else ""
        for line in doc.splitlines():
            if line.strip():
                return line.strip()
        return cls.__name__

    def get_hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters this agent was built with (``seed`` excluded)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.init and f.name != "seed"
        }

    @property
    def is_trained(self) -> bool:
        return self.n_states is not None

    @classmethod
    def prepare(cls) -> None:
        """Import what this agent needs (once per process) before any training starts.

        Tournaments and sweeps call it in the calling thread before their workers
        start, so that heavy, not thread-safe imports (TensorFlow) never race;
        ``learn`` calls it too. The default does nothing; it raises
        :class:`~nchain_agents.errors.MissingExtraError` when an optional dependency
        the agent needs is not installed.
        """

    # -- spaces -----------------------------------------------------------------------

    def _bind_spaces(self, n_states: int, n_actions: int) -> None:
        from nchain_agents.limits import space_problem

        problem = space_problem(n_states, n_actions)
        if problem is not None:
            raise SpaceMismatchError(f"the env's spaces are too large: {problem}")
        if self.n_states is None:
            self.n_states, self.n_actions = n_states, n_actions
            self._setup()
        elif (self.n_states, self.n_actions) != (n_states, n_actions):
            raise SpaceMismatchError(
                f"this agent was built for Discrete({self.n_states}) observations and "
                f"Discrete({self.n_actions}) actions, but the env has Discrete({n_states}) "
                f"and Discrete({n_actions})"
            )

    def check_env(self, env: gym.Env) -> tuple[int, int]:
        """Check the env's spaces against this agent's; returns ``(n_states, n_actions)``."""
        from nchain_agents.limits import space_problem

        n_states = discrete_size(env.observation_space, "observation")
        n_actions = discrete_size(env.action_space, "action")
        problem = space_problem(n_states, n_actions)
        if problem is not None:
            raise SpaceMismatchError(f"the env's spaces are too large: {problem}")
        if self.is_trained:
            self._bind_spaces(n_states, n_actions)  # no-op if equal, else SpaceMismatchError
        return n_states, n_actions

    # -- the API ----------------------------------------------------------------------

    def learn(
        self,
        env: gym.Env,
        episodes: int | None = None,
        *,
        callback: Callback | None = None,
        progress_bar: bool = False,
        backend: str = "auto",
    ) -> Self:
        """Train on ``env`` for ``episodes`` episodes (default: the agent's own budget).

        Args:
            env: a Gymnasium env with ``Discrete`` observation and action spaces.
            episodes: number of episodes; ``None`` uses ``default_episodes``.
            callback: called with :class:`EpisodeStats` after each episode;
                returning ``False`` stops training.
            progress_bar: draw a progress bar on the terminal (needs ``rich``).
            backend: ``"env"`` steps ``env`` from Python; ``"fused"`` runs NChain's
                dynamics inside the agent's compiled loop (same algorithm, same
                random streams); ``"auto"`` (default) takes the fused path when the
                agent has one and ``env`` is the registered NChain-v0 with only
                Gymnasium's standard wrappers, so your own wrappers are never bypassed.

        Returns:
            ``self``, so that ``load_agent(...).learn(env)`` is one line.
        """
        from nchain_gym.env import is_whole_number

        episodes = self.default_episodes if episodes is None else episodes
        if not is_whole_number(episodes, 0):
            raise HyperparameterError(f"episodes must be an integer >= 0, got {episodes!r}")
        episodes = int(episodes)
        type(self).prepare()
        fused = self._fused_parameters(env, backend)
        self._bind_spaces(*self.check_env(env))

        bar = None
        if progress_bar:
            from nchain_agents.progress import EpisodeProgress

            bar = EpisodeProgress(episodes, label=type(self).__name__)
        done = 0

        def on_episode(reward: float, length: int, epsilon: float) -> bool:
            nonlocal done
            done += 1
            self.history.append(reward, length, epsilon)
            self.num_timesteps += int(length)
            stats = EpisodeStats(done, episodes, float(reward), int(length), float(epsilon))
            if bar is not None:
                bar.update(stats)
            return not (callback is not None and callback(stats) is False)

        try:
            if episodes and fused is not None:
                chunked = bar is not None or callback is not None
                self._learn_fused(fused, episodes, on_episode, chunked)
            elif episodes:
                self._learn(env, episodes, on_episode)
        finally:
            if bar is not None:
                bar.close()
        return self

    def _fused_parameters(self, env: gym.Env, backend: str) -> dict[str, Any] | None:
        from nchain_gym.env import check_episodes_end, unmodified_nchain

        if backend not in ("auto", "env", "fused"):
            raise ValueError(f"backend must be 'auto', 'env' or 'fused', got {backend!r}")
        params = unmodified_nchain(env) if backend != "env" and self.has_fused_path else None
        if backend == "fused" and params is None:
            raise ValueError(
                f"backend='fused' needs an agent with a fused NChain path and an env made by "
                f"gym.make('NChain-v0', ...) with only Gymnasium's standard wrappers; "
                f"{type(self).__name__} with {env} does not qualify (use backend='env')"
            )
        if params is None:
            check_episodes_end(env)
        return params

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, None]:
        """Actions for one observation or a batch, in Stable-Baselines3's shape.

        Args:
            observation: a state index, or an array of them (any shape).
            state, episode_start: accepted for SB3 compatibility; unused (no memory).
            deterministic: ``True`` for the greedy action (``argmax``, ties to the
                lowest action); ``False`` for the agent's training behaviour.

        Returns:
            ``(actions, None)`` with ``actions`` shaped like ``observation``.
        """
        self._require_trained()
        one_state = isinstance(observation, (int, np.integer)) and not isinstance(observation, bool)
        if one_state and 0 <= observation < self.n_states:  # skip the array checks
            single = np.array([observation], dtype=np.int64)
            return self._predict(single, bool(deterministic)).reshape(()), None
        obs = np.asarray(observation)
        if obs.dtype.kind not in "iu" or (
            obs.size and (obs.min() < 0 or obs.max() >= self.n_states)
        ):
            raise ValueError(
                f"observation must be state indices in 0..{self.n_states - 1}, got {observation!r}"
            )
        actions = self._predict(obs.reshape(-1).astype(np.int64), bool(deterministic))
        return actions.reshape(obs.shape), None

    def _require_trained(self) -> None:
        if self.n_states is None:
            raise NotTrainedError(
                f"{type(self).__name__} has not been trained: call learn(env) first, "
                "or load a saved agent"
            )

    def save(self, path: str | Path) -> Path:
        """Save to one zip file (atomically); ``.zip`` is added when there is no suffix.

        Returns:
            The path written.
        """
        from nchain_agents.files import save_agent

        return save_agent(self, path)

    @classmethod
    def load(cls, path: str | Path) -> Agent:
        """Load a saved agent; on a subclass, the file must hold that agent type."""
        from nchain_agents.files import load_agent_file

        return load_agent_file(path, expected=None if cls is Agent else cls)

    # -- for subclasses ---------------------------------------------------------------

    def _setup(self) -> None:
        raise NotImplementedError

    def _learn(self, env: gym.Env, episodes: int, on_episode: Callable[..., bool]) -> None:
        raise NotImplementedError

    def _learn_fused(
        self,
        params: dict[str, Any],
        episodes: int,
        on_episode: Callable[..., bool],
        chunked: bool,
    ) -> None:
        """Train on NChain(``params``) in a compiled loop; ``chunked``: honour per-episode stops."""
        raise NotImplementedError

    def _predict(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        raise NotImplementedError

    def q_values(self) -> np.ndarray:
        """The agent's ``(n_states, n_actions)`` table of action values."""
        raise NotImplementedError

    def _state_arrays(self) -> dict[str, np.ndarray]:
        """Arrays that, with the hyperparameters, restore the learned state."""
        raise NotImplementedError

    def _expected_arrays(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """``{name: (shape, dtype kind)}`` that ``_restore_arrays`` needs (for validation)."""
        raise NotImplementedError

    def _restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def _check_arrays(self, arrays: dict[str, np.ndarray]) -> str | None:
        """What is wrong with these state arrays, or ``None`` (run by save and by load).

        The default asks every floating-point array to be finite.
        """
        for name, array in arrays.items():
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                return f"array {name!r} holds non-finite values"
        return None

    def _state_files(self) -> dict[str, bytes]:
        """Extra binary files to store (e.g. a ``.keras`` model)."""
        return {}

    def _restore_files(self, files: dict[str, bytes]) -> None:
        if files:
            raise NotImplementedError

    def env_seed(self) -> int:
        """A seed for the env's first reset in ``learn``, drawn from the agent's generator."""
        return int(self._rng.integers(2**31 - 1))
