"""The one agent API, shared by every registered agent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from helpers import child_venv, run_checked, write_distribution
from nchain_agents import (
    InvalidArgumentError,
    NotTrainedError,
    Registry,
    SpaceMismatchError,
    evaluate,
    list_agents,
    load_agent,
)

ROOT = Path(__file__).resolve().parents[1]
AGENTS = [row.name for row in list_agents(include_broken=False)]


def short_env(**kwargs):
    return gym.make("NChain-v0", max_episode_steps=50, **kwargs)


@pytest.mark.parametrize("name", AGENTS)
def test_learn_predict_shapes(name):
    agent = load_agent(name, seed=0)
    with pytest.raises(NotTrainedError, match="call learn"):
        agent.predict(0)
    assert agent.learn(short_env(), episodes=3) is agent
    assert len(agent.history) == 3
    assert agent.num_timesteps == 150
    assert agent.history.length == [50, 50, 50]
    assert agent.q_values().shape == (5, 2)
    action, state = agent.predict(0, deterministic=True)
    assert state is None
    assert action.shape == ()
    assert action in (0, 1)
    actions, _ = agent.predict(np.array([0, 1, 4]))
    assert actions.shape == (3,)
    assert agent.predict(np.zeros((2, 2), dtype=int))[0].shape == (2, 2)
    with pytest.raises(ValueError, match=r"state indices in 0..4, got 5"):
        agent.predict(5)
    with pytest.raises(ValueError, match="state indices"):
        agent.predict(0.5)


@pytest.mark.parametrize("name", AGENTS)
def test_same_seed_same_learning(name):
    a = load_agent(name, seed=11).learn(short_env(), episodes=4)
    b = load_agent(name, seed=11).learn(short_env(), episodes=4)
    assert a.history == b.history
    np.testing.assert_array_equal(a.q_values(), b.q_values())


@pytest.mark.parametrize("name", AGENTS)
def test_spaces_are_checked(name):
    with pytest.raises(
        SpaceMismatchError, match=r"observation space must be gymnasium.spaces.Discrete"
    ):
        load_agent(name).learn(gym.make("CartPole-v1"), episodes=1)
    agent = load_agent(name, seed=0).learn(short_env(), episodes=1)
    with pytest.raises(SpaceMismatchError, match=r"built for Discrete\(5\).*Discrete\(7\)"):
        agent.learn(short_env(n=7), episodes=1)


@pytest.mark.parametrize("name", AGENTS)
def test_callback_can_stop_and_sees_stats(name):
    seen = []

    def callback(stats):
        seen.append((stats.episode, stats.episodes, stats.length))
        return stats.episode < 2

    agent = load_agent(name, seed=0).learn(short_env(), episodes=5, callback=callback)
    assert seen == [(1, 5, 50), (2, 5, 50)]
    assert len(agent.history) == 2


@pytest.mark.parametrize("episodes", [-1, 2.5, True])
def test_bad_episode_budget(episodes):
    with pytest.raises(InvalidArgumentError, match="episodes must be an integer >= 0"):
        load_agent("random").learn(short_env(), episodes=episodes)


def test_progress_bar_shows_episodes_and_reward(capsys):
    load_agent("eps-greedy-q-table", seed=0).learn(short_env(), episodes=3, progress_bar=True)
    err = capsys.readouterr().err
    assert "EpsGreedyQTableAgent" in err
    assert "3/3" in err  # episodes done out of episodes asked for
    assert "reward/step" in err and "eps 0.499" in err  # 0.5 * 0.999**3 = 0.4985


def test_runs_on_frozenlake():
    agent = load_agent("random", seed=0).learn(gym.make("FrozenLake-v1"), episodes=5)
    assert agent.q_values().shape == (16, 4)


def test_evaluate_helper():
    agent = load_agent("q-table", seed=0).learn(short_env(), episodes=1)
    result = evaluate(agent, short_env(), n_episodes=4, seed=3)
    assert result.returns.shape == (4,)
    assert (result.lengths == 50).all()
    assert result.mean == pytest.approx(result.returns.mean())
    low, high = result.confidence_interval()
    assert low <= result.mean <= high
    again = evaluate(agent, short_env(), n_episodes=4, seed=3)
    np.testing.assert_array_equal(result.returns, again.returns)
    with pytest.raises(ValueError, match="n_episodes must be an integer >= 1, got 0"):
        evaluate(agent, short_env(), n_episodes=0)


@pytest.mark.parametrize("name", ["q-table", "eps-greedy-q-table"])
def test_sb3_evaluate_policy_drives_our_agents(name):
    """Stable-Baselines3's own evaluate_policy, on its own vectorised env of NChain-v0.

    A greedy q-table trained this briefly plays a fixed policy; evaluate_policy's returns
    must be what our evaluate() measures for the same policy: totals between 0 and the
    best possible 50-step total (10 per step), lengths of exactly 50.
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    agent = load_agent(name, seed=0).learn(short_env(), episodes=20)
    venv = make_vec_env("NChain-v0", n_envs=2, seed=0, env_kwargs={"max_episode_steps": 50})
    rewards, lengths = evaluate_policy(
        agent, venv, n_eval_episodes=4, deterministic=True, return_episode_rewards=True
    )
    venv.close()
    assert lengths == [50, 50, 50, 50]
    assert all(0 <= r <= 500 for r in rewards)
    mean, std = evaluate_policy(agent, make_vec_env("NChain-v0", n_envs=1, seed=1), 2)
    assert 0 <= mean <= 10_000 and std >= 0


