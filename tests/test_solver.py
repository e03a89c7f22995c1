"""The exact solver reproduces the reference values of NChain-v0 (n=5, slip=0.2, small=2,
large=10, gamma=0.95): Q* below and 3663.7 for 1000 steps of always-FORWARD, from value
iteration on the model (quoted in the env's docstring too)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from nchain_gym import FORWARD, NChainEnv, policy_return, solve
from nchain_gym.solver import model_arrays

REFERENCE_Q = np.array(
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
    np.testing.assert_allclose(solution.q, REFERENCE_Q, atol=1e-3)
    np.testing.assert_array_equal(solution.policy, [FORWARD] * 5)
    np.testing.assert_allclose(solution.v, REFERENCE_Q.max(axis=1), atol=1e-3)


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
        ({"horizon": -1}, "horizon must be an integer >= 0, got -1"),
    ],
)
def test_policy_return_bad_input(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        policy_return(NChainEnv(), **({"policy": [0] * 5} | kwargs))


def test_solve_bad_gamma():
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\).*1.0"):
        solve(NChainEnv(), gamma=1.0)


def brute_force_return(env, policy, horizon, start=0):
    """The T-step return by plain iteration over the dense model (small models only)."""
    T, R = model_arrays(env.P)
    states = np.arange(T.shape[0])
    T_pi, R_pi = T[states, policy], R[states, policy]
    value = np.zeros(T.shape[0])
    for _ in range(horizon):
        value = R_pi + T_pi @ value
    return value[start]


@pytest.mark.parametrize("slip", [0.0, 0.05, 0.2, 0.5, 1.0])
@pytest.mark.parametrize("policy", [[0] * 6, [1] * 6, [0, 0, 1, 0, 0, 0], [0, 1, 0, 1, 0, 1]])
def test_long_horizons_are_extrapolated_exactly(slip, policy):
    """Deterministic chains (slip 0 or 1) follow their cycle; stochastic ones extrapolate
    once the per-step increase settles. Both must equal plain iteration."""
    env = NChainEnv(n=6, slip=slip, small=2, large=10)
    for horizon in (0, 1, 7, 500, 3000):
        expected = brute_force_return(env, policy, horizon)
        assert policy_return(env, policy, horizon=horizon) == pytest.approx(expected, rel=1e-10)


def test_huge_horizon_is_cheap():
    import time

    start = time.perf_counter()
    value = policy_return(NChainEnv(), [FORWARD] * 5, horizon=100_000_000)
    assert time.perf_counter() - start < 5
    # By plain iteration: the return after 20,000 steps and the gain per step after mixing.
    v10k = brute_force_return(NChainEnv(), [FORWARD] * 5, 10_000)
    v20k = brute_force_return(NChainEnv(), [FORWARD] * 5, 20_000)
    gain = (v20k - v10k) / 10_000
    assert value == pytest.approx(v20k + (100_000_000 - 20_000) * gain, rel=1e-9)


def test_long_chain_solves_in_seconds_and_little_memory():
    """n = 100,000: the dense model needed 80 GB (T is n x 2 x n floats); the sparse one
    needs a few MB. The subprocess runs under a 1.5 GB address-space limit."""
    import subprocess
    import sys

    code = (
        "import resource, time\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))\n"
        "from nchain_gym import NChainEnv, solve, policy_return\n"
        "start = time.perf_counter()\n"
        "env = NChainEnv(n=100_000)\n"
        "solution = solve(env)\n"
        "ret = policy_return(env, solution.policy, horizon=1000)\n"
        "print(time.perf_counter() - start, solution.policy[:3].tolist(), ret)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seconds, *_ = out.stdout.split()
    assert float(seconds) < 20
