"""keras-dqn: the network, one hand-checked update, both paths, learning, files."""

from __future__ import annotations

import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from nchain_agents import SpaceMismatchError, load, load_agent
from nchain_gym import FORWARD, NChainEnv, solve


def short_env(**kwargs):
    return gym.make("NChain-v0", **({"max_episode_steps": 100} | kwargs))


@pytest.fixture(scope="module")
def tf_keras():
    from nchain_agents.dqn_graph import import_tensorflow

    return import_tensorflow()


def test_network_shapes_and_activations(tf_keras):
    _, keras = tf_keras
    agent = load_agent("keras-dqn", seed=0).learn(short_env(), episodes=1)
    model = agent.model
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [10, 2]
    assert [layer.activation.__name__ for layer in dense] == ["sigmoid", "linear"]
    assert tuple(model.input_shape) == (None, 5)
    assert agent.q_values().shape == (5, 2)
    one_hot = np.eye(5, dtype=np.float32)
    np.testing.assert_allclose(agent.q_values(), model.predict(one_hot, verbose=0), rtol=1e-5)


@pytest.mark.parametrize("position", [None, 1])
def test_one_update_matches_keras_train_on_batch(tf_keras, position):
    """Our train_step (GradientTape + Keras Adam) = one Keras ``train_on_batch`` with
    ``Adam()`` and MSE on the tutorial's target vector; alone (a stack of one) and as
    the middle model of a stack of three whose neighbours are other networks in other
    states (the summed loss leaves each model its own gradient)."""
    tf, keras = tf_keras
    from nchain_agents import dqn_graph as g

    model = g.build_model(5, 2, 10, seed=3)
    reference = keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    reference.compile(optimizer=keras.optimizers.Adam(), loss="mse")

    s, a, r, s2, gamma = 1, 0, 2.0, 0, 0.95
    eye = np.eye(5, dtype=np.float32)
    q_s = reference.predict(eye[s : s + 1], verbose=0)[0]
    q_s2 = reference.predict(eye[s2 : s2 + 1], verbose=0)[0]
    target = r + gamma * q_s2.max()  # the tutorial's target for the taken action
    target_vec = q_s.copy()
    target_vec[a] = target  # the other output's target is its own prediction
    loss = reference.train_on_batch(eye[s : s + 1], target_vec[None])
    assert float(np.asarray(loss).ravel()[0]) == pytest.approx((q_s[a] - target) ** 2 / 2, rel=1e-4)

    networks = [model.get_weights()]
    if position is not None:  # neighbours: other networks, other transitions
        networks = [g.initial_weights(5, 2, 10, 11), networks[0], g.initial_weights(5, 2, 10, 12)]
    stack = g.Networks.stack([g.Networks.fresh(ws) for ws in networks])
    state = g.DQNState(stack, learning_rate=0.001)
    i = position or 0
    batch = len(networks)

    def column(value, others, dtype):
        values = [others] * batch
        values[i] = value
        return tf.constant(values, dtype)

    w2_before, b2_before = model.get_weights()[2:]
    g.train_step(
        state, column(s, 4, tf.int32), column(a, 1, tf.int32), column(r, 10.0, tf.float32),
        column(s2, 3, tf.int32), tf.zeros([batch], tf.bool), gamma,
    )  # fmt: skip
    params = [p.numpy()[..., i] for p in state.params]  # the model axis is last
    for ours, theirs in zip(params, reference.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    q_next = g.forward(state.params, column(s2, 0, tf.int32)).numpy()[:, i]
    np.testing.assert_allclose(
        q_next, reference.predict(eye[s2 : s2 + 1], verbose=0)[0], rtol=1e-6
    )  # float rounding: the sums run in another order
    # Only the taken action's output is trained: the other output unit's weights
    # (its column of W2 and its bias) do not move on the first step.
    np.testing.assert_array_equal(params[2][:, 1], w2_before[:, 1])
    np.testing.assert_array_equal(params[3][1], b2_before[1])
    assert not np.array_equal(params[2][:, 0], w2_before[:, 0])
    assert state.networks().step == 1


def test_in_graph_dynamics_match_the_env():
    """With epsilon = 1 the actions come from the agent's draws only, so both paths
    walk the same trajectory and the fused graph's NChain must pay exactly what the
    real env (built from P's outcome table) pays, episode by episode."""
    kwargs = {"n": 7, "slip": 0.3, "small": 1.5, "large": 4}
    hp = {"epsilon": 1.0, "epsilon_decay": 1.0}
    env_path = load_agent("keras-dqn", seed=4, **hp).learn(short_env(**kwargs), 5, loop="env")
    fused = load_agent("keras-dqn", seed=4, **hp).learn(short_env(**kwargs), 5, loop="fused")
    assert env_path.history.reward == fused.history.reward
    assert len(set(fused.history.reward)) > 1


def test_graph_table_is_the_env_table():
    from nchain_gym.dynamics import outcome_table

    env = NChainEnv(n=6, slip=0.25, small=3, large=8)
    next_state, rewards = outcome_table(6, 3.0, 8.0)
    for s in range(6):
        for taken in (0, 1):
            assert (1 - 0.25, next_state[s, taken], rewards[s, taken], False) in env.P[s][taken]


def test_env_and_fused_paths_learn_the_same():
    """Same random streams, different float kernels (XLA vs TF): trajectories coincide
    until a near-tie argmax flips. Measured on seeds 0-2 (30 episodes x 100 steps):
    all episode totals equal and Q within 3e-6; we allow 10 % of episodes to differ
    and Q to differ by 1e-3 (with a learning rate of 1e-3, far below one update)."""
    for seed in (0, 1):
        env_path = load_agent("keras-dqn", seed=seed).learn(short_env(), 30, loop="env")
        fused = load_agent("keras-dqn", seed=seed).learn(short_env(), 30, loop="fused")
        same = np.mean(np.equal(env_path.history.reward, fused.history.reward))
        assert same >= 0.9
        np.testing.assert_allclose(env_path.q_values(), fused.q_values(), atol=1e-3)


@pytest.mark.parametrize("loop", ["env", "fused"])
def test_same_seed_same_weights_and_history(loop):
    a = load_agent("keras-dqn", seed=8).learn(short_env(), 8, loop=loop)
    b = load_agent("keras-dqn", seed=8).learn(short_env(), 8, loop=loop)
    assert a.history == b.history
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_save_load_predict_and_continue(tmp_path):
    agent = load_agent("keras-dqn", seed=5).learn(gym.make("NChain-v0"), 20)
    path = agent.save(tmp_path / "dqn.zip")
    again = load(path)
    obs = np.arange(5)
    np.testing.assert_array_equal(
        again.predict(obs, deterministic=True)[0], agent.predict(obs, deterministic=True)[0]
    )
    np.testing.assert_array_equal(again.q_values(), agent.q_values())
    assert again.current_epsilon == agent.current_epsilon
    # Continued training after load equals training straight through.
    again.learn(gym.make("NChain-v0"), 10)
    agent.learn(gym.make("NChain-v0"), 10)
    np.testing.assert_allclose(again.q_values(), agent.q_values(), rtol=1e-6)
    assert again.history == agent.history


def test_loaded_model_refuses_other_spaces(tmp_path):
    agent = load_agent("keras-dqn", seed=0).learn(short_env(), 1)
    again = load(agent.save(tmp_path / "d.zip"))
    with pytest.raises(SpaceMismatchError, match=r"Discrete\(5\).*Discrete\(8\)"):
        again.learn(short_env(n=8), 1)


def test_keras_backend_other_than_tensorflow_is_refused(tmp_path):
    code = (
        "import gymnasium as gym, nchain_agents as na\n"
        "try:\n"
        "    na.load_agent('keras-dqn').learn(gym.make('NChain-v0'), 1)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    env = dict(os.environ, KERAS_BACKEND="jax")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.startswith(
        "KerasBackendError keras-dqn needs Keras on the TensorFlow backend"
    )
    assert "KERAS_BACKEND='jax'" in out.stdout


def test_tensorflow_start_up_noise_is_silenced(tmp_path):
    code = (
        "import gymnasium as gym, nchain_agents as na\n"
        "na.load_agent('keras-dqn', seed=0).learn(gym.make('NChain-v0'), 2)\n"
        "print('trained')\n"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "NCHAIN_TF_LOGS")
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert out.stdout.strip() == "trained"
    assert out.stderr == ""


@pytest.mark.slow
def test_learns_q_star_with_the_default_budget():
    """After the default 1000 episodes: greedy policy all-FORWARD and max |Q - Q*| / Q*
    <= 8 % for at least 4 of 5 seeds (the tutorial printed Q within ~1-3 % of Q*)."""
    q_star = solve(NChainEnv(), gamma=0.95).q
    good = 0
    for seed in range(5):
        agent = load_agent("keras-dqn", seed=seed).learn(gym.make("NChain-v0"))
        q = agent.q_values()
        all_forward = (q.argmax(axis=1) == FORWARD).all()
        good += bool(all_forward and np.max(np.abs(q - q_star) / q_star) <= 0.08)
    assert good >= 4


TWO_WORKERS = """
import json, os, sys, threading
import gymnasium as gym
import nchain_gym
from nchain_agents import load_agent, tournament

mode = sys.argv[1]
if mode == "tournament":
    # The README's own case: a tabular agent and keras-dqn on two worker threads.
    result = tournament(["q-table", "keras-dqn"], trials=2, episodes=2, workers=2,
                        env_kwargs={"max_episode_steps": 30})
    out = result.totals.shape
else:
    # No tournament to import TensorFlow up front: two threads start keras-dqn at once.
    barrier, errors = threading.Barrier(2), []
    def train(seed):
        barrier.wait()
        try:
            load_agent("keras-dqn", seed=seed).learn(gym.make("NChain-v0", max_episode_steps=30), 2)
        except BaseException as exc:
            errors.append(repr(exc))
    threads = [threading.Thread(target=train, args=(s,)) for s in (0, 1)]
    for t in threads: t.start()
    for t in threads: t.join()
    out = errors
os.write(2, b"stderr still reaches the terminal\\n")
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["tournament", "threads"])
def test_keras_dqn_with_two_workers_repeatedly(mode, tmp_path):
    """Importing TensorFlow from two threads at once used to deadlock or half-import,
    and the fd-2 redirection around it could leave stderr on a deleted file. The race
    is at the first import, so each run is a fresh process; 4 runs per mode (it failed
    about half the time before the fix)."""
    env = {k: v for k, v in os.environ.items() if k != "NCHAIN_TF_LOGS"}
    for _ in range(4):
        out = subprocess.run(
            [sys.executable, "-c", TWO_WORKERS, mode],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "stderr still reaches the terminal" in out.stderr
        assert out.stdout.strip() == ("[2, 2]" if mode == "tournament" else "[]")


def test_import_leaves_stderr_in_place():
    """After the quiet import (done or not), fd 2 is the process's own stderr again."""
    from nchain_agents.dqn_graph import _quiet_stderr

    before = os.fstat(2)
    with _quiet_stderr():
        pass
    with pytest.raises(RuntimeError), _quiet_stderr():
        raise RuntimeError("replayed")
    after = os.fstat(2)
    assert (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino)


MISSING_TF = """
import sys
sys.modules["tensorflow"] = None  # what an install without the keras extra looks like
sys.modules["keras"] = None
import gymnasium as gym
import nchain_gym
from nchain_agents import list_agents, load_agent
from nchain_agents.errors import MissingExtraError
assert "keras-dqn" in [row.name for row in list_agents() if row.ok]
agent = load_agent("keras-dqn", seed=0)   # the class is there; using it needs the extra
try:
    agent.learn(gym.make("NChain-v0", max_episode_steps=5), 1)
except MissingExtraError as exc:
    print(exc)
print(agent.is_trained)
load_agent("q-table", seed=0).learn(gym.make("NChain-v0", max_episode_steps=5), 1)
print("tabular fine")
"""


def test_without_the_keras_extra(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", MISSING_TF], capture_output=True, text=True, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    first, trained, tabular = out.stdout.splitlines()
    assert first.startswith('keras-dqn needs TensorFlow and Keras: pip install "nchain-rl[keras]"')
    assert trained == "False"
    assert tabular == "tabular fine"
    cli = subprocess.run(
        [sys.executable, "-c",
         "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
         "from nchain_agents.cli import main; sys.exit(main(['train', 'keras-dqn']))"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert cli.returncode == 2
    lines = cli.stderr.strip().splitlines()
    assert len(lines) == 1, cli.stderr
    assert lines[0].startswith(
        'nchain train: error: keras-dqn needs TensorFlow and Keras: pip install "nchain-rl[keras]"'
    )
    assert not (tmp_path / "keras-dqn.zip").exists()


def _same_agent(a, b):
    """Same history, epsilon, Adam step and weights (the batch reproduces the single run:
    measured bit for bit; float rounding is all we would allow)."""
    assert a.history == b.history
    assert a.current_epsilon == b.current_epsilon and a.num_timesteps == b.num_timesteps
    x, y = a._networks(), b._networks()
    assert x.step == y.step
    for name in ("flat", "m", "v"):
        np.testing.assert_allclose(getattr(x, name), getattr(y, name), rtol=1e-6, atol=1e-7)
    assert a.rng.bit_generator.state == b.rng.bit_generator.state  # streams end alike


def test_a_batch_reproduces_each_agent_alone():
    """Agent i of a batched run ends where its own ``learn`` leaves it: for a batch of
    one, for the middle of a batch of five, and across batches cut by ``batch_size``."""
    from nchain_agents import learn_many

    env = short_env(slip=0.3)
    seeds = [21, 22, 23, 24, 25]
    alone = {s: load_agent("keras-dqn", seed=s).learn(env, 12) for s in (21, 23)}
    (one,) = learn_many([load_agent("keras-dqn", seed=21)], env, 12)
    _same_agent(one, alone[21])
    five = learn_many([load_agent("keras-dqn", seed=s) for s in seeds], env, 12)
    _same_agent(five[2], alone[23])
    cut = learn_many([load_agent("keras-dqn", seed=s) for s in seeds], env, 12, batch_size=2)
    _same_agent(cut[2], alone[23])
    for a, b in zip(five, cut, strict=True):
        _same_agent(a, b)


def test_an_agent_stopped_in_a_batch_keeps_its_state_and_stream():
    """A sink returning False stops its agent there (state and random streams as of that
    episode) while the rest of the batch goes on."""
    from nchain_agents.default_plugins.keras_dqn import KerasDQNAgent
    from nchain_gym.dynamics import NChainParams

    env = short_env()
    params = NChainParams.from_env(env)
    agents = [load_agent("keras-dqn", seed=s) for s in (31, 32, 33)]
    for agent in agents:
        agent._start_learning(env, 6, "fused")
    sinks = [agent._recorder(6, None, None) for agent in agents]
    stop_after_two = sinks[1]
    counted = []

    def stopping(total, length, eps):
        stop_after_two(total, length, eps)
        counted.append(total)
        return len(counted) < 2

    sinks[1] = stopping
    KerasDQNAgent.learn_nchain_batch(agents, params, 6, sinks, chunked=True)
    assert [len(a.history) for a in agents] == [6, 2, 6]
    _same_agent(
        agents[1],
        load_agent("keras-dqn", seed=32).learn(env, 6, callback=lambda st: st.episode < 2),
    )
    _same_agent(agents[2], load_agent("keras-dqn", seed=33).learn(env, 6))


def test_learn_many_refuses_bad_arguments():
    from nchain_agents import InvalidArgumentError, learn_many

    agent = load_agent("keras-dqn", seed=0)
    with pytest.raises(InvalidArgumentError, match="distinct"):
        learn_many([agent, agent], short_env(), 1)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(InvalidArgumentError, match="batch_size"):
            learn_many([agent], short_env(), 1, batch_size=bad)


def test_the_automatic_batch_fits_an_eighth_of_the_free_memory(monkeypatch):
    """Step codes cost 8 bytes per step per agent (an int32, held twice): with
    8 x 8 x 1000 x 10 bytes free (plus the per-agent allowance), ten agents of
    1000-step episodes fit; never fewer than one, never more than 1024."""
    from nchain_agents.default_plugins import keras_dqn

    ten = 8 * 10 * (8 * 1000 + 4096)
    monkeypatch.setattr(keras_dqn, "_available_memory", lambda: ten)
    assert keras_dqn.auto_batch_size(1000) == 10
    assert keras_dqn.auto_batch_size(10**9) == 1
    monkeypatch.setattr(keras_dqn, "_available_memory", lambda: 2**50)
    assert keras_dqn.auto_batch_size(1000) == 1024


def test_step_codes_carry_the_env_loops_choices_and_slips():
    """The fused loop decodes ``code // 2`` (an explored action, or n_actions for
    "greedy") and ``code % 2`` (slipped); both come from the same rule as ``act``:
    explore where u0 < epsilon, with action int(u1 * n_actions)."""
    from nchain_agents.dqn_graph import explored_actions, step_codes

    draws = np.array([[0.1, 0.7], [0.5, 0.2], [0.29, 0.99], [0.3, 0.0]])
    epsilon = 0.3
    np.testing.assert_array_equal(explored_actions(draws, epsilon, 2), [1, -1, 1, -1])
    slipped = np.array([False, True, True, False])
    codes = step_codes(draws, slipped, epsilon, 2)
    assert codes.dtype == np.int32
    np.testing.assert_array_equal(codes // 2, [1, 2, 1, 2])
    np.testing.assert_array_equal(codes % 2, slipped)
    # Epsilon per row (one per episode) broadcasts over the steps.
    per_episode = step_codes(draws.reshape(2, 2, 2), slipped.reshape(2, 2), [[1.0], [0.0]], 2)
    np.testing.assert_array_equal(per_episode // 2, [[1, 0], [2, 2]])
