"""TensorFlow side of ``keras-dqn``: the network, its one update rule, and two compiled loops.

Imported only when a keras-dqn agent trains, loads or predicts. The update is
written once (:func:`train_step`): a gradient step of Keras's Adam (default
settings) on the MSE between the network's output and the tutorial's target
vector, in which only the taken action's entry is ``r + gamma * max Q(s')`` and
the others are the network's own predictions. Both training paths call it:

- :func:`make_env_step`: one ``tf.function`` call per env step (train on the last
  transition, then return the greedy action for the new state);
- :func:`make_fused_episode`: a whole NChain episode in one XLA-compiled loop, with
  NChain's transition table inside the graph.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from nchain_agents.errors import AgentFileError, KerasBackendError, MissingExtraError

QUIET_ENV_VAR = "NCHAIN_TF_LOGS"


_IMPORT_LOCK = threading.Lock()
_MODULES: tuple[Any, Any] | None = None
KERAS_EXTRA_HINT = 'keras-dqn needs TensorFlow and Keras: pip install "nchain-rl[keras]"'


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C++ start-up chatter (CUDA probing, oneDNN notes) on file descriptor 2.

    What was written is replayed if the block raises, so real errors still show.
    Redirecting fd 2 is process-wide: callers hold ``_IMPORT_LOCK``, so two threads
    never interleave their save/restore pairs, and ``finally`` always puts the
    original descriptor back.
    """
    if os.environ.get(QUIET_ENV_VAR):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            except BaseException:
                os.dup2(saved, 2)
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace"))
                raise
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _check_backend_variable() -> None:
    wanted = os.environ.get("KERAS_BACKEND")
    if wanted is not None and wanted != "tensorflow":
        raise KerasBackendError(
            f"keras-dqn needs Keras on the TensorFlow backend, but KERAS_BACKEND={wanted!r}; "
            "unset it or set KERAS_BACKEND=tensorflow"
        )


def import_tensorflow() -> tuple[Any, Any]:
    """Import TensorFlow and Keras once per process, quietly; check Keras runs on TensorFlow.

    Thread-safe: the first caller imports while holding a lock, the others wait for
    it (importing TensorFlow from two threads at once can deadlock or leave half-made
    modules). Call it from the main thread before starting workers to pay the cost
    up front (:meth:`KerasDQNAgent.prepare` does).

    Returns:
        ``(tf, keras)``.

    Raises:
        MissingExtraError: TensorFlow or Keras is not installed (names the extra).
        KerasBackendError: Keras is set to another backend.
    """
    global _MODULES
    if _MODULES is not None:
        return _MODULES
    with _IMPORT_LOCK:
        if _MODULES is not None:
            return _MODULES
        _check_backend_variable()
        try:
            if "tensorflow" not in sys.modules:
                os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
                with _quiet_stderr():
                    import tensorflow as tf

                    tf.config.list_physical_devices()  # device probing happens here, quietly
                    tf.constant(0.0) + 1.0
            import keras
            import tensorflow as tf
        except ImportError as exc:
            raise MissingExtraError(f"{KERAS_EXTRA_HINT} ({exc})") from None
        if keras.backend.backend() != "tensorflow":
            raise KerasBackendError(
                f"keras-dqn needs Keras on the TensorFlow backend, but Keras runs on "
                f"{keras.backend.backend()!r} (see KERAS_BACKEND or ~/.keras/keras.json)"
            )
        _MODULES = (tf, keras)
    return _MODULES


def shapes_of(n_states: int, n_actions: int, hidden_units: int) -> list[tuple[int, ...]]:
    """The shapes of one network's weights: W1, b1, W2, b2."""
    return [(n_states, hidden_units), (hidden_units,), (hidden_units, n_actions), (n_actions,)]


