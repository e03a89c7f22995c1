"""``keras-dqn``: the tutorial's small Keras network trained online, step by step."""

from __future__ import annotations

import tempfile
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

    @classmethod
    def prepare(cls) -> None:
        """Import TensorFlow and Keras (thread-safe, once); names the extra if missing."""
        _graph().import_tensorflow()

    # -- the hooks ---------------------------------------------------------------------

    def network_parameters(self, n_states: int, n_actions: int) -> int:
        """Weights of the network for these space sizes."""
        h = self.hidden_units
        return n_states * h + h + h * n_actions + n_actions

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
        model = graph.build_model(self.n_states, self.n_actions, self.hidden_units, seed)
        self._use(graph.DQNState(model, self.learning_rate))

    def _use(self, state: Any) -> None:
        self._dqn = state
        self._compiled: dict[Any, Any] = {}
        self._q_table: np.ndarray | None = None
        self._next_q: tuple[int, np.ndarray] | None = None  # Q(s') from the last update

    @property
    def model(self) -> Any:
        """The Keras model (call ``q_values()`` for its table)."""
        self._require_trained()
        return self._dqn.model

    def q_values(self) -> np.ndarray:
        self._require_trained()
        if self._q_table is None:
            self._q_table = np.asarray(_graph().q_table(self._dqn.params), dtype=np.float64)
        return self._q_table.copy()

    def _env_step(self) -> tuple[Any, Any]:
        if "env" not in self._compiled:
            self._compiled["env"] = _graph().make_env_step(self._dqn, self.gamma)
        return self._compiled["env"]

    def act(self, state: int) -> int:
        u_explore, u_action = self.rng.random(2)  # two uniforms per step, in both loops
        if u_explore < self.current_epsilon:
            return int(u_action * self.n_actions)
        if self._next_q is not None and self._next_q[0] == state:
            q = self._next_q[1]
        else:
            q = self._env_step()[0](state).numpy()
        return int(np.argmax(q))

    def update(
        self, state: int, action: int, reward: float, next_state: int, terminated: bool
    ) -> None:
        q_next = self._env_step()[1](state, action, reward, next_state, terminated)
        self._next_q = (next_state, q_next.numpy())
        self._q_table = None

    def learn_nchain(
        self, params: NChainParams, episodes: int, on_episode: EpisodeSink, chunked: bool
    ) -> None:
        from nchain_gym.dynamics import SlipStream

        if params not in self._compiled:
            next_state, rewards = params.outcome_table()
            self._compiled[params] = _graph().make_fused_episode(
                self._dqn, next_state, rewards, params.slip, self.gamma
            )
        episode_fn = self._compiled[params]
        steps = params.horizon
        slips = SlipStream(np.random.default_rng(self.draw_env_seed()))  # as env.reset(seed)
        self._next_q = None
        for _ in range(episodes):
            eps = self.next_epsilon()
            uniforms = self.rng.random((steps, 2))  # the env loop's per-step draws, in order
            total = float(episode_fn(uniforms, slips.take(steps), np.asarray(eps)))
            self._q_table = None
            if not on_episode(total, steps, eps):
                break

    def policy(self, states: np.ndarray, deterministic: bool) -> np.ndarray:
        greedy = self.q_values()[states].argmax(axis=1)
        if deterministic:
            return greedy
        n = len(states)
        explore = self.rng.random(n) < self.current_epsilon
        return np.where(explore, self.rng.integers(self.n_actions, size=n), greedy)

    # -- saving and loading ---------------------------------------------------------------

    def _weights_shapes(self) -> list[tuple[int, ...]]:
        h, s, a = self.hidden_units, self.n_states, self.n_actions
        return [(s, h), (h,), (h, a), (a,)]

    def get_state(self) -> AgentState:
        arrays = {
            "epsilon": np.array([self.current_epsilon]),
            "adam_step": np.array([float(self._dqn.step)]),
        }
        for i, (m, v) in enumerate(zip(self._dqn.momentums, self._dqn.velocities, strict=True)):
            arrays[f"adam_m{i}"] = m.numpy()
            arrays[f"adam_v{i}"] = v.numpy()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / MODEL_FILE
            self._dqn.model.save(path)
            return AgentState(arrays, {MODEL_FILE: path.read_bytes()})

    def state_layout(self) -> dict[str, tuple[tuple[int, ...], str]]:
        wanted: dict[str, tuple[tuple[int, ...], str]] = {
            "epsilon": ((1,), "f"),
            "adam_step": ((1,), "f"),
        }
        for i, shape in enumerate(self._weights_shapes()):
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
        self._use(
            graph.DQNState(
                model,
                self.learning_rate,
                m=[arrays[f"adam_m{i}"].astype(np.float32) for i in range(4)],
                v=[arrays[f"adam_v{i}"].astype(np.float32) for i in range(4)],
                step=int(arrays["adam_step"][0]),
            )
        )
        self.current_epsilon = float(arrays["epsilon"][0])


@hookimpl
def register_agents(register):
    register("keras-dqn", KerasDQNAgent)