def example_plugin_site(root: Path) -> Path:
    return write_distribution(
        root,
        "nchain-sarsa",
        "0.1.0",
        {"expected-sarsa": "nchain_sarsa"},
        {},
    )


def test_example_plugin_through_its_entry_point(fake_site, monkeypatch):
    example_plugin_site(fake_site)
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "plugin" / "src"))
    registry = Registry()
    info = registry.get("expected-sarsa")
    assert info.distribution == "nchain-sarsa"
    agent = info.agent_class(seed=0).learn(short_env(), episodes=20)
    assert agent.q_values().shape == (5, 2)
    sys.modules.pop("nchain_sarsa", None)


def test_plugin_rules_run_bit_identically_in_both_loops(monkeypatch):
    """The example plugin supplies only its rules; the public tabular base gives it the
    env loop and the fused NChain loop, which agree exactly from the same seed."""
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "plugin" / "src"))
    from nchain_sarsa import ExpectedSarsaAgent

    kwargs = {"n": 6, "slip": 0.3, "max_episode_steps": 300}
    env_loop = ExpectedSarsaAgent(seed=4).learn(gym.make("NChain-v0", **kwargs), 30, loop="env")
    fused = ExpectedSarsaAgent(seed=4).learn(gym.make("NChain-v0", **kwargs), 30, loop="fused")
    np.testing.assert_array_equal(env_loop.q_values(), fused.q_values())
    assert env_loop.history == fused.history
    assert (fused.q_values() != 0).any()
    sys.modules.pop("nchain_sarsa", None)


@pytest.mark.slow
def test_example_plugin_installs_and_lists(tmp_path):
    """pip-install nchain-rl and examples/plugin into a venv: the agent appears and trains."""
    venv = tmp_path / "venv"
    python = str(child_venv(venv))
    run_checked(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         str(ROOT), str(ROOT / "examples" / "plugin")],
        cwd=tmp_path,
    )  # fmt: skip
    code = (
        "import gymnasium as gym, nchain_agents as na\n"
        "row = [r for r in na.list_agents() if r.name == 'expected-sarsa'][0]\n"
        "print(row.distribution, row.version)\n"
        "a = na.load_agent('expected-sarsa', seed=0).learn(gym.make('NChain-v0'), episodes=2)\n"
        "a.save('s.zip'); print(type(na.load('s.zip')).__name__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NCHAIN_AGENTS_PLUGINS"}
    out = run_checked([python, "-c", code], cwd=tmp_path, env=env)
    assert out.stdout.split() == ["nchain-sarsa", "0.2.0", "ExpectedSarsaAgent"]


def test_random_baseline_is_random_in_every_mode():
    """The floor must not play the optimal policy when evaluated greedily.

    A uniform policy on NChain-v0 is a Markov chain with the two actions' transition
    rows averaged; its exact expected 1000-step total is computed below (about 1313).
    Per game the total has a standard deviation of about 75 (measured over 300 games),
    so the mean of 20 games lies within 5 * 75 / sqrt(20) = 84 of it; always-FORWARD,
    what an argmax of the zero table plays, earns 3663.7.
    """
    from nchain_gym import NChainEnv
    from nchain_gym.solver import model_arrays

    agent = load_agent("random", seed=0).learn(short_env(), episodes=1)
    actions = agent.predict(np.zeros(200, dtype=np.int64), deterministic=True)[0]
    assert set(actions.tolist()) == {0, 1}
    T, R = model_arrays(NChainEnv().P)
    T_uniform, R_uniform = T.mean(axis=1), R.mean(axis=1)
    value = np.zeros(5)
    for _ in range(1000):
        value = R_uniform + T_uniform @ value
    expected = value[0]
    assert 1250 < expected < 1380
    games = evaluate(agent, gym.make("NChain-v0"), n_episodes=20, seed=5, deterministic=True)
    assert abs(games.mean - expected) <= 84
