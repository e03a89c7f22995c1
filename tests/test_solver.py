"""The exact solver reproduces SPEC §1's reference values."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from nchain_gym import FORWARD, NChainEnv, policy_return, solve
from nchain_gym.solver import model_arrays

SPEC_Q = np.array(
    [
        [61.379, 60.578],
        [64.891, 61.456],
        [69.512, 62.611],
        [75.592, 64.131],
        [83.592, 66.131],
    ]
)


def test_q_star_matches_spec():
    solution = solve(NChainEnv(), gamma=0.95)
    np.testing.assert_allclose(solution.q, SPEC_Q, atol=1e-3)
    np.testing.assert_array_equal(solution.policy, [FORWARD] * 5)
    np.testing.assert_allclose(solution.v, SPEC_Q.max(axis=1), atol=1e-3)


def test_solve_accepts_wrapped_env_and_table():
    a = solve(gym.make("NChain-v0")).q
    b = solve(NChainEnv().P).q
    np.testing.assert_array_equal(a, b)


def test_q_star_satisfies_bellman_equation():
    env = NChainEnv(n=7, slip=0.3, small=1, large=4)
    solution = solve(env, gamma=0.9)
    T, R = model_arrays(env.P)
    np.testing.assert_allclose(solution.q, R + 0.9 * T @ solution.v, atol=1e-9)


def test_always_forward_1000_step_return():
    assert policy_return(NChainEnv(), [FORWARD] * 5, horizon=1000) == pytest.approx(3663.7, abs=0.1)


def test_policy_return_small_horizon_by_hand():
    # slip 0.2, always FORWARD from 0: step 1 pays small w.p. 0.2 (slipped BACKWARD) -> 0.4;
    # step 2: from 0 (p .2) pays 0.4 again, from 1 (p .8) pays 0.4 too -> total 0.8.
    assert policy_return(NChainEnv(), [0] * 5, horizon=1) == pytest.approx(0.4)
    assert policy_return(NChainEnv(), [0] * 5, horizon=2) == pytest.approx(0.8)
    # Always BACKWARD: 0.8 * small + 0.2 * 0 on each step from 0 (slip to FORWARD moves on).
    assert policy_return(NChainEnv(slip=0.0), [1] * 5, horizon=10) == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"policy": [0, 0]}, "one action in 0..1 per state"),
        ({"policy": [0, 0, 0, 0, 2]}, "one action"),
        ({"horizon": -1}, "horizon must be >= 0"),
    ],
)
def test_policy_return_bad_input(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        policy_return(NChainEnv(), **({"policy": [0] * 5} | kwargs))


def test_solve_bad_gamma():
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\).*1.0"):
        solve(NChainEnv(), gamma=1.0)
