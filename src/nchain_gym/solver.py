"""Exact solutions of a finite MDP given as a toy_text transition table ``P[s][a]``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nchain_gym.env import NChainEnv, TransitionTable


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


def model_arrays(P: TransitionTable) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``T[s, a, s']`` (probabilities) and ``R[s, a]`` (expected reward) from ``P``."""
    n_states = len(P)
    n_actions = len(P[0])
    T = np.zeros((n_states, n_actions, n_states))
    R = np.zeros((n_states, n_actions))
    for s, row in P.items():
        for a, outcomes in row.items():
            for prob, s2, reward, terminated in outcomes:
                if terminated:
                    raise ValueError(
                        "model_arrays handles continuing MDPs only (no terminal states)"
                    )
                T[s, a, s2] += prob
                R[s, a] += prob * reward
    return T, R


def _table_of(model: Any) -> TransitionTable:
    if isinstance(model, dict):
        return model
    unwrapped = getattr(model, "unwrapped", model)
    if isinstance(unwrapped, NChainEnv):
        return unwrapped.P
    table = getattr(unwrapped, "P", None)
    if isinstance(table, dict):
        return table
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
    T, R = model_arrays(NChainEnv().P if model is None else _table_of(model))
    q = np.zeros_like(R)
    iteration = 0
    while True:
        iteration += 1
        new_q = R + gamma * T @ q.max(axis=1)
        delta = np.max(np.abs(new_q - q))
        q = new_q
        if delta <= tol or iteration >= 100_000:
            break
    return Solution(
        q=q, v=q.max(axis=1), policy=q.argmax(axis=1), gamma=gamma, iterations=iteration
    )


def policy_return(
    model: Any = None, policy: Any = None, horizon: int = 1000, start: int = 0
) -> float:
    """Expected undiscounted return of a deterministic policy over ``horizon`` steps.

    Args:
        model: as for :func:`solve`.
        policy: one action per state; ``None`` means the optimal policy for gamma 0.95.
        horizon: number of steps (NChain-v0 truncates at 1000).
        start: the starting state.
    """
    T, R = model_arrays(NChainEnv().P if model is None else _table_of(model))
    n_states = R.shape[0]
    if policy is None:
        policy = solve(model).policy
    policy = np.asarray(policy)
    if policy.shape != (n_states,) or not np.isin(policy, np.arange(R.shape[1])).all():
        raise ValueError(
            f"policy must hold one action in 0..{R.shape[1] - 1} per state "
            f"({n_states} states), got {policy!r}"
        )
    if horizon < 0:
        raise ValueError(f"horizon must be >= 0, got {horizon!r}")
    states = np.arange(n_states)
    T_pi, R_pi = T[states, policy], R[states, policy]
    value = np.zeros(n_states)
    for _ in range(horizon):
        value = R_pi + T_pi @ value
    return float(value[start])


def episode_optimum(
    env: Any, gamma: float = 0.95
) -> tuple[Solution | None, float | None, int | None]:
    """What is best possible in one episode of ``env``, if it has a model and a time limit.

    Returns:
        ``(solution, expected_return, horizon)``: the discounted solution for ``gamma``,
        the expected undiscounted return of its optimal policy over one episode of
        ``horizon = env.spec.max_episode_steps`` steps from state 0, and that horizon.
        The first two are ``None`` when the env has no ``P`` table (or one this solver
        cannot handle) or no step limit.
    """
    spec = getattr(env, "spec", None)
    horizon = spec.max_episode_steps if spec is not None else None
    if horizon is None or not isinstance(getattr(env.unwrapped, "P", None), dict):
        return None, None, horizon
    try:
        solution = solve(env, gamma=gamma)
        return solution, policy_return(env, solution.policy, horizon=horizon), horizon
    except (ValueError, TypeError):
        return None, None, horizon
