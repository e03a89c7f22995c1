"""``keras-dqn``: the tutorial's small Keras network trained online, step by step."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nchain_agents.base import Agent, hyperparameter, in_range
from nchain_agents.hookspecs import hookimpl

if TYPE_CHECKING:
    import gymnasium as gym

MODEL_FILE = "model.keras"


def _graph():
    from nchain_agents import dqn_graph

    return dqn_graph


@dataclass(kw_only=True, eq=False)
class KerasDQNAgent(Agent):
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
    has_fused_path = True

    @classmethod
    def prepare(cls) -> None:
        """Import TensorFlow and Keras (thread-safe, once); names the extra if missing."""
        _graph().import_tensorflow()

    # -- state ------------------------------------------------------------------------

    def network_parameters(self, n_states: int, n_actions: int) -> int:
        """Weights of the network for these space sizes."""
        h = self.hidden_units
        return n_states * h + h + h * n_actions + n_actions

    def _setup(self) -> None:
        from nchain_agents.errors import SpaceMismatchError
        from nchain_agents.limits import MAX_NETWORK_PARAMETERS

        size = self.network_parameters(self.n_states, self.n_actions)
        if size > MAX_NETWORK_PARAMETERS:
            self.n_states = self.n_actions = None
            raise SpaceMismatchError(
                f"a network with {size:,} weights is too large (keras-dqn allows "
                f"{MAX_NETWORK_PARAMETERS:,}); use fewer hidden_units or a smaller env"
            )
        graph = _graph()
        seed = int(self._rng.integers(2**31 - 2))
        model = graph.build_model(self.n_states, self.n_actions, self.hidden_units, seed)
        self._state = graph.DQNState(model)
        self._epsilon = float(self.epsilon)
        self._q_cache: np.ndarray | None = None
        self._compiled: dict[str, Any] = {}

    @property
    def model(self) -> Any:
        """The Keras model (call ``q_values()`` for its table)."""
        self._require_trained()
        return self._state.model

    @property
    def current_epsilon(self) -> float:
        return self._epsilon if self.is_trained else self.epsilon

    def q_values(self) -> np.ndarray:
        self._require_trained()
        if self._q_cache is None:
            self._q_cache = np.asarray(_graph().q_table(self._state.params), dtype=np.float64)
        return self._q_cache.copy()

    # -- env path ---------------------------------------------------------------------

    def _learn(self, env: gym.Env, episodes: int, on_episode: Callable[..., bool]) -> None:
        if "env" not in self._compiled:
            self._compiled["env"] = _graph().make_env_step(
                self._state, self.gamma, self.learning_rate
            )
        act, train_and_act, train = self._compiled["env"]
        rng = self._rng
        self._q_cache = None
        for episode in range(episodes):
            s, _ = env.reset(seed=self.env_seed() if episode == 0 else None)
            self._epsilon *= self.epsilon_decay
            eps = self._epsilon
            a = int(act(np.array([s, *rng.random(2), eps])))
            total, steps = 0.0, 0
            while True:
                s2, r, terminated, truncated, _ = env.step(a)
                total += float(r)
                steps += 1
                transition = [s, a, float(r), s2, float(terminated)]
                if terminated or truncated:
                    train(np.array(transition))
                    break
                a = int(train_and_act(np.array([*transition, *rng.random(2), eps])))
                s = s2
            self._q_cache = None
            if not on_episode(total, steps, eps):
                break

    # -- fused path -------------------------------------------------------------------

    def _learn_fused(
        self,
        params: dict[str, Any],
        episodes: int,
        on_episode: Callable[..., bool],
        chunked: bool,
    ) -> None:
        from nchain_gym.env import SlipStream, outcome_table

        key = ("fused", params["n"], params["slip"], params["small"], params["large"])
        if key not in self._compiled:
            next_state, rewards = outcome_table(params["n"], params["small"], params["large"])
            self._compiled[key] = _graph().make_fused_episode(
                self._state, next_state, rewards, params["slip"], self.gamma, self.learning_rate
            )
        episode_fn = self._compiled[key]
        steps = params["max_episode_steps"]
        slips = SlipStream(np.random.default_rng(self.env_seed()))  # as env.reset(seed=...)
        self._q_cache = None
        for _ in range(episodes):
            self._epsilon *= self.epsilon_decay
            eps = self._epsilon
            uniforms = self._rng.random((steps, 2))  # the env path's per-step draws, in order
            total = float(episode_fn(uniforms, slips.take(steps), np.asarray(eps)))
            self._q_cache = None
            if not on_episode(total, steps, eps):
                break

    # -- playing and saving -----------------------------------------------------------

    def _predict(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        table = self.q_values()
        greedy = table[observations].argmax(axis=1)
        if deterministic:
            return greedy
        n = len(observations)
        explore = self._rng.random(n) < self._epsilon
        return np.where(explore, self._rng.integers(self.n_actions, size=n), greedy)

    def _weights_shapes(self) -> list[tuple[int, ...]]:
        h, s, a = self.hidden_units, self.n_states, self.n_actions
        return [(s, h), (h,), (h, a), (a,)]

    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "epsilon": np.array([self._epsilon]),
            "adam_step": np.array([float(self._state.step.numpy())]),
        }
        for i in range(4):
            arrays[f"adam_m{i}"] = self._state.m[i].numpy()
            arrays[f"adam_v{i}"] = self._state.v[i].numpy()
        return arrays

    def _expected_arrays(self) -> dict[str, tuple[tuple[int, ...], str]]:
        wanted: dict[str, tuple[tuple[int, ...], str]] = {
            "epsilon": ((1,), "f"),
            "adam_step": ((1,), "f"),
        }
        for i, shape in enumerate(self._weights_shapes()):
            wanted[f"adam_m{i}"] = (shape, "f")
            wanted[f"adam_v{i}"] = (shape, "f")
        return wanted

    def _check_arrays(self, arrays: dict[str, np.ndarray]) -> str | None:
        problem = super()._check_arrays(arrays)
        if problem is not None:
            return problem
        epsilon, step = float(arrays["epsilon"][0]), float(arrays["adam_step"][0])
        if not 0.0 <= epsilon <= 1.0:
            return f"epsilon must be in [0, 1], got {epsilon!r}"
        if step < 0 or step != int(step):
            return f"Adam's step count must be a whole number >= 0, got {step!r}"
        if any((arrays[f"adam_v{i}"] < 0).any() for i in range(4)):
            return "Adam's second moments must not be negative"
        return None

    def _restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self._pending_arrays = arrays  # applied with the model in _restore_files

    def _state_files(self) -> dict[str, bytes]:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / MODEL_FILE
            self._state.model.save(path)
            return {MODEL_FILE: path.read_bytes()}

    def _restore_files(self, files: dict[str, bytes]) -> None:
        from nchain_agents.errors import AgentFileError
        from nchain_agents.keras_archive import checked_model_bytes

        graph = _graph()
        if set(files) != {MODEL_FILE}:
            raise AgentFileError(f"expected exactly one file {MODEL_FILE!r}, got {sorted(files)}")
        # Checked (members, sizes, the network's config) before Keras sees a byte of it.
        clean = checked_model_bytes(
            files[MODEL_FILE], self.n_states, self.n_actions, self.hidden_units
        )
        _, keras = graph.import_tensorflow()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / MODEL_FILE
            path.write_bytes(clean)
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
        graph.check_model(model, self.n_states, self.n_actions, self.hidden_units)
        for weight in model.get_weights():
            if weight.dtype != np.float32 or not np.isfinite(weight).all():
                raise AgentFileError("the stored network's weights must be finite float32")
        arrays = self._pending_arrays
        del self._pending_arrays
        self._state = graph.DQNState(
            model,
            m=[arrays[f"adam_m{i}"].astype(np.float32) for i in range(4)],
            v=[arrays[f"adam_v{i}"].astype(np.float32) for i in range(4)],
            step=float(arrays["adam_step"][0]),
        )
        self._epsilon = float(arrays["epsilon"][0])
        self._q_cache = None
        self._compiled = {}


@hookimpl
def register_agents(register):
    register("keras-dqn", KerasDQNAgent)
