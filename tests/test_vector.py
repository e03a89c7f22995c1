"""The native vector env behind gym.make_vec("NChain-v0")."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from nchain_gym import NChainEnv, NChainVectorEnv


def test_make_vec_uses_native_env():
    envs = gym.make_vec("NChain-v0", num_envs=8)
    assert isinstance(envs.unwrapped, NChainVectorEnv)
    assert envs.num_envs == 8
    assert envs.unwrapped.max_episode_steps == 1000
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert envs.single_observation_space == gym.spaces.Discrete(5)
    assert envs.single_action_space == gym.spaces.Discrete(2)
    assert envs.observation_space == gym.spaces.MultiDiscrete([5] * 8)
    obs, info = envs.reset(seed=0)
    assert obs.shape == (8,) and obs.dtype == np.int64 and (obs == 0).all()
    assert info == {}


def test_make_vec_passes_env_kwargs():
    envs = gym.make_vec("NChain-v0", num_envs=2, n=3, slip=0.0, large=7)
    envs.reset(seed=0)
    for _ in range(2):
        envs.step(np.zeros(2, dtype=np.int64))
    obs, reward, *_ = envs.step(np.zeros(2, dtype=np.int64))
    assert obs.tolist() == [2, 2] and reward.tolist() == [7.0, 7.0]


def test_same_seed_same_rollout():
    def rollout(seed):
        envs = NChainVectorEnv(num_envs=16)
        envs.reset(seed=seed)
        rng = np.random.default_rng(1)
        out = []
        for _ in range(300):
            obs, reward, *_ = envs.step(rng.integers(0, 2, 16))
            out.append((obs, reward))
        return out

    a, b, c = rollout(4), rollout(4), rollout(5)
    assert all((x[0] == y[0]).all() and (x[1] == y[1]).all() for x, y in zip(a, b, strict=True))
    assert any((x[0] != y[0]).any() for x, y in zip(a, c, strict=True))


def test_autoreset_next_step_at_the_1000_step_boundary():
    envs = gym.make_vec("NChain-v0", num_envs=3, slip=0.0)
    envs.reset(seed=0)
    forward = np.zeros(3, dtype=np.int64)
    for t in range(1, 1001):
        obs, reward, terminated, truncated, _ = envs.step(forward)
        assert not terminated.any()
        assert truncated.all() == (t == 1000) and truncated.any() == (t == 1000)
    assert obs.tolist() == [4, 4, 4] and reward.tolist() == [10.0, 10.0, 10.0]
    # Next step: the reset step. Action ignored, obs 0, reward 0, not done.
    obs, reward, terminated, truncated, _ = envs.step(np.ones(3, dtype=np.int64))
    assert obs.tolist() == [0, 0, 0] and reward.tolist() == [0.0, 0.0, 0.0]
    assert not terminated.any() and not truncated.any()
    # Then a fresh episode: 1000 more steps before the next truncation.
    for t in range(1, 1001):
        obs, reward, _, truncated, _ = envs.step(forward)
        assert truncated.all() == (t == 1000)
    assert obs.tolist() == [4, 4, 4]


def test_autoreset_only_touches_finished_envs():
    envs = NChainVectorEnv(num_envs=2, slip=0.0, max_episode_steps=3)
    envs.reset(seed=0)
    for _ in range(3):
        envs.step(np.array([0, 0]))
    obs, reward, *_ = envs.step(np.array([0, 1]))
    assert obs.tolist() == [0, 0] and reward.tolist() == [0.0, 0.0]
    obs, reward, _, _, _ = envs.step(np.array([0, 1]))
    assert obs.tolist() == [1, 0] and reward.tolist() == [0.0, 2.0]


def test_matches_single_env_deterministically_without_slip():
    single = NChainEnv(n=6, slip=0.0, small=3, large=5)
    single.reset()
    envs = NChainVectorEnv(num_envs=1, n=6, slip=0.0, small=3, large=5)
    envs.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, 500)
    for a in actions:
        s_obs, s_rew, *_ = single.step(int(a))
        v_obs, v_rew, *_ = envs.step(np.array([a]))
        assert (s_obs, s_rew) == (v_obs[0], v_rew[0])


@pytest.mark.parametrize(
    ("actions", "pattern"),
    [
        (np.array([0, 2, 1]), r"0 \(FORWARD\) or 1 \(BACKWARD\), got \[2\]"),
        (np.array([0, -1, 1]), r"got \[-1\]"),
        (np.array([0, 1]), r"shape \(3,\)"),
        (np.array([0.0, 1.0, 0.0]), "integer array"),
    ],
)
def test_bad_actions(actions, pattern):
    envs = NChainVectorEnv(num_envs=3)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=pattern):
        envs.step(actions)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"num_envs": 0}, "num_envs must be an integer >= 1, got 0"),
        ({"max_episode_steps": 0}, "max_episode_steps must be None or an integer >= 1, got 0"),
        ({"slip": 2}, r"slip must be a probability in \[0, 1\], got 2"),
        ({"render_mode": "ansi"}, "no render modes"),
    ],
)
def test_bad_parameters(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        NChainVectorEnv(**kwargs)


def test_step_before_reset_and_bad_seed():
    envs = NChainVectorEnv(num_envs=2)
    with pytest.raises(RuntimeError, match="before reset"):
        envs.step(np.array([0, 0]))
    with pytest.raises(ValueError, match="one integer seed"):
        envs.reset(seed=[1, 2])


def test_no_truncation_when_unlimited():
    envs = NChainVectorEnv(num_envs=2, max_episode_steps=None)
    envs.reset(seed=0)
    for _ in range(1500):
        _, _, _, truncated, _ = envs.step(np.array([0, 1]))
        assert not truncated.any()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint64, np.int8, np.int32, np.int64])
def test_any_integer_action_dtype(dtype):
    """uint8 / uint64 action arrays raised OverflowError; all integer dtypes now step alike."""
    envs = NChainVectorEnv(num_envs=4, slip=0.0)
    envs.reset(seed=0)
    obs, reward, *_ = envs.step(np.array([0, 1, 0, 1], dtype=dtype))
    assert obs.tolist() == [1, 0, 1, 0] and obs.dtype == np.int64
    assert reward.tolist() == [0.0, 2.0, 0.0, 2.0]
    with pytest.raises(
        ValueError, match=r"actions must be 0 \(FORWARD\) or 1 \(BACKWARD\), got \[2\]"
    ):
        envs.step(np.array([0, 1, 2, 0], dtype=dtype))
