"""The one agent API (``learn`` / ``predict`` / ``save`` / ``load``) and the contract behind it.

An agent is a keyword-only dataclass whose init fields are its hyperparameters
(declared with :func:`hyperparameter`, validated on construction) and which
implements the abstract hooks of :class:`Agent`. The base class owns everything
around them: seeding, space checks, the episode loop over a real env, the epsilon
schedule, the training history, callbacks, progress bars, predict batching, and
saving and loading through :mod:`nchain_agents.archive`.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from nchain_agents import archive
from nchain_agents.errors import (
    AgentFileError,
    AgentStateError,
    InvalidArgumentError,
    NotTrainedError,
    SpaceMismatchError,
    short_repr,
)
from nchain_agents.fused import FusedNChain, nchain_params_for, trains_in_batches
from nchain_agents.history import Callback, EpisodeSink, EpisodeStats, History
from nchain_agents.hyperparameters import (
    Check,
    hyperparameter,
    in_range,
    one_of,
    validate_fields,
)
from nchain_agents.limits import space_problem

__all__ = [
    "Agent",
    "AgentState",
    "Callback",
    "Check",
    "EpisodeSink",
    "EpisodeStats",
    "History",
    "check_episodes_end",
    "discrete_size",
    "hyperparameter",
    "in_range",
    "learn_many",
    "one_of",
]

if TYPE_CHECKING:
    import gymnasium as gym
    from typing_extensions import Self

    from nchain_gym.dynamics import NChainParams


LOOPS = ("auto", "env", "fused")


@dataclass
class AgentState:
    """What an agent's learned state is made of, as :meth:`Agent.get_state` returns it.

    Attributes:
        arrays: NumPy arrays of plain numbers, by name (saved as ``.npy``).
        files: opaque payloads by file name (e.g. a native ``model.keras``).
    """

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)


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


def check_episodes_end(env: Any) -> None:
    """Raise if ``env`` is an NChainEnv without a TimeLimit: its episodes would never end."""
    from gymnasium import Wrapper
    from gymnasium.wrappers import TimeLimit

    from nchain_gym.env import NChainEnv

    layer = env
    while isinstance(layer, Wrapper):
        if isinstance(layer, TimeLimit):
            return
        layer = layer.env
    if isinstance(layer, NChainEnv):
        raise InvalidArgumentError(
            "NChainEnv never ends an episode by itself: make it with "
            "gym.make('NChain-v0') (1000-step limit) or wrap it in gymnasium's TimeLimit"
        )


@dataclass(kw_only=True, eq=False)
class Agent(ABC):
    """Base class of every agent, built-in or from a plugin.

    A subclass is a keyword-only dataclass (``@dataclass(kw_only=True, eq=False)``)
    whose fields, declared with :func:`hyperparameter`, are its hyperparameters. It
    implements these hooks; the base class calls them:

    - :meth:`setup`: allocate a fresh table or model (first ``learn``);
    - :meth:`act` and :meth:`update`: one step of training on a real env;
    - :meth:`policy`: actions for a batch of states (``predict``);
    - :meth:`q_values`: the ``(n_states, n_actions)`` value table;
    - :meth:`get_state`, :meth:`set_state`, :meth:`state_layout`: saving and loading.

    Optional: :meth:`start_learning`, :meth:`check_state`, :meth:`prepare`, and
    :class:`nchain_agents.fused.FusedNChain` for a compiled NChain loop.

    Public attributes: ``rng`` (the agent's own ``numpy.random.Generator``: draw all
    randomness from it), ``history``, ``num_timesteps``, ``current_epsilon``, and,
    once trained or loaded, ``n_states`` and ``n_actions``. An agent with an ``epsilon``
    hyperparameter (and optionally ``epsilon_decay``) explores on the tutorial's
    schedule: ``epsilon *= epsilon_decay`` at the start of every episode.
    """

    seed: int | None = hyperparameter(None, "seed of the agent's own random generator")

    default_episodes: ClassVar[int] = 100
    """The training budget of ``learn(env)`` when ``episodes`` is not given."""
    registered_name: ClassVar[str | None] = None
    """Stamped by the registry: the name this class is registered under."""
    distribution: ClassVar[str | None] = None
    """Stamped by the registry: the distribution (and below, version) providing it."""
    distribution_version: ClassVar[str | None] = None
    greedy_is_a_table: ClassVar[bool] = False
    """Set ``True`` when ``policy(states, deterministic=True)`` depends on the states
    only (no randomness, no memory): ``evaluate`` then looks greedy actions up in a
    table made once instead of calling ``predict`` every step."""

    def __post_init__(self) -> None:
        validate_fields(self)
        self.rng: np.random.Generator = np.random.default_rng(self.seed)
        self.history = History()
        self.num_timesteps = 0
        self.current_epsilon: float = float(getattr(self, "epsilon", math.nan))
        self._spaces: tuple[int, int] | None = None

    # -- the contract: hooks a subclass implements --------------------------------------

    @abstractmethod
    def setup(self) -> None:
        """Allocate a fresh table or model for ``self.n_states`` x ``self.n_actions``."""

    @abstractmethod
    def act(self, state: int) -> int:
        """The training behaviour's action in ``state`` (explore with ``self.current_epsilon``)."""

    @abstractmethod
    def update(
        self, state: int, action: int, reward: float, next_state: int, terminated: bool
    ) -> None:
        """Learn from one transition (``terminated``: ``next_state`` has no future)."""

    @abstractmethod
    def policy(self, states: np.ndarray, deterministic: bool) -> np.ndarray:
        """Actions for a 1-D ``int64`` array of valid states: greedy or the behaviour policy."""

    @abstractmethod
    def q_values(self) -> np.ndarray:
        """The ``(n_states, n_actions)`` table of action values (a copy)."""

    @abstractmethod
    def get_state(self) -> AgentState:
        """The learned state that, with the hyperparameters, restores this agent."""

    @abstractmethod
    def set_state(self, state: AgentState) -> None:
        """Restore what :meth:`get_state` returned (spaces are bound; ``setup`` is not run).

        ``state`` has already passed :meth:`state_layout` and :meth:`check_state`.
        """

    @abstractmethod
    def state_layout(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """``{array name: (shape, allowed dtype kinds)}`` of :meth:`get_state`'s arrays."""

    def check_state(self, state: AgentState) -> str | None:
        """What is wrong with a state's values, or ``None``: run by ``save`` and by ``load``.

        The default asks every floating-point array to be finite.
        """
        for name, array in state.arrays.items():
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                return f"array {name!r} holds non-finite values"
        return None

    def start_learning(self) -> None:  # noqa: B027  (optional hook, empty by default)
        """Called at the start of every ``learn`` call, after ``setup``. Default: nothing."""

    def spaces_problem(self, n_states: int, n_actions: int) -> str | None:
        """Why this agent cannot have these space sizes (beyond the common limits), or
        ``None``; checked by ``check_env``, ``learn`` and ``load``. Default: ``None``."""
        return None

    @classmethod  # noqa: B027  (optional hook, empty by default)
    def prepare(cls) -> None:
        """Import what this agent needs (once per process) before any training starts.

        Tournaments and sweeps call it in the calling thread before their workers
        start, so that heavy imports that are not thread-safe (TensorFlow) never race;
        ``learn`` calls it too. Raises :class:`~nchain_agents.errors.MissingExtraError`
        when an optional dependency is not installed. Default: nothing.
        """

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
        """Whether the agent has learned (or loaded) a table or model."""
        return self._spaces is not None

    @property
    def n_states(self) -> int:
        """Size of the observation space the agent was built for."""
        return self._require_trained()[0]

    @property
    def n_actions(self) -> int:
        """Size of the action space the agent was built for."""
        return self._require_trained()[1]

    def _require_trained(self) -> tuple[int, int]:
        if self._spaces is None:
            raise NotTrainedError(
                f"{type(self).__name__} has not been trained: call learn(env) first, "
                "or load a saved agent"
            )
        return self._spaces

    # -- spaces -------------------------------------------------------------------------

    def check_env(self, env: gym.Env) -> tuple[int, int]:
        """Check the env's spaces (Discrete, within the limits, and the agent's own once
        trained); returns ``(n_states, n_actions)``."""
        n_states = discrete_size(env.observation_space, "observation")
        n_actions = discrete_size(env.action_space, "action")
        self._check_spaces(n_states, n_actions)
        return n_states, n_actions

    def _check_spaces(self, n_states: int, n_actions: int) -> None:
        problem = space_problem(n_states, n_actions) or self.spaces_problem(n_states, n_actions)
        if problem is not None:
            raise SpaceMismatchError(f"the env's spaces are too large: {problem}")
        if self._spaces is not None and self._spaces != (n_states, n_actions):
            raise SpaceMismatchError(
                f"this agent was built for Discrete({self._spaces[0]}) observations and "
                f"Discrete({self._spaces[1]}) actions, but the env has Discrete({n_states}) "
                f"and Discrete({n_actions})"
            )

    def _bind(self, n_states: int, n_actions: int, *, fresh: bool) -> None:
        """Bind the spaces; ``fresh`` runs :meth:`setup` (else a state is about to be set)."""
        self._check_spaces(n_states, n_actions)
        if self._spaces is None:
            self._spaces = (n_states, n_actions)
            if fresh:
                try:
                    self.setup()
                except BaseException:
                    self._spaces = None
                    raise

    # -- learning -------------------------------------------------------------------------

    def learn(
        self,
        env: gym.Env,
        episodes: int | None = None,
        *,
        callback: Callback | None = None,
        progress_bar: bool = False,
        loop: str = "auto",
    ) -> Self:
        """Train on ``env`` for ``episodes`` episodes (default: the agent's own budget).

        Args:
            env: a Gymnasium env with ``Discrete`` observation and action spaces.
            episodes: number of episodes; ``None`` uses ``default_episodes``.
            callback: called with :class:`EpisodeStats` after each episode;
                returning ``False`` stops training.
            progress_bar: draw a progress bar on the terminal (needs ``rich``).
            loop: ``"env"`` steps ``env`` from Python; ``"fused"`` runs NChain's
                dynamics inside the agent's compiled loop (same algorithm, same random
                streams); ``"auto"`` (default) takes the fused loop when the agent has
                one and ``env`` is the registered NChain-v0 with only Gymnasium's
                standard wrappers, so your own wrappers are never bypassed.

        Returns:
            ``self``, so that ``load_agent(...).learn(env)`` is one line.
        """
        episodes, params = self._start_learning(env, episodes, loop)
        bar = None
        if progress_bar:
            from nchain_agents.progress import ProgressBar

            bar = ProgressBar(type(self).__name__, episodes, "episodes")
        on_episode = self._recorder(episodes, callback, bar)
        try:
            if episodes and params is not None:
                assert isinstance(self, FusedNChain)
                chunked = bar is not None or callback is not None
                self.learn_nchain(params, episodes, on_episode, chunked)
            elif episodes:
                self._env_loop(env, episodes, on_episode)
        finally:
            if bar is not None:
                bar.close()
        return self

    def _start_learning(
        self, env: gym.Env, episodes: int | None, loop: str
    ) -> tuple[int, NChainParams | None]:
        """Checks and set-up shared by ``learn`` and ``learn_many``: the episode count,
        and the NChain setting of a fused loop (``None``: the env loop)."""
        from nchain_gym.dynamics import is_whole_number

        episodes = self.default_episodes if episodes is None else episodes
        if not is_whole_number(episodes, 0):
            raise InvalidArgumentError(f"episodes must be an integer >= 0, got {episodes!r}")
        if loop not in LOOPS:
            raise InvalidArgumentError(f"loop must be one of {', '.join(LOOPS)}, got {loop!r}")
        type(self).prepare()
        params = nchain_params_for(self, env, loop)
        if params is None:
            check_episodes_end(env)
        self._bind(*self.check_env(env), fresh=True)
        self.start_learning()
        return int(episodes), params

    def _recorder(self, episodes: int, callback: Callback | None, bar: Any) -> EpisodeSink:
        """The ``on_episode`` sink of a training run: history, counters, bar, callback."""
        done = 0

        def on_episode(reward: float, length: int, epsilon: float) -> bool:
            nonlocal done
            done += 1
            self.history.append(reward, length, epsilon)
            self.num_timesteps += int(length)
            stats = EpisodeStats(done, episodes, float(reward), int(length), float(epsilon))
            if bar is not None:
                bar.episode(stats)
            return not (callback is not None and callback(stats) is False)

        return on_episode

    def _env_loop(self, env: gym.Env, episodes: int, on_episode: EpisodeSink) -> None:
        """The one episode loop over a real env: reset, act, step, update, record."""
        for episode in range(episodes):
            state, _ = env.reset(seed=self.draw_env_seed() if episode == 0 else None)
            epsilon = self.next_epsilon()
            total, steps = 0.0, 0
            while True:
                action = self.act(int(state))
                next_state, reward, terminated, truncated, _ = env.step(action)
                self.update(int(state), action, float(reward), int(next_state), bool(terminated))
                total += float(reward)
                steps += 1
                state = next_state
                if terminated or truncated:
                    break
            if not on_episode(total, steps, epsilon):
                break

    def next_epsilon(self) -> float:
        """Start an episode on the exploration schedule; returns its epsilon (``nan``: none).

        ``current_epsilon *= epsilon_decay`` when the agent has those hyperparameters (the
        tutorial decays before the first episode too). Fused loops apply the same rule.
        """
        decay = getattr(self, "epsilon_decay", None)
        if decay is not None and not math.isnan(self.current_epsilon):
            self.current_epsilon *= float(decay)
        return self.current_epsilon

    def draw_env_seed(self) -> int:
        """The seed of the env's first reset in ``learn``, drawn from ``rng``.

        Fused loops draw it at the same point, so both loops see the same slips.
        """
        return int(self.rng.integers(2**31 - 1))

    # -- playing --------------------------------------------------------------------------

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
        n_states, _ = self._require_trained()
        one_state = isinstance(observation, (int, np.integer)) and not isinstance(observation, bool)
        if one_state and 0 <= observation < n_states:  # skip the array checks
            single = np.array([observation], dtype=np.int64)
            return self.policy(single, bool(deterministic)).reshape(()), None
        obs = np.asarray(observation)
        if obs.dtype.kind not in "iu" or (obs.size and (obs.min() < 0 or obs.max() >= n_states)):
            raise InvalidArgumentError(
                f"observation must be state indices in 0..{n_states - 1}, got {observation!r}"
            )
        actions = self.policy(obs.reshape(-1).astype(np.int64), bool(deterministic))
        return actions.reshape(obs.shape), None

    # -- saving and loading -------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Save to one zip file (atomically); ``.zip`` is added when there is no suffix.

        Raises:
            AgentStateError: the agent holds what a file may not (see ``check_state``,
                and the history limit), or its class is not registered.

        Returns:
            The path written.
        """
        name = type(self).__dict__.get("registered_name")
        if name is None:
            raise AgentStateError(
                f"{type(self).__qualname__} is not registered under any name; register it "
                "through an nchain_agents plugin before saving it"
            )
        state = self.get_state() if self.is_trained else AgentState()
        history = self.history.to_arrays()
        problem = archive.history_problem(history) or (
            self._state_problem(state) if self.is_trained else None
        )
        if problem is not None:
            raise AgentStateError(f"cannot save this {type(self).__name__}: {problem}")
        contents = archive.Contents(
            manifest={
                "agent": name,
                "distribution": type(self).__dict__.get("distribution"),
                "distribution_version": type(self).__dict__.get("distribution_version"),
                "class": f"{type(self).__module__}.{type(self).__qualname__}",
                "seed": self.seed,
                "hyperparameters": self.get_hyperparameters(),
                "spaces": archive.spaces_entry(self._spaces),
                "training": {
                    "episodes": len(self.history),
                    "timesteps": int(self.num_timesteps),
                    "last_mean_reward_per_step": (
                        float(self.history.mean_reward[-1]) if len(self.history) else None
                    ),
                },
                "rng_state": self.rng.bit_generator.state,
            },
            arrays=state.arrays,
            files=state.files,
            history=history,
        )
        return archive.write(path, contents)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load a saved agent of this class (``nchain_agents.load`` loads any agent).

        Raises:
            AgentFileError: the file is damaged or foreign, or holds another agent.
        """
        if cls.__dict__.get("registered_name") is None:
            raise TypeError(
                f"{cls.__qualname__}.load needs a registered agent class; "
                "use nchain_agents.load(path) to load any saved agent"
            )
        contents = archive.read(path)
        if contents.manifest["agent"] != cls.registered_name:
            raise AgentFileError(
                f"{path}: holds a {contents.manifest['agent']!r} agent, not a "
                f"{cls.registered_name!r} ({cls.__name__})"
            )
        return archive.restoring(path, lambda: cls.from_contents(contents))

    @classmethod
    def from_contents(cls, contents: archive.Contents) -> Self:
        """Rebuild an agent from a validated archive (the class must be the file's)."""
        manifest = contents.manifest
        stored = manifest.get("class")
        here = f"{cls.__module__}.{cls.__qualname__}"
        if stored is not None and stored != here:
            raise AgentFileError(
                f"the file says agent {manifest['agent']!r} is {short_repr(stored)}, but "
                f"{manifest['agent']!r} is {here} here: the file was relabelled or comes "
                "from another plugin"
            )
        try:
            agent = cls(seed=manifest.get("seed"), **manifest["hyperparameters"])
        except (TypeError, ValueError) as exc:
            raise AgentFileError(
                f"hyperparameters do not fit {manifest['agent']!r}: {exc}"
            ) from None
        agent.history = History.from_arrays(contents.history)
        agent.num_timesteps = manifest["training"]["timesteps"]
        spaces = archive.spaces_of(manifest)
        state = AgentState(contents.arrays, contents.files)
        if spaces is None:
            if state.arrays or state.files:
                raise AgentFileError("an untrained agent must not carry learned state")
        else:
            agent._bind(*spaces, fresh=False)
            problem = agent._state_problem(state)
            if problem is not None:
                raise AgentFileError(problem)
            agent.set_state(state)
        # Last, so that nothing above moves the restored stream.
        if manifest.get("rng_state") is not None:
            try:
                agent.rng.bit_generator.state = manifest["rng_state"]
            except (TypeError, ValueError, KeyError, OverflowError) as exc:
                raise AgentFileError(
                    f"rng_state does not fit the agent's generator ({exc})"
                ) from None
        return agent

    def _state_problem(self, state: AgentState) -> str | None:
        layout = self.state_layout()
        if set(state.arrays) != set(layout):
            return f"arrays {sorted(state.arrays)} do not match the agent's {sorted(layout)}"
        for name, (shape, kinds) in layout.items():
            array = state.arrays[name]
            if array.shape != shape or array.dtype.kind not in kinds:
                return (
                    f"array {name!r} has shape {array.shape} and dtype {array.dtype}; "
                    f"expected shape {shape} for the agent's spaces"
                )
        return self.check_state(state)


def learn_many(
    agents: Sequence[Agent],
    env: gym.Env,
    episodes: int | None = None,
    *,
    loop: str = "auto",
    batch_size: int | None = None,
) -> list[Agent]:
    """Train several agents on ``env``, as ``agent.learn(env, episodes, loop=loop)`` each
    would, batching those that can train together.

    Agents of one class with a batched fused loop (``FusedNChain.learn_nchain_batch``,
    e.g. keras-dqn) train in lock-step in one compiled loop when the fused loop applies;
    each consumes exactly the random streams it would consume alone, so each ends where
    ``learn`` would have left it. Every other agent trains on its own, one after another
    on ``env`` (each ``learn`` seeds its first reset, so sharing ``env`` changes nothing).

    Args:
        agents: the agents, each its own object.
        env: the env (for the fused loop it only says which NChain to run).
        episodes: episodes per agent; ``None``: each agent's ``default_episodes``.
        loop: as in :meth:`Agent.learn`.
        batch_size: most agents per batch; ``None`` lets the agent class choose from
            the work and the machine's memory.

    Returns:
        ``agents``, as a list.
    """
    agents = list(agents)
    if len({id(agent) for agent in agents}) != len(agents):
        raise InvalidArgumentError("learn_many needs distinct agent objects")
    batch_size = check_batch_size(batch_size)
    batches: dict[tuple[type, int, NChainParams], list[tuple[Agent, EpisodeSink]]] = {}
    for agent in agents:
        fused = trains_in_batches(type(agent)) and nchain_params_for(agent, env, loop) is not None
        if not fused:
            agent.learn(env, episodes, loop=loop)
            continue
        count, params = agent._start_learning(env, episodes, loop)
        assert params is not None
        if count:
            sink = agent._recorder(count, None, None)
            batches.setdefault((type(agent), count, params), []).append((agent, sink))
    for (cls, count, params), members in batches.items():
        assert issubclass(cls, FusedNChain)
        cls.learn_nchain_batch(
            [agent for agent, _ in members], params, count,
            [sink for _, sink in members], False, batch_size,
        )  # fmt: skip
    return agents


def check_batch_size(batch_size: Any) -> int | None:
    """``batch_size`` as ``None`` or an int >= 1, or an ``InvalidArgumentError`` naming it."""
    from nchain_gym.dynamics import is_whole_number

    if batch_size is not None and not is_whole_number(batch_size, 1):
        raise InvalidArgumentError(
            f"batch_size must be None or an integer >= 1, got {batch_size!r}"
        )
    return None if batch_size is None else int(batch_size)
