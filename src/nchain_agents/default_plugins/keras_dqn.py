"""``keras-dqn``: the tutorial's small Keras network trained online, step by step."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nchain_agents.base import Agent, AgentState, EpisodeSink, hyperparameter, in_range
from nchain_agents.fused import FusedNChain
from nchain_agents.hookspecs import hookimpl
from nchain_agents.limits import MAX_NETWORK_PARAMETERS

if TYPE_CHECKING:
    from nchain_gym.dynamics import NChainParams

MODEL_FILE = "model.keras"


def _graph():
    from nchain_agents import dqn_graph

    return dqn_graph


@dataclass(kw_only=True, eq=False)
class KerasDQNAgent(Agent, FusedNChain):
    """The tutorial's Keras DQN: one-hot state -> Dense(10, sigmoid) -> Dense(2, linear).

    Online Q-learning with a network: after every step, one Adam step (Keras
    defaults) on the MSE towards the tutorial's target vector, where only the taken
    action's output moves towards ``r + gamma * max_a' Q(s', a')``. Epsilon-greedy
    exploration with ``eps *= epsilon_decay`` at the start of each episode (no
    zero-row rule). The history's mean reward per step is the tutorial's curve.

    Source: the tutorial's Keras section (gamma 0.95, eps 0.5, decay 0.999, 1000
    episodes, ``optimizer='adam'``, ``loss='mse'``).
    """

    gamma: float = hyperparameter(0.95, "discount factor (tutorial: 0.95)", in_range(0, 1))
    epsilon: float = hyperparameter(0.5, "initial exploration rate (tutorial: 0.5)", in_range(0, 1))
    epsilon_decay: float = hyperparameter(
        0.999, "factor applied to epsilon at the start of each episode", in_range(0, 1)
    )
    hidden_units: int = hyperparameter(10, "width of the sigmoid hidden layer", in_range(1, 4096))
    learning_rate: float = hyperparameter(
        0.001, "Adam step size (Keras default 0.001)", in_range(0, 1, low_open=True)
    )

    default_episodes = 1000
    greedy_is_a_table = True

    @classmethod
    def prepare(cls) -> None:
        """Import TensorFlow and Keras (thread-safe, once); names the extra if missing."""
        _graph().import_tensorflow()

    # -- the hooks ---------------------------------------------------------------------

    def network_parameters(self, n_states: int, n_actions: int) -> int:
        """Weights of the network for these space sizes."""
        return sum(math.prod(shape) for shape in self._shapes(n_states, n_actions))

    def _shapes(self, n_states: int, n_actions: int) -> list[tuple[int, ...]]:
        return _graph().shapes_of(n_states, n_actions, self.hidden_units)

    def spaces_problem(self, n_states: int, n_actions: int) -> str | None:
        size = self.network_parameters(n_states, n_actions)
        if size > MAX_NETWORK_PARAMETERS:
            return (
                f"a network with {size:,} weights (keras-dqn allows "
                f"{MAX_NETWORK_PARAMETERS:,}; use fewer hidden_units or a smaller env)"
            )
        return None

    def setup(self) -> None:
        graph = _graph()
        seed = int(self.rng.integers(2**31 - 2))
        weights = graph.initial_weights(self.n_states, self.n_actions, self.hidden_units, seed)
        self._hold(graph.Networks.fresh(weights))

    def _hold(self, networks: Any) -> None:
        """Hold ``networks`` (one network, NumPy) and drop the TensorFlow state, if any."""
        self._networks_at_rest: Any = networks
        self._live: Any = None  # a DQNState while the env loop or a lone fused run trains
        self._compiled: dict[Any, Any] = {}
        self._changed()

    def _changed(self) -> None:
        self._q_table: np.ndarray | None = None
        self._model: Any = None
        self._next_q: tuple[int, np.ndarray] | None = None  # Q(s') from the last update

    def _networks(self) -> Any:
        """The network and Adam's state now (a NumPy snapshot)."""
        return self._live.networks() if self._live is not None else self._networks_at_rest

    def _live_state(self) -> Any:
        """The TensorFlow state to train on, made from the one at rest the first time."""
        if self._live is None:
            self._live = _graph().DQNState(self._networks_at_rest, self.learning_rate)
            self._networks_at_rest = None
        return self._live

    @property
    def model(self) -> Any:
        """A Keras model holding the network's current weights (the tutorial's network).

        Training runs on the weights themselves; this is a copy, rebuilt after training.
        """
        self._require_trained()
        if self._model is None:
            graph = _graph()
            model = graph.build_model(self.n_states, self.n_actions, self.hidden_units, 0)
            model.set_weights([w[0] for w in self._networks().unpacked()])
            self._model = model
        return self._model

    def q_values(self) -> np.ndarray:
        self._require_trained()
        if self._q_table is None:
            params = self._networks().model_last()
            self._q_table = np.asarray(_graph().q_table(params)[..., 0], dtype=np.float64)
        return self._q_table.copy()

    def _env_step(self) -> tuple[Any, Any]:
        if "env" not in self._compiled:
            self._compiled["env"] = _graph().make_env_step(self._live_state(), self.gamma)
        return self._compiled["env"]

    def act(self, state: int) -> int:
        draws = self.rng.random(2)  # two uniforms per step, in both loops
        explored = int(_graph().explored_actions(draws, self.current_epsilon, self.n_actions))
        if explored >= 0:
            return explored
        if self._next_q is not None and self._next_q[0] == state:
            q = self._next_q[1]
        else:
            q = self._env_step()[0](state).numpy()
        return int(np.argmax(q))

    def update(
        self, state: int, action: int, reward: float, next_state: int, terminated: bool
    ) -> None:
        q_next = self._env_step()[1](state, action, reward, next_state, terminated)
        self._changed()
        self._next_q = (next_state, q_next.numpy())

    def learn_nchain(
        self, params: NChainParams, episodes: int, on_episode: EpisodeSink, chunked: bool
    ) -> None:
        _train_batch([self], params, episodes, [on_episode], watched=chunked)

    # -- many agents at once ------------------------------------------------------------

    @classmethod
    def batches(cls) -> bool:
        return True

    def _batch_key(self) -> tuple[Any, ...]:
        """Agents with equal keys can share one stacked network and one graph."""
        step = self._networks().step
        return (self.gamma, self.hidden_units, self.learning_rate, self._spaces, step)

    @classmethod
    def learn_nchain_batch(
        cls,
        agents: Sequence[Any],
        params: NChainParams,
        episodes: int,
        sinks: Sequence[EpisodeSink],
        chunked: bool = False,
        batch_size: int | None = None,
    ) -> None:
        """Train the agents in lock-step: B stacked networks in one XLA loop per episode.

        Agents are grouped by what one graph can hold (gamma, network size, learning rate,
        spaces, Adam's step count) and cut into batches of at most ``batch_size``
        (default :func:`auto_batch_size`). Each agent draws from its own generator
        exactly what its own ``learn_nchain`` would draw, in the same order.
        """
        limit = batch_size or auto_batch_size(params.horizon)
        groups: dict[tuple[Any, ...], list[tuple[Any, EpisodeSink]]] = {}
        for agent, sink in zip(agents, sinks, strict=True):
            groups.setdefault(agent._batch_key(), []).append((agent, sink))
        for members in groups.values():
            for i in range(0, len(members), limit):
                chunk = members[i : i + limit]
                agents_, sinks_ = [a for a, _ in chunk], [s for _, s in chunk]
                _train_batch(agents_, params, episodes, sinks_, watched=chunked)

    def policy(self, states: np.ndarray, deterministic: bool) -> np.ndarray:
        greedy = self.q_values()[states].argmax(axis=1)
        if deterministic:
            return greedy
        n = len(states)
        explore = self.rng.random(n) < self.current_epsilon
        return np.where(explore, self.rng.integers(self.n_actions, size=n), greedy)

    # -- saving and loading ---------------------------------------------------------------

    def get_state(self) -> AgentState:
        networks = self._networks()
        arrays = {
            "epsilon": np.array([self.current_epsilon]),
            "adam_step": np.array([float(networks.step)]),
        }
        momentums, velocities = networks.unpacked("m"), networks.unpacked("v")
        for i, (m, v) in enumerate(zip(momentums, velocities, strict=True)):
            arrays[f"adam_m{i}"] = m[0]
            arrays[f"adam_v{i}"] = v[0]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / MODEL_FILE
            self.model.save(path)
            return AgentState(arrays, {MODEL_FILE: path.read_bytes()})

    def state_layout(self) -> dict[str, tuple[tuple[int, ...], str]]:
        wanted: dict[str, tuple[tuple[int, ...], str]] = {
            "epsilon": ((1,), "f"),
            "adam_step": ((1,), "f"),
        }
        for i, shape in enumerate(self._shapes(self.n_states, self.n_actions)):
            wanted[f"adam_m{i}"] = (shape, "f")
            wanted[f"adam_v{i}"] = (shape, "f")
        return wanted

    def check_state(self, state: AgentState) -> str | None:
        problem = super().check_state(state)
        if problem is not None:
            return problem
        arrays = state.arrays
        epsilon, step = float(arrays["epsilon"][0]), float(arrays["adam_step"][0])
        if not 0.0 <= epsilon <= 1.0:
            return f"epsilon must be in [0, 1], got {epsilon!r}"
        if step < 0 or step != int(step):
            return f"Adam's step count must be a whole number >= 0, got {step!r}"
        if any((arrays[f"adam_v{i}"] < 0).any() for i in range(4)):
            return "Adam's second moments must not be negative"
        if set(state.files) != {MODEL_FILE}:
            return f"expected exactly one file {MODEL_FILE!r}, got {sorted(state.files)}"
        return None

    def set_state(self, state: AgentState) -> None:
        from nchain_agents.errors import AgentFileError
        from nchain_agents.keras_archive import checked_model_bytes

        # Checked (members, sizes, the network's config) before Keras sees a byte of it.
        n_states, n_actions = self.n_states, self.n_actions
        clean = checked_model_bytes(
            state.files[MODEL_FILE], n_states, n_actions, self.hidden_units,
            self.network_parameters(n_states, n_actions),
        )  # fmt: skip
        graph = _graph()
        _, keras = graph.import_tensorflow()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / MODEL_FILE
            path.write_bytes(clean)
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
        graph.check_model(model, self.n_states, self.n_actions, self.hidden_units)
        for weight in model.get_weights():
            if weight.dtype != np.float32 or not np.isfinite(weight).all():
                raise AgentFileError("the stored network's weights must be finite float32")
        arrays = state.arrays
        self._hold(
            graph.Networks.of_one(
                model.get_weights(),
                [arrays[f"adam_m{i}"] for i in range(4)],
                [arrays[f"adam_v{i}"] for i in range(4)],
                int(arrays["adam_step"][0]),
            )
        )
        self._model = model
        self.current_epsilon = float(arrays["epsilon"][0])


