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

Both work on a stack of B networks (one agent is a stack of one), with the model axis
last; :class:`Networks` holds stacks at rest as NumPy rows, in the files' layout.
"""

from __future__ import annotations

import contextlib
import math
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
# Every function works on a stack of B independent copies of the network with the
# model axis last: W1 is (n_states, hidden, B), b1 (hidden, B), W2 (hidden, n_actions,
# B), b2 (n_actions, B), and model b sits in state s[b]. One agent is a stack of one.
# With the model axis last, every step of the math is a vector operation across the B
# models, which XLA's CPU code runs in SIMD lanes (measured: the fused loop runs about
# twice as fast per agent-step as with the model axis first).


def _layers(params, first):
    """The network from its first layer's product ``first`` (x times W1, shape
    ``(..., hidden, B)``) on: sigmoid hidden units, then the linear output layer."""
    import tensorflow as tf

    _, b1, w2, b2 = params
    hidden = tf.sigmoid(first + b1)
    return tf.reduce_sum(hidden[..., :, None, :] * w2, axis=-3) + b2


def forward(params, s):
    """Q-values ``(n_actions, B)`` of model b in state ``s[b]``: the tutorial's one-hot
    input times W1 (a sum of one row and zeros, so exactly that row), then the layers."""
    import tensorflow as tf

    w1 = params[0]
    one_hot = tf.one_hot(s, tf.shape(w1)[0], axis=0, dtype=w1.dtype)
    return _layers(params, tf.reduce_sum(one_hot[:, None, :] * w1, axis=0))


def q_table(params):
    """Q for every state and model, ``(n_states, n_actions, B)``: the network on each
    one-hot input, whose first product is that state's row of W1."""
    return _layers(params, params[0])


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
    future = tf.where(terminated, tf.zeros_like(r), gamma * tf.reduce_max(q_next, axis=0))
    with tf.GradientTape() as tape:
        q = forward(state.params, s)
        taken = tf.one_hot(a, tf.shape(q)[0], on_value=True, off_value=False, axis=0)
        target = tf.where(taken, (r + future)[None, :], tf.stop_gradient(q))
        loss = tf.reduce_sum(tf.reduce_mean(tf.square(q - target), axis=0))
    gradients = tape.gradient(loss, [variable.value for variable in state.variables])
    state.optimizer.apply_gradients(zip(gradients, state.variables, strict=True))


def explored_actions(draws: np.ndarray, epsilon: Any, n_actions: int) -> np.ndarray:
    """Epsilon-greedy's random part (no zero-row rule), from two uniforms per step
    (``draws[..., 0]`` and ``draws[..., 1]``): the action ``int(u1 * n_actions)`` where
    ``u0 < epsilon``, and -1 where the agent acts greedily. Both loops use it."""
    explore = draws[..., 0] < epsilon
    return np.where(explore, (draws[..., 1] * n_actions).astype(np.int32), np.int32(-1))


def step_codes(draws: np.ndarray, slipped: np.ndarray, epsilon: Any, n_actions: int) -> np.ndarray:
    """What the fused loop reads at each step, one int32 per step and agent:
    ``2 * choice + slipped``, where ``choice`` is the explored action, or ``n_actions``
    for "greedy" (known only inside the loop). Everything about a step that does not
    depend on the network is settled here, in NumPy, before the episode runs."""
    forced = explored_actions(draws, epsilon, n_actions)
    choice = np.where(forced >= 0, forced, np.int32(n_actions))
    return (2 * choice + slipped).astype(np.int32)


# -- the state and the two compiled paths ---------------------------------------------


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

        def one(arrays: list[np.ndarray]) -> list[np.ndarray]:
            return [np.asarray(x)[..., None] for x in arrays]  # a model axis of length 1

        return cls.from_model_last(one(weights), one(m), one(v), step)

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
        flat = getattr(self, which)
        ends = np.cumsum([math.prod(shape) for shape in self.shapes])
        columns = np.split(flat, ends[:-1], axis=1)
        return [c.reshape(-1, *shape) for c, shape in zip(columns, self.shapes, strict=True)]

    def model_last(self, which: str = "flat") -> list[np.ndarray]:
        """:meth:`unpacked`, with the model axis moved last (the graph's layout)."""
        return [np.ascontiguousarray(np.moveaxis(x, 0, -1)) for x in self.unpacked(which)]

    @classmethod
    def from_model_last(
        cls, weights: list[np.ndarray], m: list[np.ndarray], v: list[np.ndarray], step: int
    ) -> Networks:
        """The inverse of :meth:`model_last`: per-weight arrays with the model axis last."""

        def pack(arrays: list[np.ndarray]) -> np.ndarray:
            rows = [np.moveaxis(np.asarray(x, np.float32), -1, 0) for x in arrays]
            return np.concatenate([x.reshape(len(x), -1) for x in rows], axis=1)

        shapes = [tuple(w.shape[:-1]) for w in weights]
        return cls(shapes, pack(weights), pack(m), pack(v), int(step))


