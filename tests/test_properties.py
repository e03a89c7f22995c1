"""Property tests over parameters and action sequences (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nchain_gym import NChainEnv, NChainVectorEnv

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
params = st.fixed_dictionaries(
    {
        "n": st.integers(2, 12),
        "slip": st.floats(0.0, 1.0),
        "small": finite,
        "large": finite,
    }
)
actions = st.lists(st.integers(0, 1), min_size=1, max_size=60)


def allowed(table, s, a):
    return {(s2, r) for p, s2, r, _ in table[s][a] if p > 0}


@settings(max_examples=150, deadline=None)
@given(params=params, actions=actions, seed=st.integers(0, 2**32 - 1))
def test_single_env_steps_stay_inside_the_table(params, actions, seed):
    env = NChainEnv(**params)
    s, _ = env.reset(seed=seed)
    for a in actions:
        s2, r, terminated, truncated, info = env.step(a)
        assert env.observation_space.contains(s2)
        assert r in {0.0, env.small, env.large}
        assert (s2, r) in allowed(env.P, s, a)
        assert info["taken_action"] == a ^ info["slipped"]
        assert not terminated and not truncated
        s = s2


@settings(max_examples=75, deadline=None)
@given(
    params=params,
    num_envs=st.integers(1, 6),
    steps=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_vector_env_steps_stay_inside_the_table(params, num_envs, steps, seed):
    envs = NChainVectorEnv(num_envs=num_envs, max_episode_steps=7, **params)
    table = NChainEnv(**params).P
    state, _ = envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    was_truncated = np.zeros(num_envs, dtype=bool)
    for _ in range(steps):
        acts = rng.integers(0, 2, num_envs)
        nxt, reward, terminated, truncated, _ = envs.step(acts)
        assert envs.observation_space.contains(nxt)
        assert not terminated.any()
        for i in range(num_envs):
            if was_truncated[i]:
                assert (nxt[i], reward[i]) == (0, 0.0)
            else:
                assert (int(nxt[i]), float(reward[i])) in allowed(
                    table, int(state[i]), int(acts[i])
                )
        state, was_truncated = nxt, truncated
