# ruff: noqa: B007, SIM108, NPY002, PT028, RUF059  (the article's code, kept as printed)
"""The tutorial's code, written for Gym 0.x, runs through ``nchain_gym.legacy``.

The functions below follow the article's code statement for statement (the names, the
Gym 0.x calls ``s = env.reset()`` and ``new_s, r, done, _ = env.step(a)``, the global
``np.random``); only ``import gym`` became ``import nchain_gym.legacy as gym``. Its
Keras loop differs in one line: Keras 3 renamed ``InputLayer(batch_input_shape=(1, 5))``
to ``InputLayer(shape=(5,))``.
"""

from __future__ import annotations

import numpy as np
import pytest

import nchain_gym.legacy as gym

# -- the article's functions, as it prints them (comments ours) --------------------------


def naive_sum_reward_agent(env, num_episodes=500):
    r_table = np.zeros((5, 2))
    for g in range(num_episodes):
        s = env.reset()
        done = False
        while not done:
            if np.sum(r_table[s, :]) == 0:
                a = np.random.randint(0, 2)  # nothing summed here yet: explore
            else:
                a = np.argmax(r_table[s, :])
            new_s, r, done, _ = env.step(a)
            r_table[s, a] += r
            s = new_s
    return r_table


def q_learning_with_table(env, num_episodes=500):
    q_table = np.zeros((5, 2))
    y = 0.95
    lr = 0.8
    for i in range(num_episodes):
        s = env.reset()
        done = False
        while not done:
            if np.sum(q_table[s, :]) == 0:
                a = np.random.randint(0, 2)
            else:
                a = np.argmax(q_table[s, :])
            new_s, r, done, _ = env.step(a)
            q_table[s, a] += r + lr * (y * np.max(q_table[new_s, :]) - q_table[s, a])
            s = new_s
    return q_table


def eps_greedy_q_learning_with_table(env, num_episodes=500):
    q_table = np.zeros((5, 2))
    y = 0.95
    eps = 0.5
    lr = 0.8
    decay_factor = 0.999
    for i in range(num_episodes):
        s = env.reset()
        eps *= decay_factor
        done = False
        while not done:
            if np.random.random() < eps or np.sum(q_table[s, :]) == 0:
                a = np.random.randint(0, 2)
            else:
                a = np.argmax(q_table[s, :])
            new_s, r, done, _ = env.step(a)
            q_table[s, a] += r + lr * (y * np.max(q_table[new_s, :]) - q_table[s, a])
            s = new_s
    return q_table


def run_game(table, env):
    s = env.reset()
    tot_reward = 0
    done = False
    while not done:
        a = np.argmax(table[s, :])
        s, r, done, _ = env.step(a)
        tot_reward += r
    return tot_reward


def test_methods(env, num_iterations=100):
    winner = np.zeros((3,))
    for g in range(num_iterations):
        m0_table = naive_sum_reward_agent(env, 500)
        m1_table = q_learning_with_table(env, 500)
        m2_table = eps_greedy_q_learning_with_table(env, 500)
        m0 = run_game(m0_table, env)
        m1 = run_game(m1_table, env)
        m2 = run_game(m2_table, env)
        w = np.argmax(np.array([m0, m1, m2]))
        winner[w] += 1
        print(f"Game {g + 1} of {num_iterations}")
    return winner


test_methods.__test__ = False  # the article's name, not a pytest test