def auto_batch_size(horizon: int) -> int:
    """How many keras-dqn agents to train at once: at most 1024, and few enough that one
    episode's step codes (4 bytes per step per agent, held twice: stacked, and
    TensorFlow's copy) stay within an eighth of the memory available now."""
    available = _available_memory()
    per_agent = _CODE_BYTES * 2 * max(int(horizon), 1) + 4096
    return int(max(1, min(1024, available // 8 // per_agent)))


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 2**31  # assume 2 GiB where the system does not say


def _train_batch(
    agents: list[KerasDQNAgent],
    params: NChainParams,
    episodes: int,
    sinks: list[EpisodeSink],
    watched: bool,
) -> None:
    """Train agents that share a batch key, in lock-step, in one compiled loop.

    A lone agent trains its own TensorFlow state (whose compiled loop it keeps for its
    next ``learn``); a batch stacks the agents' networks into one state and hands each
    its row back at the end (or when its sink stops it). Unless someone watches each
    episode (``watched``), each agent's draws for several episodes are taken in one call:
    the same numbers in the same order as one episode at a time.
    """
    from nchain_gym.dynamics import SlipStream

    graph = _graph()
    first, size = agents[0], len(agents)
    if size == 1:
        state, cache = first._live_state(), first._compiled
    else:
        networks = graph.Networks.stack([agent._networks() for agent in agents])
        state, cache = graph.DQNState(networks, first.learning_rate), {}
    if params not in cache:
        next_state, rewards = params.outcome_table()
        cache[params] = graph.make_fused_episode(state, next_state, rewards, first.gamma)
    episode_fn = cache[params]
    steps, n_actions = params.horizon, first.n_actions
    # As env.reset(seed=...) would: each agent's slips come from its own stream.
    slips = [SlipStream(np.random.default_rng(agent.draw_env_seed())) for agent in agents]
    # Episodes drawn ahead: their codes for all agents, and one agent's draws at a time.
    per_episode = steps * max(_CODE_BYTES * size, _DRAWN_BYTES)
    chunk = 1 if watched else max(1, min(episodes, _DRAW_BYTES // per_episode))
    active = np.ones(size, dtype=bool)
    codes = np.zeros((chunk, size, steps), np.int32)  # each agent's steps side by side
    eps = np.zeros((chunk, size))

    def stop(i: int) -> None:
        active[i] = False
        if size > 1:
            agents[i]._hold(state.networks().row(i))

    try:
        done = 0
        while done < episodes and active.any():
            n = min(chunk, episodes - done)
            for i in np.flatnonzero(active):
                agent = agents[i]
                eps[:n, i] = [agent.next_epsilon() for _ in range(n)]
                draws = agent.rng.random((n, steps, 2))  # the env loop's draws
                slipped = slips[i].take(n * steps).reshape(n, steps) < params.slip
                codes[:n, i] = graph.step_codes(draws, slipped, eps[:n, i, None], n_actions)
            for k in range(n):
                totals = episode_fn(codes[k].T).numpy()  # the loop reads one step at a time
                for i in np.flatnonzero(active):
                    agents[i]._changed()
                    if not sinks[i](float(totals[i]), steps, float(eps[k, i])):
                        stop(int(i))
                if not active.any():
                    break
            done += n
    finally:
        if size > 1 and active.any():
            trained = state.networks()
            for i in np.flatnonzero(active):
                agents[i]._hold(trained.row(int(i)))


_DRAW_BYTES = 64 * 2**20
"""Memory for the random draws taken ahead of a batch's episodes."""
_CODE_BYTES = 4
"""One step code (int32) per step and agent."""
_DRAWN_BYTES = 8 * 4
"""One agent's draws per step while its codes are made: two uniforms, a slip draw, its
slipped flag and the codes (float64 and int32 temporaries, rounded up)."""


@hookimpl
def register_agents(register):
    register("keras-dqn", KerasDQNAgent)
