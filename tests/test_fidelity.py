"""Statistical fidelity: empirical transitions of both envs match the table P.

For a fixed (state, action), the two possible outcomes (intended action / slipped
action) lead to different next states, so the number of slipped outcomes among the
N visits of (s, a) is Binomial(N, p) with p = P's probability of that outcome,
independent of the past (the Markov property). We accept |k - N p| <= 5 sqrt(N p (1 - p)):
for one check a false alarm has probability < 6e-7 (normal tail beyond 5 sigma; N is
in the thousands, where the normal approximation of the binomial tail is good), so
for the ~150 checks below < 1e-4 in total. Seeds are fixed, so the outcome is
reproducible; the bound says the seeds were not cherry-picked. A wrong slip of even
0.02 at N = 5000 shifts k by 100 against a bound of 5 * sqrt(5000 * .16) = 141 for
p = .2, so the sample sizes here catch a 0.03 error on the busier pairs.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from nchain_gym import NChainEnv, NChainVectorEnv

PARAMS = [
    {"n": 5, "slip": 0.2, "small": 2, "large": 10},
    {"n": 3, "slip": 0.5, "small": 1, "large": 4},
    {"n": 8, "slip": 0.05, "small": -1, "large": 3},
]
FORWARD_BIAS = 0.8  # behaviour policy: mostly FORWARD, so the far states get visited


def check_counts(counts: Counter, table) -> int:
    """Compare observed (s, a) -> (s2, r) counts with P; return how many checks ran."""
    checks = 0
    visits = Counter()
    for (s, a, s2, r), k in counts.items():
        support = {(s2_, r_) for p, s2_, r_, _ in table[s][a] if p > 0}
        assert (s2, r) in support, f"transition {(s, a)} -> {(s2, r)} is not in P"
        visits[(s, a)] += k
    for (s, a), n_visits in visits.items():
        for p, s2, r, _ in table[s][a]:
            k = counts.get((s, a, s2, r), 0)
            if p in (0.0, 1.0):
                assert k == n_visits * p
                continue
            sd = math.sqrt(n_visits * p * (1 - p))
            assert abs(k - n_visits * p) <= 5 * sd, (s, a, s2, r, k, n_visits, p)
            checks += 1
    return checks


@pytest.mark.slow
@pytest.mark.parametrize("params", PARAMS)
def test_single_env_matches_table(params):
    env = NChainEnv(**params)
    env.reset(seed=2024)
    actions = (np.random.default_rng(7).random(200_000) > FORWARD_BIAS).astype(int).tolist()
    counts = Counter()
    s = 0
    for a in actions:
        s2, r, *_ = env.step(a)
        counts[(s, a, s2, r)] += 1
        s = s2
    assert check_counts(counts, env.P) >= params["n"]


@pytest.mark.slow
@pytest.mark.parametrize("params", PARAMS)
def test_vector_env_matches_table(params):
    num_envs = 2048
    envs = NChainVectorEnv(num_envs=num_envs, max_episode_steps=None, **params)
    state, _ = envs.reset(seed=2025)
    rng = np.random.default_rng(8)
    counts = Counter()
    for _ in range(100):
        actions = (rng.random(num_envs) > FORWARD_BIAS).astype(np.int64)
        next_state, reward, *_ = envs.step(actions)
        keys, k = np.unique(
            np.stack([state, actions, next_state, reward]), axis=1, return_counts=True
        )
        for (s, a, s2, r), c in zip(keys.T.tolist(), k.tolist(), strict=True):
            counts[(int(s), int(a), int(s2), r)] += c
        state = next_state
    assert check_counts(counts, NChainEnv(**params).P) >= params["n"]
