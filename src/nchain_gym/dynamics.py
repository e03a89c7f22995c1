"""NChain's dynamics, once: constants, outcomes, the transition table, the slip stream.

Everything that runs NChain — :class:`nchain_gym.NChainEnv`, the vector env, the
solver, and the compiled training loops of ``nchain_agents`` — is built from
:func:`outcome` and, for randomness, follows the contract below.

The random-stream contract
--------------------------
A fast path may run NChain itself (instead of calling ``env.step``) only if it draws
exactly the slips the env would draw, so that the same seed gives the same episode:

1. ``env.reset(seed=s)`` seeds ``env.np_random`` as Gymnasium does, which for an
   integer ``s`` is ``numpy.random.default_rng(s)`` (a PCG64 ``Generator``); a reset
   without a seed keeps the generator and the unused part of the stream.
2. Slips come from a :class:`SlipStream` over that generator: uniforms are drawn
   ``SLIP_BLOCK`` at a time (``rng.random(SLIP_BLOCK)``) and used from the *end* of each
   block; every ``step`` uses exactly one, whatever the action, and slips when it is
   ``< slip``.
3. The action carried out is ``action ^ slipped``; its effect is :func:`outcome`.

So a compiled loop that builds ``default_rng(s)``, refills a buffer of ``SLIP_BLOCK``
uniforms with ``rng.random`` and reads it backwards reproduces ``reset(seed=s)`` and
the ``step`` calls that follow, bit for bit. Whether a given env may be replaced by such
a loop is decided by :meth:`NChainParams.from_env`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ACTION_NAMES",
    "BACKWARD",
    "FORWARD",
    "SLIP_BLOCK",
    "NChainParams",
    "SlipStream",
    "TransitionTable",
    "check_action",
    "is_whole_number",
    "outcome",
    "outcome_table",
    "transition_table",
    "validate_params",
]

FORWARD = 0
"""Move one step along the chain (or stay at the end and collect ``large``)."""
BACKWARD = 1
"""Go back to state 0 and collect ``small``."""

ACTION_NAMES = ("FORWARD", "BACKWARD")

#: ``P[s][a]`` in Gymnasium toy_text's format: ``[(prob, next_state, reward, terminated), ...]``.
TransitionTable = dict[int, dict[int, list[tuple[float, int, float, bool]]]]

SLIP_BLOCK = 1024
"""Slip uniforms are drawn from ``np_random`` in blocks of this size (one Generator
call per block instead of one per step) and used from the end of each block."""


def is_whole_number(value: Any, low: int) -> bool:
    """True for an ``int`` or NumPy integer (not a ``bool``) that is at least ``low``."""
    return bool(
        isinstance(value, (int, np.integer))
        and not isinstance(value, (bool, np.bool_))
        and value >= low
    )


def validate_params(
    n: int, slip: float, small: float, large: float
) -> tuple[int, float, float, float]:
    """Check NChain parameters and return them normalised to ``(int, float, float, float)``.

    Raises:
        ValueError: naming the bad value and what is allowed.
    """
    if not is_whole_number(n, 2):
        raise ValueError(f"n must be an integer >= 2 (the chain length), got {_short(n)}")
    slip_f = _real(slip)
    if slip_f is None or not 0.0 <= slip_f <= 1.0:  # also rejects NaN
        raise ValueError(f"slip must be a probability in [0, 1], got {_short(slip)}")
    rewards = []
    for name, value in (("small", small), ("large", large)):
        value_f = _real(value)
        if value_f is None or not math.isfinite(value_f):
            raise ValueError(f"{name} must be a finite number, got {_short(value)}")
        rewards.append(value_f)
    return int(n), slip_f, rewards[0], rewards[1]


def _real(value: Any) -> float | None:
    """``value`` as a float if it is a real number (not a bool, not text), else ``None``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int too large to print
        text = f"<{type(value).__name__} too large to print>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def outcome(state: int, taken: int, n: int, small: float, large: float) -> tuple[int, float]:
    """The deterministic effect of the action actually taken (after any slip).

    This is the one definition of NChain's dynamics: the transition table, the
    single and the vector environment, and every compiled kernel are built from it.

    Returns:
        ``(next_state, reward)``.
    """
    if taken == BACKWARD:
        return 0, small
    if state < n - 1:
        return state + 1, 0.0
    return state, large


def outcome_table(n: int, small: float, large: float) -> tuple[np.ndarray, np.ndarray]:
    """``(next_state[s, taken], reward[s, taken])`` arrays of shape ``(n, 2)``."""
    next_state = np.empty((n, 2), dtype=np.int64)
    reward = np.empty((n, 2), dtype=np.float64)
    for s in range(n):
        for taken in (FORWARD, BACKWARD):
            next_state[s, taken], reward[s, taken] = outcome(s, taken, n, small, large)
    return next_state, reward


