"""The three tabular agents: update math by hand, the two rules, both paths, learning."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from nchain_agents import (
    HyperparameterError,
    InvalidArgumentError,
    SpaceMismatchError,
    load_agent,
    tournament,
)
from nchain_agents import _kernels as k
from nchain_agents import tabular_rules as rules

TABULAR = ("naive-sum", "q-table", "eps-greedy-q-table")


# -- the math, by hand -------------------------------------------------------------------


def compiled(rule):
    """The rule as the agents run it: compiled by Numba."""
    return k.compiled(rule)


NAN = float("nan")
STANDARD = np.array([0.95, 0.8, 0.0])  # gamma, lr, tutorial rule off
TUTORIAL = np.array([0.95, 0.8, 1.0])


def test_naive_sum_update_by_hand():
    update = compiled(rules.naive_sum_update)
    table = np.zeros((3, 2))
    update(table, 0, 1, 2.0, 0, False, NAN, np.empty(0))  # BACKWARD from 0 paid 2
    update(table, 0, 1, 2.0, 0, False, NAN, np.empty(0))
    update(table, 2, 0, 10.0, 2, False, NAN, np.empty(0))
    np.testing.assert_array_equal(table, [[0, 4], [0, 0], [10, 0]])


def test_q_learning_standard_rule_by_hand():
    update = compiled(rules.q_learning_update)
    table = np.zeros((3, 2))
    # (s=0, a=1, r=2, s'=0): 0 + 0.8 * (2 + 0.95 * 0 - 0) = 1.6
    update(table, 0, 1, 2.0, 0, False, NAN, STANDARD)
    assert table[0, 1] == pytest.approx(1.6)
    # (s=0, a=1, r=2, s'=0) again: 1.6 + 0.8 * (2 + 0.95 * 1.6 - 1.6) = 3.136
    update(table, 0, 1, 2.0, 0, False, NAN, STANDARD)
    assert table[0, 1] == pytest.approx(3.136)
    # (s=1, a=0, r=0, s'=0): 0 + 0.8 * (0 + 0.95 * 3.136 - 0) = 2.38336
    update(table, 1, 0, 0.0, 0, False, NAN, STANDARD)
    assert table[1, 0] == pytest.approx(2.38336)
    # A terminal next state contributes no future value: 0.8 * (5 - 0) = 4
    update(table, 2, 0, 5.0, 0, True, NAN, STANDARD)
    assert table[2, 0] == pytest.approx(4.0)


def test_q_learning_tutorial_rule_by_hand():
    update = compiled(rules.q_learning_update)
    table = np.zeros((3, 2))
    # Q += r + lr * (g * max Q' - Q): 0 + 2 + 0.8 * (0.95 * 0 - 0) = 2.0  (= 1.6 / 0.8)
    update(table, 0, 1, 2.0, 0, False, NAN, TUTORIAL)
    assert table[0, 1] == pytest.approx(2.0)
    # 2 + 2 + 0.8 * (0.95 * 2 - 2) = 3.92  (= 3.136 / 0.8)
    update(table, 0, 1, 2.0, 0, False, NAN, TUTORIAL)
    assert table[0, 1] == pytest.approx(3.92)
    # 0 + 0 + 0.8 * (0.95 * 3.92 - 0) = 2.9792  (= 2.38336 / 0.8)
    update(table, 1, 0, 0.0, 0, False, NAN, TUTORIAL)
    assert table[1, 0] == pytest.approx(2.9792)


def test_action_choice_by_hand():
    choose = compiled(rules.tutorial_action)
    table = np.array([[0.0, 0.0], [1.0, 3.0], [2.0, 2.0], [1.0, -1.0]])
    draws = np.array([0.7, 0.3, 0.2, 0.9, 0.4])
    # Zero row, no exploration (epsilon NaN): random action from one draw: int(0.7 * 2) = 1.
    assert choose(table, 0, NAN, draws, 0) == (1, 1)
    # Non-zero row, no exploration: argmax, no draw used.
    assert choose(table, 1, NAN, draws, 0) == (1, 0)
    # Ties go to the lowest action.
    assert choose(table, 2, NAN, draws, 0) == (0, 0)
    # A row that sums to 0 counts as a zero row (the tutorial tests the sum).
    assert choose(table, 3, NAN, draws, 1) == (0, 2)
    # Exploring: U=0.3 < eps=0.5 -> random from the next draw int(0.2 * 2) = 0.
    assert choose(table, 1, 0.5, draws, 1) == (0, 3)
    # Exploring: U=0.9 >= 0.5 and non-zero row -> argmax, one draw used.
    assert choose(table, 1, 0.5, draws, 3) == (1, 4)
    # Exploring with epsilon 0 still spends its draw, then plays greedy.
    assert choose(table, 1, 0.0, draws, 0) == (1, 1)


# -- the two update rules -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["q-table", "eps-greedy-q-table"])
@pytest.mark.parametrize("loop", ["env", "fused"])
def test_rules_make_the_same_decisions(name, loop):
    env_kwargs = {"max_episode_steps": 200}
    standard = load_agent(name, seed=5).learn(
        gym.make("NChain-v0", **env_kwargs), episodes=60, loop=loop
    )
    tutorial = load_agent(name, seed=5, update_rule="tutorial").learn(
        gym.make("NChain-v0", **env_kwargs), episodes=60, loop=loop
    )
    assert standard.history == tutorial.history
    np.testing.assert_allclose(tutorial.q_values() * 0.8, standard.q_values(), rtol=1e-9)
    obs = np.arange(5)
    np.testing.assert_array_equal(
        standard.predict(obs, deterministic=True)[0], tutorial.predict(obs, deterministic=True)[0]
    )


# -- the two training paths ---------------------------------------------------------------


@pytest.mark.parametrize("name", TABULAR)
def test_env_and_fused_paths_agree_exactly(name):
    """The fused path replays the env path's random streams, so agreement is exact.

    Exact equality implies the statistical agreement the paths must have; it also
    pins that the compiled dynamics are NChainEnv's (built from the same table).
    """
    kwargs = {"slip": 0.3, "small": 1.5, "large": 7, "n": 6, "max_episode_steps": 300}
    env_path = load_agent(name, seed=9).learn(gym.make("NChain-v0", **kwargs), 40, loop="env")
    fused = load_agent(name, seed=9).learn(gym.make("NChain-v0", **kwargs), 40, loop="fused")
    np.testing.assert_array_equal(env_path.q_values(), fused.q_values())
    assert env_path.history == fused.history
    auto = load_agent(name, seed=9).learn(gym.make("NChain-v0", **kwargs), 40)
    np.testing.assert_array_equal(auto.q_values(), fused.q_values())


def test_fused_path_chunks_continue_one_stream():
    whole = load_agent("eps-greedy-q-table", seed=2).learn(gym.make("NChain-v0"), 30)
    chunked = load_agent("eps-greedy-q-table", seed=2).learn(
        gym.make("NChain-v0"), 30, callback=lambda stats: None
    )
    np.testing.assert_array_equal(whole.q_values(), chunked.q_values())
    assert whole.history == chunked.history


class DoubleReward(gym.RewardWrapper):
    def reward(self, reward):
        return 2 * reward


def test_user_wrappers_are_never_bypassed():
    plain = load_agent("naive-sum", seed=1).learn(gym.make("NChain-v0"), 20)
    wrapped = load_agent("naive-sum", seed=1).learn(DoubleReward(gym.make("NChain-v0")), 20)
    # naive-sum sums rewards: with doubled rewards and the same streams, exactly twice.
    np.testing.assert_array_equal(wrapped.q_values(), 2 * plain.q_values())
    with pytest.raises(ValueError, match="loop='fused' needs"):
        load_agent("naive-sum").learn(DoubleReward(gym.make("NChain-v0")), 1, loop="fused")


def test_raw_env_without_time_limit_is_refused():
    from nchain_gym import NChainEnv

    with pytest.raises(ValueError, match="never ends an episode"):
        load_agent("q-table").learn(NChainEnv(), 1)


def test_works_on_frozenlake():
    """Not only NChain: on deterministic FrozenLake it learns a path to the goal.

    Random play reaches the goal in under 1 % of episodes; 2,000 episodes of
    eps-greedy Q-learning solved it for each of seeds 0-4 in our runs.
    """
    from nchain_agents import evaluate

    agent = load_agent("eps-greedy-q-table", seed=0).learn(
        gym.make("FrozenLake-v1", is_slippery=False), episodes=2000
    )
    assert agent.q_values().shape == (16, 4)
    game = evaluate(agent, gym.make("FrozenLake-v1", is_slippery=False), n_episodes=1, seed=0)
    assert game.mean == 1.0


# -- seeds and continuation -----------------------------------------------------------------


@pytest.mark.parametrize("name", TABULAR)
def test_same_seed_same_table_and_history(name):
    a = load_agent(name, seed=21).learn(gym.make("NChain-v0"), 50)
    b = load_agent(name, seed=21).learn(gym.make("NChain-v0"), 50)
    c = load_agent(name, seed=22).learn(gym.make("NChain-v0"), 50)
    np.testing.assert_array_equal(a.q_values(), b.q_values())
    assert a.history == b.history
    assert a.history != c.history


def test_epsilon_decays_per_episode_and_continues(tmp_path):
    agent = load_agent("eps-greedy-q-table", seed=0).learn(gym.make("NChain-v0"), 3)
    np.testing.assert_allclose(agent.history.epsilon, [0.5 * 0.999, 0.5 * 0.999**2, 0.5 * 0.999**3])
    agent.save(tmp_path / "a.zip")
    from nchain_agents import load

    again = load(tmp_path / "a.zip").learn(gym.make("NChain-v0"), 2)
    assert again.history.epsilon[-1] == pytest.approx(0.5 * 0.999**5)
    straight = load_agent("eps-greedy-q-table", seed=0).learn(gym.make("NChain-v0"), 3)
    straight.learn(gym.make("NChain-v0"), 2)
    np.testing.assert_array_equal(again.q_values(), straight.q_values())


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs", "pattern"),
    [
        ("q-table", {"learning_rate": 0.0}, r"learning_rate must be in \(0, 1\], got 0.0"),
        ("q-table", {"learning_rate": 1.5}, r"learning_rate must be in \(0, 1\], got 1.5"),
        ("q-table", {"gamma": -0.1}, r"gamma must be in \[0, 1\], got -0.1"),
        ("q-table", {"gamma": 1.01}, r"gamma must be in \[0, 1\], got 1.01"),
        ("q-table", {"update_rule": "code"}, "update_rule must be one of 'standard', 'tutorial'"),
        ("eps-greedy-q-table", {"epsilon": 2}, r"epsilon must be in \[0, 1\], got 2.0"),
        ("q-table", {"gamma": "high"}, "gamma must be float, got 'high'"),
        ("q-table", {"gamma": float("nan")}, "gamma must be a finite number"),
    ],
)
def test_bad_hyperparameters(name, kwargs, pattern):
    with pytest.raises(HyperparameterError, match=pattern):
        load_agent(name, **kwargs)


def test_bad_episodes_and_spaces():
    with pytest.raises(InvalidArgumentError, match="episodes must be an integer >= 0, got -5"):
        load_agent("q-table").learn(gym.make("NChain-v0"), episodes=-5)
    with pytest.raises(
        SpaceMismatchError, match=r"observation space must be gymnasium.spaces.Discrete, got Box"
    ):
        load_agent("q-table").learn(gym.make("MountainCar-v0"), episodes=1)


# -- learning ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_eps_greedy_learns_best():
    """eps-greedy-q-table beats the other two in mean greedy-game total over 40 seeds.

    Bounds, from our own measurements (400-trial tournament, seed 123): mean totals
    1505 / 1504 / 2223 and per-trial sd of (eps-greedy - other) about 860-900. Over
    40 trials the mean difference is ~700 with standard error 900 / sqrt(40) = 142, so
    requiring > 200 sits 3.5 standard errors below the expected value. The last state
    is FORWARD in 81.75 % of 400 seeds; over 40 seeds that is 32.7 +- 2.4 expected,
    and we require >= 24 (3.6 sd below).
    """
    result = tournament(trials=40, seed=7, workers=2)
    naive, qtable, eps = result.mean_totals
    assert eps - naive > 200
    assert eps - qtable > 200
    last_forward = sum(
        load_agent("eps-greedy-q-table", seed=s).learn(gym.make("NChain-v0")).q_values()[4].argmax()
        == 0
        for s in range(40)
    )
    assert last_forward >= 24


def test_a_removed_plugin_never_breaks_the_built_ins(tmp_path):
    """Numba's cache index of a function taking functions imports every module it was
    compiled with: a plugin's rules in the built-ins' cached loop would make q-table
    crash once the plugin is uninstalled. Train a plugin agent in one process, remove
    its module, and train q-table in the next."""
    import subprocess
    import sys

    plugin = tmp_path / "nchain_vanishing.py"
    plugin.write_text(
        "from dataclasses import dataclass\n"
        "from nchain_agents import TabularAgent\n"
        "def update(table, s, a, r, s2, terminated, epsilon, params):\n"
        "    table[s, a] += 3.0 * r\n"
        "@dataclass(kw_only=True, eq=False)\n"
        "class Vanishing(TabularAgent):\n"
        "    '''Gone after this process.'''\n"
        "    update_step = staticmethod(update)\n"
    )
    train_plugin = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import gymnasium as gym, nchain_gym, nchain_vanishing\n"
        "agent = nchain_vanishing.Vanishing(seed=0)\n"
        "agent.learn(gym.make('NChain-v0', max_episode_steps=50), 3, loop='fused')\n"
        "print(agent.q_values().sum() > 0)\n"
    )
    first = subprocess.run(
        [sys.executable, "-c", train_plugin, str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert first.stdout.strip() == "True", first.stderr
    plugin.unlink()
    train_builtin = (
        "import gymnasium as gym, nchain_gym\nfrom nchain_agents import load_agent\n"
        "load_agent('q-table', seed=0).learn(gym.make('NChain-v0', max_episode_steps=50), 3)\n"
        "print('ok')\n"
    )
    second = subprocess.run(
        [sys.executable, "-c", train_builtin], capture_output=True, text=True, timeout=300
    )
    assert second.stdout.strip() == "ok", second.stderr


def test_learn_many_equals_learn_for_every_tabular_agent():
    """Agents without a batched loop train one after another on the shared env; each
    seeds its own first reset, so the result is bit for bit what ``learn`` gives."""
    import gymnasium as gym

    from nchain_agents import learn_many, load_agent

    names = ["naive-sum", "q-table", "eps-greedy-q-table", "random"]
    env = gym.make("NChain-v0", slip=0.3)
    many = learn_many([load_agent(n, seed=i) for i, n in enumerate(names)], env, 40)
    for i, (name, agent) in enumerate(zip(names, many, strict=True)):
        alone = load_agent(name, seed=i).learn(gym.make("NChain-v0", slip=0.3), 40)
        assert agent.history == alone.history
        np.testing.assert_array_equal(agent.q_values(), alone.q_values())
        assert agent.rng.bit_generator.state == alone.rng.bit_generator.state


def test_evaluate_looks_greedy_actions_up_and_plays_the_same_games():
    """For agents whose greedy policy is a table, ``evaluate`` plays from a table made
    once; the games are those of calling ``predict`` at every step (as for any SB3 model)."""
    import gymnasium as gym

    from nchain_agents import evaluate, load_agent

    class PredictOnly:  # not an Agent: evaluate calls predict every step
        def __init__(self, agent):
            self.predict = agent.predict

    for name in ("q-table", "naive-sum"):
        agent = load_agent(name, seed=3).learn(gym.make("NChain-v0"), 30)
        assert type(agent).greedy_is_a_table
        fast = evaluate(agent, gym.make("NChain-v0"), n_episodes=3, seed=9)
        slow = evaluate(PredictOnly(agent), gym.make("NChain-v0"), n_episodes=3, seed=9)
        np.testing.assert_array_equal(fast.returns, slow.returns)
