"""Exact solutions of a finite MDP given as a toy_text transition table ``P[s][a]``.

The model is kept sparse: one entry per possible outcome (NChain has two per
state-action pair), so a value-iteration sweep costs O(outcomes), not O(states²), and
``--n 100000`` solves in seconds. NChain envs are read straight from their parameters,
without building the ``P`` dictionary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nchain_gym.dynamics import TransitionTable, outcome_table
from nchain_gym.env import NChainEnv

MAX_SWEEPS = 100_000


@dataclass(frozen=True)
class Solution:
    """The optimal action values of a discounted MDP.

    Attributes:
        q: ``Q*[s, a]``, shape ``(n_states, n_actions)``.
        v: ``V*[s] = max_a Q*[s, a]``.
        policy: greedy action per state (ties to the lowest action, like ``np.argmax``).
        gamma: the discount the values are for.
        iterations: value-iteration sweeps until convergence.
    """

    q: np.ndarray
    v: np.ndarray
    policy: np.ndarray
    gamma: float
    iterations: int


@dataclass(frozen=True)
class Model:
    """A finite MDP as sparse outcome lists: outcome ``k`` of pair ``pair[k] = s * A + a``
    leads to ``next_state[k]`` with probability ``prob[k]``; ``reward[s, a]`` is the
    expected reward of the pair."""

    n_states: int
    n_actions: int
    pair: np.ndarray
    next_state: np.ndarray
    prob: np.ndarray
    reward: np.ndarray

    def expected_next(self, v: np.ndarray) -> np.ndarray:
        """``E[v(s') | s, a]`` for every pair, shape ``(n_states, n_actions)``."""
        flat = np.bincount(
            self.pair,
            weights=self.prob * v[self.next_state],
            minlength=self.n_states * self.n_actions,
        )
        return flat.reshape(self.n_states, self.n_actions)


def model_arrays(P: TransitionTable) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``T[s, a, s']`` (probabilities) and ``R[s, a]`` (expected reward) from ``P``.

    For small models and tests; the solver itself uses the sparse :class:`Model`.
    """
    model = _model_from_table(P)
    T = np.zeros((model.n_states, model.n_actions, model.n_states))
    np.add.at(T.reshape(-1, model.n_states), (model.pair, model.next_state), model.prob)
    return T, model.reward.copy()


def _model_from_table(P: TransitionTable) -> Model:
    n_states = len(P)
    n_actions = len(P[0])
    pair, next_state, prob = [], [], []
    reward = np.zeros((n_states, n_actions))
    for s, row in P.items():
        for a, outcomes in row.items():
            for p, s2, r, terminated in outcomes:
                if terminated:
                    raise ValueError("the solver handles continuing MDPs only (no terminal states)")
                pair.append(s * n_actions + a)
                next_state.append(s2)
                prob.append(p)
                reward[s, a] += p * r
    return Model(
        n_states,
        n_actions,
        np.asarray(pair, dtype=np.int64),
        np.asarray(next_state, dtype=np.int64),
        np.asarray(prob, dtype=np.float64),
        reward,
    )


def _model_from_nchain(env: NChainEnv) -> Model:
    """NChain's model from its parameters: per pair, the chosen action w.p. 1 - slip and
    the flipped one w.p. slip (zero-probability outcomes dropped, as in ``env.P``)."""
    n = env.n
    next_table, reward_table = outcome_table(n, env.small, env.large)
    states = np.arange(n)
    parts = []
    for a in (0, 1):
        for taken, p in ((a, 1.0 - env.slip), (1 - a, env.slip)):
            if p > 0.0:
                parts.append((states * 2 + a, next_table[:, taken], np.full(n, p)))
    pair, next_state, prob = (np.concatenate(x) for x in zip(*parts, strict=True))
    # R[s, a] = (1 - slip) r(s, a) + slip r(s, 1 - a)
    reward = (1.0 - env.slip) * reward_table + env.slip * reward_table[:, ::-1]
    return Model(n, 2, pair, next_state, prob, reward)


def model_of(model: Any = None) -> Model:
    """The sparse model of a transition table, an env with one, or (``None``) NChain-v0."""
    if model is None:
        return _model_from_nchain(NChainEnv())
    if isinstance(model, Model):
        return model
    if isinstance(model, dict):
        return _model_from_table(model)
    unwrapped = getattr(model, "unwrapped", model)
    if isinstance(unwrapped, NChainEnv):
        return _model_from_nchain(unwrapped)
    table = getattr(unwrapped, "P", None)
    if isinstance(table, dict):
        return _model_from_table(table)
    raise TypeError(f"expected a transition table P[s][a] or an env with one, got {model!r}")


def solve(model: Any = None, gamma: float = 0.95, tol: float = 1e-12) -> Solution:
    """Value iteration to ``Q*`` for a transition table or an env that has one.

    Args:
        model: ``P[s][a]``, an env with a ``P`` attribute (wrappers are looked
            through), or ``None`` for the default NChain-v0.
        gamma: discount in ``[0, 1)``.
        tol: stop when no value changes by more than this in a sweep.
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1) for an infinite-horizon solve, got {gamma!r}")
    m = model_of(model)
    q = np.zeros((m.n_states, m.n_actions))
    iteration = 0
    while True:
        iteration += 1
        new_q = m.reward + gamma * m.expected_next(q.max(axis=1))
        delta = np.max(np.abs(new_q - q))
        q = new_q
        if delta <= tol or iteration >= MAX_SWEEPS:
            break
    return Solution(
        q=q, v=q.max(axis=1), policy=q.argmax(axis=1), gamma=gamma, iterations=iteration
    )


def policy_return(
    model: Any = None, policy: Any = None, horizon: int = 1000, start: int = 0
) -> float:
    """Expected undiscounted return of a deterministic policy over ``horizon`` steps.

    Cheap for any horizon: a chain that is deterministic under the policy is followed
    once around its cycle; otherwise the per-step increase of the values is iterated
    until it no longer changes (the chain has mixed) and the rest is extrapolated,
    which is exact up to rounding from then on.

    Args:
        model: as for :func:`solve`.
        policy: one action per state; ``None`` means the optimal policy for gamma 0.95.
        horizon: number of steps (NChain-v0 truncates at 1000).
        start: the starting state.
    """
    m = model_of(model)
    if policy is None:
        policy = solve(m).policy
    policy = np.asarray(policy)
    if (
        policy.shape != (m.n_states,)
        or policy.dtype.kind not in "iu"
        or not np.isin(policy, np.arange(m.n_actions)).all()
    ):
        raise ValueError(
            f"policy must hold one action in 0..{m.n_actions - 1} per state "
            f"({m.n_states} states), got {policy!r}"
        )
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 0:
        raise ValueError(f"horizon must be an integer >= 0, got {horizon!r}")
    if not 0 <= start < m.n_states:
        raise ValueError(f"start must be a state in 0..{m.n_states - 1}, got {start!r}")
    horizon = int(horizon)
    chosen = m.pair // m.n_actions
    keep = m.pair == chosen * m.n_actions + policy[chosen]
    src, dst, prob = chosen[keep], m.next_state[keep], m.prob[keep]
    r_pi = m.reward[np.arange(m.n_states), policy]
    if np.all(prob == 1.0):
        successor = np.empty(m.n_states, dtype=np.int64)
        successor[src] = dst
        return _deterministic_return(successor, r_pi, horizon, start)
    value = np.zeros(m.n_states)
    step = None
    for t in range(horizon):
        new_value = r_pi + np.bincount(src, weights=prob * value[dst], minlength=m.n_states)
        new_step = new_value - value
        value = new_value
        if step is not None:
            scale = max(1.0, float(np.max(np.abs(new_step))))
            if np.max(np.abs(new_step - step)) <= 1e-13 * scale:
                return float(value[start] + (horizon - t - 1) * new_step[start])
        step = new_step
    return float(value[start])


def _deterministic_return(
    successor: np.ndarray, reward: np.ndarray, horizon: int, start: int
) -> float:
    """Sum of ``reward`` along the path from ``start``, using its cycle for long horizons."""
    seen: dict[int, int] = {}
    path_rewards: list[float] = []
    state = start
    while state not in seen and len(path_rewards) < horizon:
        seen[state] = len(path_rewards)
        path_rewards.append(float(reward[state]))
        state = int(successor[state])
    if len(path_rewards) >= horizon:
        return float(sum(path_rewards[:horizon]))
    lead = seen[state]
    cycle = path_rewards[lead:]
    rest = horizon - lead
    full, partial = divmod(rest, len(cycle))
    return float(sum(path_rewards[:lead]) + full * sum(cycle) + sum(cycle[:partial]))


@dataclass(frozen=True)
class EpisodeOptimum:
    """What is best possible in one episode of an env.

    Attributes:
        horizon: steps per episode (the env's ``max_episode_steps``), or ``None``.
        solution: the discounted optimum (Q*, V*, policy), or ``None`` when the env has
            no model this solver handles.
        expected_return: the optimal policy's expected undiscounted return over one
            episode of ``horizon`` steps from state 0, or ``None`` (no model or no limit).
    """

    horizon: int | None
    solution: Solution | None = None
    expected_return: float | None = None

    @property
    def reward_per_step(self) -> float | None:
        """``expected_return / horizon``: the level of the tutorial's training curve."""
        if self.expected_return is None or not self.horizon:
            return None
        return self.expected_return / self.horizon


def episode_optimum(env: Any, gamma: float = 0.95) -> EpisodeOptimum:
    """What is best possible in one episode of ``env``, if it has a model and a time limit.

    Args:
        env: a Gymnasium env; its ``spec.max_episode_steps`` is the horizon.
        gamma: the discount whose optimal policy is played.
    """
    spec = getattr(env, "spec", None)
    horizon = spec.max_episode_steps if spec is not None else None
    unwrapped = getattr(env, "unwrapped", env)
    if horizon is None or not (
        isinstance(unwrapped, NChainEnv) or isinstance(getattr(unwrapped, "P", None), dict)
    ):
        return EpisodeOptimum(horizon)
    try:
        model = model_of(env)
        solution = solve(model, gamma=gamma)
        expected = policy_return(model, solution.policy, horizon=horizon)
    except (ValueError, TypeError):
        return EpisodeOptimum(horizon)
    return EpisodeOptimum(horizon, solution, expected)
