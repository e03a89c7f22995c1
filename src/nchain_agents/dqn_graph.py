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
from typing import Any

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
        want = [(n_states, hidden_units), (hidden_units,), (hidden_units, n_actions), (n_actions,)]
        if shapes != want:
            problems.append(f"weight shapes {shapes}, expected {want}")
        if hidden.activation.__name__ != "sigmoid" or out.activation.__name__ != "linear":
            problems.append("activations must be sigmoid then linear")
    if problems:
        raise AgentFileError("stored model is not the keras-dqn network: " + "; ".join(problems))


# -- the math -------------------------------------------------------------------------


def forward(params, s):
    """Q-values for state index ``s``: the one-hot input selects a row of W1."""
    import tensorflow as tf

    w1, b1, w2, b2 = params
    hidden = tf.sigmoid(tf.gather(w1, s) + b1)
    return tf.linalg.matvec(w2, hidden, transpose_a=True) + b2


def q_table(params):
    """Q for every state: the network applied to the identity matrix."""
    import tensorflow as tf

    w1, b1, w2, b2 = params
    return tf.sigmoid(w1 + b1) @ w2 + b2


def train_step(state: DQNState, s, a, r, s2, terminated, gamma):
    """One online DQN update, as the tutorial's ``model.fit`` does it; returns ``Q(s')``.

    The target vector is the network's own ``Q(s)`` with entry ``a`` replaced by
    ``r + gamma * max_a' Q(s', a')`` (just ``r`` if ``s'`` is terminal); the loss is the
    mean squared error between the two; its gradient (``tf.GradientTape``) is applied by
    Keras's ``Adam``. Only the taken action's output gets a gradient.
    """
    import tensorflow as tf

    params = state.params
    q_next = forward(params, s2)
    future = tf.where(terminated, tf.zeros_like(r), gamma * tf.reduce_max(q_next))
    with tf.GradientTape() as tape:
        q = forward(params, s)
        target = tf.tensor_scatter_nd_update(tf.stop_gradient(q), [[a]], [r + future])
        loss = tf.reduce_mean(tf.square(q - target))
    gradients = tape.gradient(loss, params)
    state.optimizer.apply_gradients(zip(gradients, state.model.trainable_weights, strict=True))
    return forward(params, s2)


def choose(q, u_explore, u_action, eps):
    """Epsilon-greedy from two uniforms (no zero-row rule): random if ``u_explore < eps``."""
    import tensorflow as tf

    n_actions = tf.shape(q, out_type=tf.int32)[0]
    greedy = tf.argmax(q, output_type=tf.int32)
    random_action = tf.cast(u_action * tf.cast(n_actions, u_action.dtype), tf.int32)
    return tf.where(u_explore < eps, random_action, greedy)


# -- the two compiled paths -------------------------------------------------------------


class DQNState:
    """The network and its optimizer: the model's weights and a Keras ``Adam``.

    Adam's moments and step count are read and restored through the optimizer's public
    ``variables`` (``iteration``, ``learning_rate``, then a momentum and a velocity per
    trainable weight, in the weights' order).
    """

    def __init__(self, model: Any, learning_rate: float, m=None, v=None, step: int = 0) -> None:
        _, keras = import_tensorflow()
        self.model = model
        self.params = tuple(w.value for w in model.trainable_weights)  # tf.Variables
        self.optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        self.optimizer.build(model.trainable_weights)
        if m is not None and v is not None:
            for variable, value in zip(self.momentums + self.velocities, [*m, *v], strict=True):
                variable.assign(value)
            self.optimizer.iterations.assign(int(step))

    @property
    def momentums(self) -> list[Any]:
        found = [v for v in self.optimizer.variables if v.path.endswith("_momentum")]
        assert len(found) == len(self.params)
        return found

    @property
    def velocities(self) -> list[Any]:
        found = [v for v in self.optimizer.variables if v.path.endswith("_velocity")]
        assert len(found) == len(self.params)
        return found

    @property
    def step(self) -> int:
        return int(self.optimizer.iterations.numpy())


def make_env_step(state: DQNState, gamma: float):
    """The env loop's two compiled functions, one call per env step.

    - ``q_of(state)``: the network's Q-values for a state (an episode's first action);
    - ``train(state, action, reward, next_state, terminated)``: one update on the
      transition, returning ``Q(next_state)`` under the updated weights, which is what
      the next action needs.

    ``train`` hands the compiled function one float64 vector: one tensor conversion per
    call instead of five (a third of the env loop's time per step on a CPU).
    """
    import numpy as np

    tf, _ = import_tensorflow()

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
    def q_of(state_index):
        return forward(state.params, state_index)

    @tf.function(input_signature=[tf.TensorSpec([5], tf.float64)])
    def train_packed(x):
        s, a, s2 = (tf.cast(x[i], tf.int32) for i in (0, 1, 3))
        return train_step(state, s, a, tf.cast(x[2], tf.float32), s2, x[4] > 0.5, gamma)

    def train(state_index: int, action: int, reward: float, next_state: int, terminated: bool):
        return train_packed(np.array([state_index, action, reward, next_state, float(terminated)]))

    return q_of, train


def make_fused_episode(state: DQNState, next_state, rewards, slip: float, gamma: float):
    """``episode(uniforms[T, 2], slips[T], eps) -> total reward``: one XLA-compiled loop.

    Every lookup by a runtime index goes through ``tf.gather``: XLA on the CPU runs
    ``tensor[i]`` with a data-dependent ``i`` dozens of times slower.
    """
    tf, _ = import_tensorflow()
    n_actions = next_state.shape[1]
    next_flat = tf.constant(next_state.reshape(-1), tf.int32)  # index: s * n_actions + taken
    reward_flat = tf.constant(rewards.reshape(-1), tf.float32)

    @tf.function(jit_compile=True, reduce_retracing=True)
    def episode(uniforms, slips, eps):
        steps = tf.shape(slips)[0]

        def body(t, s, total):
            draws = tf.gather(uniforms, t)
            a = choose(forward(state.params, s), draws[0], draws[1], eps)
            taken = tf.bitwise.bitwise_xor(a, tf.cast(tf.gather(slips, t) < slip, tf.int32))
            index = s * n_actions + taken
            s2 = tf.gather(next_flat, index)
            r = tf.gather(reward_flat, index)
            train_step(state, s, a, r, s2, tf.constant(False), gamma)
            return t + 1, s2, total + r

        start = (tf.constant(0), tf.constant(0), tf.constant(0.0))
        _, _, total = tf.while_loop(lambda t, *_: t < steps, body, start, parallel_iterations=1)
        return total

    return episode