def build_model(n_states: int, n_actions: int, hidden_units: int, seed: int) -> Any:
    """One-hot state -> Dense(hidden, sigmoid) -> Dense(n_actions, linear), as the tutorial."""
    _, keras = import_tensorflow()
    init = keras.initializers.GlorotUniform
    return keras.Sequential(
        [
            keras.Input((n_states,)),
            keras.layers.Dense(hidden_units, activation="sigmoid", kernel_initializer=init(seed)),
            keras.layers.Dense(n_actions, activation="linear", kernel_initializer=init(seed + 1)),
        ],
        name="nchain_dqn",
    )


def initial_weights(n_states: int, n_actions: int, hidden_units: int, seed: int) -> list[Any]:
    """The weights :func:`build_model` starts from (same initializers, same seeds), as
    NumPy arrays, without building a model: a batch of hundreds of fresh agents needs
    only their numbers."""
    _, keras = import_tensorflow()
    init = keras.initializers.GlorotUniform
    kernels = [
        init(seed)((n_states, hidden_units), dtype="float32"),
        init(seed + 1)((hidden_units, n_actions), dtype="float32"),
    ]
    w1, w2 = (np.asarray(keras.ops.convert_to_numpy(k), dtype=np.float32) for k in kernels)
    return [w1, np.zeros(hidden_units, np.float32), w2, np.zeros(n_actions, np.float32)]


def check_model(model: Any, n_states: int, n_actions: int, hidden_units: int) -> None:
    """Raise ``ValueError`` unless ``model`` is the DQN network for these sizes."""
    _, keras = import_tensorflow()
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    problems = []
    if len(layers) != 2 or not all(isinstance(layer, keras.layers.Dense) for layer in layers):
        problems.append(f"expected two Dense layers, got {[type(x).__name__ for x in layers]}")
    else:
        hidden, out = layers
        shapes = [tuple(w.shape) for w in model.trainable_weights]
        want = shapes_of(n_states, n_actions, hidden_units)
        if shapes != want:
            problems.append(f"weight shapes {shapes}, expected {want}")
        if hidden.activation.__name__ != "sigmoid" or out.activation.__name__ != "linear":
            problems.append("activations must be sigmoid then linear")
    if problems:
        raise AgentFileError("stored model is not the keras-dqn network: " + "; ".join(problems))


# -- the math, for B networks at once -------------------------------------------------
#
# Every function works on a stack of B independent copies of the network: each weight
# has a leading model axis (W1 is (B, n_states, hidden), b1 (B, hidden), W2 (B, hidden,
# n_actions), b2 (B, n_actions)), and model b sits in state s[b]. One agent is a stack
# of one.


def forward(params, s):
    """Q-values ``(B, n_actions)`` of model b in state ``s[b]``.

    The tutorial's one-hot input times W1 is row ``s[b]`` of model b's W1, so the
    product is a ``tf.gather`` (measured 20-30 % faster per step than writing it as
    the product, in the fused loop on a CPU).
    """
    import tensorflow as tf

    w1, b1, w2, b2 = params
    hidden = tf.sigmoid(tf.gather(w1, s[:, None], batch_dims=1)[:, 0] + b1)
    return tf.reduce_sum(hidden[:, :, None] * w2, axis=1) + b2


def q_table(params):
    """Q for every state and model, ``(B, n_states, n_actions)``: the network on the identity."""
    import tensorflow as tf

    w1, b1, w2, b2 = params
    return tf.sigmoid(w1 + b1[:, None, :]) @ w2 + b2[:, None, :]


def train_step(state: DQNState, s, a, r, s2, terminated, gamma):
    """One online DQN update of every model, as the tutorial's ``model.fit`` does it.

    Model b's target vector is its own ``Q(s[b])`` with entry ``a[b]`` replaced by
    ``r[b] + gamma * max_a' Q(s2[b], a')`` (just ``r[b]`` if terminal); its loss is the
    mean squared error between the two. The loss of the stack is the sum over models,
    so each model's gradient (``tf.GradientTape``) is its own, and Keras's ``Adam``
    works element by element: B independent optimizers. Only the taken action's output
    gets a gradient.
    """
    import tensorflow as tf

    q_next = forward(state.params, s2)
    future = tf.where(terminated, tf.zeros_like(r), gamma * tf.reduce_max(q_next, axis=1))
    with tf.GradientTape() as tape:
        q = forward(state.params, s)
        taken = tf.one_hot(a, tf.shape(q)[1], on_value=True, off_value=False)
        target = tf.where(taken, (r + future)[:, None], tf.stop_gradient(q))
        loss = tf.reduce_sum(tf.reduce_mean(tf.square(q - target), axis=1))
    gradient = tape.gradient(loss, state.variable.value)
    state.optimizer.apply_gradients([(gradient, state.variable)])


