"""The NChain-v0 environment, faithful to the original Gym ``NChainEnv``."""

from __future__ import annotations

import math
from typing import Any, ClassVar, SupportsFloat

import numpy as np
from gymnasium import Env, spaces

FORWARD = 0
"""Move one step along the chain (or stay at the end and collect ``large``)."""
BACKWARD = 1
"""Go back to state 0 and collect ``small``."""

ACTION_NAMES = ("FORWARD", "BACKWARD")

#: ``P[s][a]`` in Gymnasium toy_text's format: ``[(prob, next_state, reward, terminated), ...]``.
TransitionTable = dict[int, dict[int, list[tuple[float, int, float, bool]]]]

ENV_DRAW_BLOCK = 1024
"""Slip uniforms are drawn from ``np_random`` in blocks of this size (one Generator
call per block instead of one per step) and used from the end of each block."""


def is_whole_number(value: Any, low: int) -> bool:
    """True for an ``int`` or NumPy integer (not a ``bool``) that is at least ``low``."""
    return (
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
            buffer.extend(self.rng.random(ENV_DRAW_BLOCK).tolist())
        return buffer.pop()

    def take(self, count: int) -> np.ndarray:
        """The next ``count`` uniforms, as ``count`` calls of :meth:`next` would give them."""
        return np.array([self.next() for _ in range(count)])


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


class NChainEnv(Env[int, int]):
    """A chain of ``n`` states where patience pays: walk to the end for a large reward.

    ## Description
    The agent stands on a chain of states ``0 … n-1`` and starts at 0. Moving
    FORWARD pays nothing until the last state, where staying FORWARD pays ``large``
    on every step. Going BACKWARD always pays ``small`` at once but returns the
    agent to state 0. Each step the action is flipped with probability ``slip``
    before it is carried out, so the agent sometimes slips back. The greedy
    ``small`` reward is the trap; the optimum walks forward.

    The environment first appeared in Strens (2000), "A Bayesian Framework for
    Reinforcement Learning", and was ``NChain-v0`` in OpenAI Gym until 0.21. This is
    that environment, with the same numbering and dynamics, for Gymnasium 1.x.

    ## Action Space
    ``Discrete(2)``:

    - 0: FORWARD
    - 1: BACKWARD

    ## Observation Space
    ``Discrete(n)``: the position on the chain, an ``int``.

    ## Starting State
    Always state 0.

    ## Rewards
    With ``taken`` the action after a possible slip:

    - BACKWARD from any state (0 too): ``small`` (default 2), next state 0;
    - FORWARD from a state ``s < n-1``: 0, next state ``s+1``;
    - FORWARD from ``n-1``: ``large`` (default 10), stays at ``n-1``.

    ## Episode End
    The episode never terminates. ``gym.make("NChain-v0")`` truncates after
    1000 steps (``max_episode_steps=1000``), as the original did.

    ## Information
    ``step`` returns ``info`` with ``"slipped"`` (bool: the action was flipped) and
    ``"taken_action"`` (the action actually carried out). ``reset`` returns ``{}``.

    ## Arguments
    ```python
    import gymnasium as gym
    env = gym.make("NChain-v0", n=5, slip=0.2, small=2, large=10, render_mode="ansi")
    ```

    - ``n``: number of states, at least 2. Default 5.
    - ``slip``: probability of the action being flipped, in [0, 1]. Default 0.2.
    - ``small``: reward for BACKWARD, finite. Default 2.
    - ``large``: reward for FORWARD in the last state, finite. Default 10.
    - ``render_mode``: ``None``, ``"ansi"`` (a one-line text picture of the chain) or
      ``"rgb_array"`` (an RGB ``uint8`` image: the chain, the agent on its state, and
      an arrow for the last action carried out, green as chosen or red if it slipped;
      for Stable-Baselines3's ``make_vec_env`` and Gymnasium's video recording).

    With the defaults and ``gamma=0.95`` the optimal policy is FORWARD everywhere,
    ``Q*(0) = [61.379, 60.578]``, and always-FORWARD earns 3663.7 in expectation
    over 1000 steps from state 0 (see :func:`nchain_gym.solve`).

    ## Version History
    - v0: Gym's ``NChain-v0`` (Gym ≤ 0.21), ported to the Gymnasium 1.x API.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        n: int = 5,
        slip: float = 0.2,
        small: float = 2,
        large: float = 10,
        render_mode: str | None = None,
    ) -> None:
        self.n, self.slip, self.small, self.large = validate_params(n, slip, small, large)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.observation_space = spaces.Discrete(self.n)
        self.action_space = spaces.Discrete(2)
        self._P: TransitionTable | None = None
        # _outcomes[s][taken] -> (next_state, reward): plain lists for fast indexing.
        self._outcomes = [
            [outcome(s, taken, self.n, self.small, self.large) for taken in (FORWARD, BACKWARD)]
            for s in range(self.n)
        ]
        self.state: int | None = None
        self.last_action: int | None = None
        self.last_slipped = False
        self._slips: SlipStream | None = None

    @property
    def P(self) -> TransitionTable:
        """``P[s][a] = [(prob, next_state, reward, terminated), ...]``, toy_text's format.

        Built on first use (a chain of a million states does not pay for it unless asked).
        """
        if self._P is None:
            self._P = transition_table(self.n, self.slip, self.small, self.large)
        return self._P

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None or self._slips is None or self._slips.rng is not self.np_random:
            self._slips = SlipStream(self.np_random)
        self.state = 0
        self.last_action = None
        self.last_slipped = False
        return 0, {}

    def step(self, action: int) -> tuple[int, SupportsFloat, bool, bool, dict[str, Any]]:
        state = self.state
        if state is None:
            raise RuntimeError("NChainEnv.step() was called before reset(); call reset() first")
        # The common case (a plain int 0 or 1) without a function call.
        a = action if type(action) is int and (action == 0 or action == 1) else check_action(action)
        slipped = self._slips.next() < self.slip
        taken = a ^ slipped
        self.state, reward = self._outcomes[state][taken]
        self.last_action = taken
        self.last_slipped = slipped
        return self.state, reward, False, False, {"slipped": slipped, "taken_action": taken}

    def render(self) -> Any:
        if self.render_mode is None:
            return None
        if self.render_mode == "rgb_array":
            from nchain_gym.rendering import draw_chain

            return draw_chain(self.n, self.state, self.last_action, self.last_slipped)
        cells = [f"[{s}]" if s == self.state else f" {s} " for s in range(self.n)]
        line = "-".join(cells)
        if self.last_action is not None:
            line += (
                f"  ({ACTION_NAMES[self.last_action]}{', slipped' if self.last_slipped else ''})"
            )
        return line + "\n"


def unmodified_nchain(env: Any) -> dict[str, Any] | None:
    """The parameters of ``env`` if it is the registered NChain with standard wrappers only.

    "Standard" means what ``gym.make`` adds: ``TimeLimit``, ``OrderEnforcing`` and
    ``PassiveEnvChecker``, with exactly one ``TimeLimit``. Compiled training paths use
    this to decide whether they may run NChain's dynamics themselves; any other
    wrapper (a user's reward shaping, say) sends them through ``env.step``.

    Returns:
        ``{"n", "slip", "small", "large", "max_episode_steps"}`` or ``None``.
    """
    from gymnasium import Wrapper
    from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit

    limits = 0
    layer = env
    while isinstance(layer, Wrapper):
        if type(layer) not in (TimeLimit, OrderEnforcing, PassiveEnvChecker):
            return None
        limits += type(layer) is TimeLimit
        layer = layer.env
    spec = getattr(env, "spec", None)
    if (
        type(layer) is not NChainEnv
        or limits != 1
        or spec is None
        or spec.entry_point != "nchain_gym.env:NChainEnv"
        or not isinstance(spec.max_episode_steps, int)
    ):
        return None
    return {
        "n": layer.n,
        "slip": layer.slip,
        "small": layer.small,
        "large": layer.large,
        "max_episode_steps": spec.max_episode_steps,
    }


def check_episodes_end(env: Any) -> None:
    """Raise if ``env`` is an NChainEnv without a TimeLimit: its episodes would never end."""
    from gymnasium import Wrapper
    from gymnasium.wrappers import TimeLimit

    layer = env
    while isinstance(layer, Wrapper):
        if isinstance(layer, TimeLimit):
            return
        layer = layer.env
    if isinstance(layer, NChainEnv):
        raise ValueError(
            "NChainEnv never ends an episode by itself: make it with "
            "gym.make('NChain-v0') (1000-step limit) or wrap it in gymnasium's TimeLimit"
        )