def transition_table(
    n: int = 5, slip: float = 0.2, small: float = 2, large: float = 10
) -> TransitionTable:
    """Build ``P[s][a]`` for the given parameters (zero-probability outcomes omitted)."""
    n, slip, small, large = validate_params(n, slip, small, large)
    table: TransitionTable = {}
    for s in range(n):
        table[s] = {}
        for a in (FORWARD, BACKWARD):
            rows = []
            for taken, prob in ((a, 1.0 - slip), (1 - a, slip)):
                if prob > 0.0:
                    s2, r = outcome(s, taken, n, small, large)
                    rows.append((prob, s2, r, False))
            table[s][a] = rows
    return table


class SlipStream:
    """The env's slip uniforms: drawn from a Generator in blocks, each used from its end.

    ``NChainEnv`` takes its slips from here; compiled training paths that run NChain
    themselves take theirs from the same kind of stream (or replay its scheme), so
    that the same seed gives the same slips.
    """

    __slots__ = ("_buffer", "rng")

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._buffer: list[float] = []

    def next(self) -> float:
        """The next uniform on [0, 1)."""
        buffer = self._buffer
        if not buffer:
            buffer.extend(self.rng.random(SLIP_BLOCK).tolist())
        return buffer.pop()

    def take(self, count: int) -> np.ndarray:
        """The next ``count`` uniforms, as ``count`` calls of :meth:`next` would give them.

        What is left in the current block comes first; the rest is drawn as whole blocks
        in one call (the Generator gives the same numbers either way), and the unused
        part of the last block stays buffered for the next call.
        """
        out = np.empty(count)
        buffer = self._buffer
        k = min(len(buffer), count)
        if k:
            out[:k] = buffer[: -k - 1 : -1]  # from the end, as next() pops
            del buffer[-k:]
        rest = count - k
        if rest:
            blocks = self.rng.random((-(-rest // SLIP_BLOCK), SLIP_BLOCK))
            out[k:] = blocks[:, ::-1].ravel()[:rest]
            used_of_last = rest - (len(blocks) - 1) * SLIP_BLOCK
            buffer.extend(blocks[-1, : SLIP_BLOCK - used_of_last].tolist())
        return out


def check_action(action: Any) -> int:
    """Return ``action`` as 0 or 1, or raise a ``ValueError`` naming it.

    An action is an integer: a Python ``int``, a NumPy integer or a 0-d integer array.
    ``True``, ``0.0`` and ``"0"`` are refused, as the env's integer parameters refuse them.
    """
    if isinstance(action, np.ndarray) and action.shape == () and action.dtype.kind in "iu":
        action = action.item()
    if (
        isinstance(action, (int, np.integer))
        and not isinstance(action, (bool, np.bool_))
        and action in (FORWARD, BACKWARD)
    ):
        return int(action)
    raise ValueError(f"action must be 0 (FORWARD) or 1 (BACKWARD), got {_short(action)}")


@dataclass(frozen=True)
class NChainParams:
    """One NChain setting: what a compiled loop needs to run the env itself.

    Attributes:
        n, slip, small, large: the env's parameters (validated, normalised).
        horizon: steps per episode (the ``TimeLimit``; NChain never terminates).
    """

    n: int = 5
    slip: float = 0.2
    small: float = 2.0
    large: float = 10.0
    horizon: int = 1000

    def __post_init__(self) -> None:
        n, slip, small, large = validate_params(self.n, self.slip, self.small, self.large)
        if not is_whole_number(self.horizon, 1):
            raise ValueError(f"horizon must be an integer >= 1, got {_short(self.horizon)}")
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "slip", slip)
        object.__setattr__(self, "small", small)
        object.__setattr__(self, "large", large)
        object.__setattr__(self, "horizon", int(self.horizon))

    def outcome_table(self) -> tuple[np.ndarray, np.ndarray]:
        """``(next_state[s, taken], reward[s, taken])``, shape ``(n, 2)``."""
        return outcome_table(self.n, self.small, self.large)

    @classmethod
    def from_env(cls, env: Any) -> NChainParams | None:
        """The setting of ``env`` if a compiled loop may stand in for it, else ``None``.

        That is the case only for the registered NChain (``gym.make("NChain-v0", ...)``)
        with nothing but the wrappers ``gym.make`` adds (``TimeLimit``,
        ``OrderEnforcing``, ``PassiveEnvChecker``, exactly one ``TimeLimit``): any other
        wrapper (a user's reward shaping, say) must see every ``step``.
        """
        import sys

        from gymnasium import Wrapper
        from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit

        env_module = sys.modules.get("nchain_gym.env")  # not imported: no NChainEnv exists
        if env_module is None:
            return None
        limits = 0
        layer = env
        while isinstance(layer, Wrapper):
            if type(layer) not in (TimeLimit, OrderEnforcing, PassiveEnvChecker):
                return None
            limits += type(layer) is TimeLimit
            layer = layer.env
        spec = getattr(env, "spec", None)
        if (
            type(layer) is not env_module.NChainEnv
            or limits != 1
            or spec is None
            or spec.entry_point != "nchain_gym.env:NChainEnv"
            or not isinstance(spec.max_episode_steps, int)
        ):
            return None
        return cls(layer.n, layer.slip, layer.small, layer.large, spec.max_episode_steps)