def choose(q, u_explore, u_action, eps):
    """Epsilon-greedy from two uniforms per model (no zero-row rule): random if ``u_explore < eps``."""
    import tensorflow as tf

    n_actions = tf.shape(q, out_type=tf.int32)[1]
    greedy = tf.argmax(q, axis=1, output_type=tf.int32)
    random_action = tf.cast(u_action * tf.cast(n_actions, u_action.dtype), tf.int32)
    return tf.where(u_explore < eps, random_action, greedy)


# -- the state and the two compiled paths ---------------------------------------------


def _split_columns(flat, shapes, reshape):
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(reshape(flat[:, start : start + size], (-1, *shape)))
        start += size
    return out


@dataclass
class Networks:
    """B networks and their Adam moments as NumPy arrays, at rest between trainings.

    Each row of ``flat`` is one network's weights (W1, b1, W2, b2, flattened, in that
    order); ``m`` and ``v`` are Adam's moments in the same layout; ``step`` is Adam's
    step count, shared by the stack.
    """

    shapes: list[tuple[int, ...]]
    flat: np.ndarray
    m: np.ndarray
    v: np.ndarray
    step: int

    @classmethod
    def fresh(cls, weights: list[np.ndarray]) -> Networks:
        """One network from its four weight arrays, before any training."""
        zeros = [np.zeros_like(w) for w in weights]
        return cls.of_one(weights, zeros, zeros, 0)

    @classmethod
    def of_one(
        cls, weights: list[np.ndarray], m: list[np.ndarray], v: list[np.ndarray], step: int
    ) -> Networks:
        """One network with its Adam state, from per-weight arrays (as files hold them)."""

        def pack(arrays: list[np.ndarray]) -> np.ndarray:
            return np.concatenate([np.asarray(x, np.float32).ravel() for x in arrays])[None]

        return cls([tuple(w.shape) for w in weights], pack(weights), pack(m), pack(v), int(step))

    @classmethod
    def stack(cls, parts: list[Networks]) -> Networks:
        """The networks of ``parts``, in order (same shapes and step)."""
        steps = {part.step for part in parts}
        if len(steps) != 1:
            raise ValueError(f"cannot stack networks at different Adam steps {sorted(steps)}")
        return cls(
            parts[0].shapes,
            np.concatenate([part.flat for part in parts]),
            np.concatenate([part.m for part in parts]),
            np.concatenate([part.v for part in parts]),
            steps.pop(),
        )

    def row(self, i: int) -> Networks:
        """Network ``i`` on its own."""
        rows = slice(i, i + 1)
        return Networks(
            self.shapes, self.flat[rows].copy(), self.m[rows].copy(), self.v[rows].copy(), self.step
        )

    def unpacked(self, which: str = "flat") -> list[np.ndarray]:
        """``flat``, ``m`` or ``v`` as four arrays with the model axis (W1, b1, W2, b2)."""
        return _split_columns(getattr(self, which), self.shapes, np.reshape)