def keras_loop(env, num_episodes):
    """The article's Keras section (its module-level code, in a function)."""
    from keras.layers import Dense, InputLayer
    from keras.models import Sequential

    model = Sequential()
    model.add(InputLayer(shape=(5,)))  # the article: InputLayer(batch_input_shape=(1, 5))
    model.add(Dense(10, activation="sigmoid"))
    model.add(Dense(2, activation="linear"))
    model.compile(loss="mse", optimizer="adam", metrics=["mae"])
    y = 0.95
    eps = 0.5
    decay_factor = 0.999
    r_avg_list = []
    for i in range(num_episodes):
        s = env.reset()
        eps *= decay_factor
        if i % 100 == 0:
            print(f"Episode {i + 1} of {num_episodes}")
        done = False
        r_sum = 0
        while not done:
            if np.random.random() < eps:
                a = np.random.randint(0, 2)
            else:
                a = np.argmax(model.predict(np.identity(5)[s : s + 1]))
            new_s, r, done, _ = env.step(a)
            target = r + y * np.max(model.predict(np.identity(5)[new_s : new_s + 1]))
            target_vec = model.predict(np.identity(5)[s : s + 1])[0]
            target_vec[a] = target
            model.fit(np.identity(5)[s : s + 1], target_vec.reshape(-1, 2), epochs=1, verbose=0)
            s = new_s
            r_sum += r
        r_avg_list.append(r_sum / 1000)
    return model, r_avg_list


# -- the tests ---------------------------------------------------------------------------


def test_the_old_api_over_the_registered_env():
    env = gym.make("NChain-v0", slip=0.0, max_episode_steps=3)
    assert env.action_space.n == 2 and env.observation_space.n == 5
    assert env.seed(7) == [7]
    assert env.reset() == 0
    assert env.step(0) == (1, 0, False, {"slipped": False, "taken_action": 0})
    assert env.step(1)[:3] == (0, 2, False)
    obs, reward, done, info = env.step(0)
    assert done and info["TimeLimit.truncated"]
    assert env.spec.id == "NChain-v0" and env.unwrapped.slip == 0.0
    env.close()


def test_seed_makes_the_next_reset_repeatable():
    def walk(env):
        env.seed(3)
        env.reset()
        return [env.step(0)[1] for _ in range(30)]

    env = gym.make("NChain-v0")
    assert walk(env) == walk(env) == walk(gym.make("NChain-v0"))


def test_render_prints_text_for_human(capsys):
    env = gym.make("NChain-v0", render_mode="ansi")
    env.reset()
    assert env.render(mode="human") is None
    assert "[0]" in capsys.readouterr().out
    assert env.render(mode="ansi").startswith("[0]")


def test_make_passes_every_keyword_and_names_bad_ones():
    env = gym.make("NChain-v0", n=7, large=4, max_episode_steps=9)
    assert env.observation_space.n == 7 and env.spec.max_episode_steps == 9
    with pytest.raises(Exception, match="slip"):
        gym.make("NChain-v0", slip=2.0)


def test_the_articles_tables_and_tournament_run_unchanged():
    """Its functions run as printed, and learn what the article says they learn."""
    np.random.seed(0)
    env = gym.make("NChain-v0")
    r_table = naive_sum_reward_agent(env, 50)
    assert r_table.shape == (5, 2) and r_table.sum() > 0
    q_table = q_learning_with_table(env, 50)
    eps_table = eps_greedy_q_learning_with_table(env, 50)
    for table in (q_table, eps_table):
        assert np.isfinite(table).all() and table.max() > 0
    total = run_game(eps_table, env)
    assert 0 <= total <= 10 * 1000
    short = gym.make("NChain-v0", max_episode_steps=100)
    winner = test_methods(short, num_iterations=3)
    assert winner.shape == (3,) and winner.sum() == 3


@pytest.mark.slow
def test_the_articles_keras_loop_runs(capsys):
    """The article's Keras loop, shortened (2 episodes of 15 steps): it trains."""
    np.random.seed(1)
    model, r_avg_list = keras_loop(gym.make("NChain-v0", max_episode_steps=15), 2)
    assert len(r_avg_list) == 2 and all(0 <= r <= 10 * 15 / 1000 for r in r_avg_list)
    q = model.predict(np.identity(5), verbose=0)
    assert q.shape == (5, 2) and np.isfinite(q).all()
    assert "Episode 1 of 2" in capsys.readouterr().out