_NAMES = ("w1", "b1", "w2", "b2")


class DQNState:
    """B stacked networks being trained: four Keras variables (W1, b1, W2, b2, each with
    the model axis last) and one Keras ``Adam`` (defaults, given learning rate) on them.

    Adam's moments and step count are read and restored through the optimizer's public
    ``variables`` (the momentum and velocity of each weight, and ``iterations``).
    """

    def __init__(self, networks: Networks, learning_rate: float) -> None:
        _, keras = import_tensorflow()
        weights = zip(_NAMES, networks.model_last(), strict=True)
        self.variables = [keras.Variable(w, name=name) for name, w in weights]
        self.optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        self.optimizer.build(self.variables)
        moments = zip(_NAMES, networks.model_last("m"), networks.model_last("v"), strict=True)
        for name, m, v in moments:
            self._slot(name, "momentum").assign(m)
            self._slot(name, "velocity").assign(v)
        self.optimizer.iterations.assign(int(networks.step))

    @property
    def params(self):
        """W1, b1, W2, b2, each with the model axis last."""
        return tuple(variable.value for variable in self.variables)

    @property
    def size(self) -> int:
        """B, the number of stacked models."""
        return int(self.variables[0].shape[-1])

    def _slot(self, name: str, kind: str) -> Any:
        (found,) = [v for v in self.optimizer.variables if v.path.endswith(f"{name}_{kind}")]
        return found

    def networks(self) -> Networks:
        """A NumPy snapshot of the weights and Adam's state."""
        return Networks.from_model_last(
            [variable.numpy() for variable in self.variables],
            [self._slot(name, "momentum").numpy() for name in _NAMES],
            [self._slot(name, "velocity").numpy() for name in _NAMES],
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
        return forward(state.params, state_index[None])[:, 0]

    @tf.function(input_signature=[tf.TensorSpec([5], tf.float64)])
    def train_packed(x):
        s, a, s2 = (tf.cast(x[i : i + 1], tf.int32) for i in (0, 1, 3))
        train_step(state, s, a, tf.cast(x[2:3], tf.float32), s2, x[4:5] > 0.5, gamma)
        return forward(state.params, s2)[:, 0]

    def train(state_index: int, action: int, reward: float, next_state: int, terminated: bool):
        return train_packed(np.array([state_index, action, reward, next_state, float(terminated)]))

    return q_of, train


def make_fused_episode(state: DQNState, next_state, rewards, gamma: float):
    """``episode(codes[T, B]) -> totals[B]``: one XLA-compiled loop over T steps of
    NChain for all B models of ``state`` at once.

    ``codes`` are :func:`step_codes`: each step's explored action (or "greedy") and
    whether the action slips, settled before the episode from each agent's own draws.
    Inside the loop are only what depends on the networks: the greedy action, NChain's
    transition table, and the update. Every lookup by a runtime index goes through
    ``tf.gather``: XLA on the CPU runs ``tensor[i]`` with a data-dependent ``i`` dozens
    of times slower.
    """
    tf, _ = import_tensorflow()
    n_actions = next_state.shape[1]
    next_flat = tf.constant(next_state.reshape(-1), tf.int32)  # index: s * n_actions + taken
    reward_flat = tf.constant(rewards.reshape(-1), tf.float32)
    size = state.size

    @tf.function(jit_compile=True, reduce_retracing=True)
    def episode(codes):
        steps = tf.shape(codes)[0]

        def body(t, s, total):
            code = tf.gather(codes, t)
            choice, slipped = code // 2, code % 2
            greedy = tf.argmax(forward(state.params, s), axis=0, output_type=tf.int32)
            a = tf.where(choice < n_actions, choice, greedy)
            index = s * n_actions + tf.bitwise.bitwise_xor(a, slipped)
            s2 = tf.gather(next_flat, index)
            r = tf.gather(reward_flat, index)
            train_step(state, s, a, r, s2, tf.zeros([size], tf.bool), gamma)
            return t + 1, s2, total + r

        start = (tf.constant(0), tf.zeros([size], tf.int32), tf.zeros([size], tf.float32))
        _, _, total = tf.while_loop(lambda t, *_: t < steps, body, start, parallel_iterations=1)
        return total

    return episode
