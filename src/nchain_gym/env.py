"""The NChain-v0 environment, faithful to the original Gym ``NChainEnv``.

Its dynamics (constants, outcomes, the transition table and the slip stream) live in
:mod:`nchain_gym.dynamics`; this module is the Gymnasium env around them.
"""

from __future__ import annotations

from typing import Any, SupportsFloat, cast

from gymnasium import Env, spaces

from nchain_gym.dynamics import (
    ACTION_NAMES,
    BACKWARD,
    FORWARD,
    SlipStream,
    TransitionTable,
    check_action,
    outcome,
    transition_table,
    validate_params,
)

__all__ = ["BACKWARD", "FORWARD", "NChainEnv"]


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

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}  # noqa: RUF012

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
        # Discrete's type parameter is NumPy's int; observations here are plain ints.
        self.observation_space = cast(spaces.Space[int], spaces.Discrete(self.n))
        self.action_space = cast(spaces.Space[int], spaces.Discrete(2))
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
        state, slips = self.state, self._slips
        if state is None or slips is None:
            raise RuntimeError("NChainEnv.step() was called before reset(); call reset() first")
        # The common case (a plain int 0 or 1) without a function call.
        a = action if type(action) is int and (action == 0 or action == 1) else check_action(action)
        slipped = slips.next() < self.slip
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