class DQNState:
    """B stacked networks being trained: one Keras variable holding every weight of every
    model (one row per model) and one Keras ``Adam`` (defaults, given learning rate) on it.

    ``params`` views the variable as the four weights with a leading model axis. Adam's
    moments and step count are read and restored through the optimizer's public
    ``variables`` (its momentum and velocity of the one variable, and ``iterations``).
    """

    def __init__(self, networks: Networks, learning_rate: float) -> None:
        _, keras = import_tensorflow()
        self.shapes = networks.shapes
        self.learning_rate = float(learning_rate)
        self.variable = keras.Variable(np.asarray(networks.flat, np.float32))
        self.optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        self.optimizer.build([self.variable])
        self._momentum().assign(np.asarray(networks.m, np.float32))
        self._velocity().assign(np.asarray(networks.v, np.float32))
        self.optimizer.iterations.assign(int(networks.step))

    @property
    def params(self):
        """W1, b1, W2, b2, each with the model axis first (views of the variable)."""
        import tensorflow as tf

        return tuple(_split_columns(self.variable.value, self.shapes, tf.reshape))

    @property
    def size(self) -> int:
        """B, the number of stacked models."""
        return int(self.variable.shape[0])

    def _momentum(self) -> Any:
        (found,) = [v for v in self.optimizer.variables if v.path.endswith("_momentum")]
        return found

    def _velocity(self) -> Any:
        (found,) = [v for v in self.optimizer.variables if v.path.endswith("_velocity")]
        return found

    def networks(self) -> Networks:
        """A NumPy snapshot of the weights and Adam's state."""
        return Networks(
            self.shapes,
            np.array(self.variable.numpy()),
            np.array(self._momentum().numpy()),
            np.array(self._velocity().numpy()),
            int(self.optimizer.iterations.numpy()),
        )


def make_env_step(state: DQNState, gamma: float):
    """The env loop's two compiled functions for a single network, one call per env step.

    - ``q_of(state)``: the network's Q-values for a state (an episode's first action);
    - ``train(state, action, reward, next_state, terminated)``: one update on the
      transition, returning ``Q(next_state)`` under the updated weights, which is what
      the next action needs.

    ``train`` hands the compiled function one float64 vector: one tensor conversion per
    call instead of five (a third of the env loop's time per step on a CPU).
    """
    tf, _ = import_tensorflow()

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
    def q_of(state_index):
        return forward(state.params, state_index[None])[0]

    @tf.function(input_signature=[tf.TensorSpec([5], tf.float64)])
    def train_packed(x):
        s, a, s2 = (tf.cast(x[i : i + 1], tf.int32) for i in (0, 1, 3))
        train_step(state, s, a, tf.cast(x[2:3], tf.float32), s2, x[4:5] > 0.5, gamma)
        return forward(state.params, s2)[0]

    def train(state_index: int, action: int, reward: float, next_state: int, terminated: bool):
        return train_packed(np.array([state_index, action, reward, next_state, float(terminated)]))

    return q_of, train


def make_fused_episode(state: DQNState, next_state, rewards, slip: float, gamma: float):
    """``episode(uniforms[T, B, 2], slips[T, B], eps[B]) -> totals[B]``: one XLA-compiled
    loop over T steps of NChain for all B models of ``state`` at once.

    Every lookup by a runtime index goes through ``tf.gather``: XLA on the CPU runs
    ``tensor[i]`` with a data-dependent ``i`` dozens of times slower.
    """
    tf, _ = import_tensorflow()
    n_actions = next_state.shape[1]
    next_flat = tf.constant(next_state.reshape(-1), tf.int32)  # index: s * n_actions + taken
    reward_flat = tf.constant(rewards.reshape(-1), tf.float32)
    size = state.size

    @tf.function(jit_compile=True, reduce_retracing=True)
    def episode(uniforms, slips, eps):
        steps = tf.shape(slips)[0]

        def body(t, s, total):
            draws = tf.gather(uniforms, t)
            a = choose(forward(state.params, s), draws[:, 0], draws[:, 1], eps)
            slipped = tf.cast(tf.gather(slips, t) < slip, tf.int32)
            index = s * n_actions + tf.bitwise.bitwise_xor(a, slipped)
            s2 = tf.gather(next_flat, index)
            r = tf.gather(reward_flat, index)
            train_step(state, s, a, r, s2, tf.zeros([size], tf.bool), gamma)
            return t + 1, s2, total + r

        start = (tf.constant(0), tf.zeros([size], tf.int32), tf.zeros([size], tf.float32))
        _, _, total = tf.while_loop(lambda t, *_: t < steps, body, start, parallel_iterations=1)
        return total

    return episode
