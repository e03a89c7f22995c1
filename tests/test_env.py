"""The single NChain environment: API, dynamics table, errors, rendering."""

from __future__ import annotations

import re
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import nchain_gym
from nchain_gym import BACKWARD, FORWARD, NChainEnv

PARAMS = [
    {},
    {"n": 2, "slip": 0.0, "small": 1, "large": 3},
    {"n": 9, "slip": 0.5, "small": -1.5, "large": 100},
    {"n": 3, "slip": 1.0, "small": 0, "large": 0},
]


@pytest.mark.parametrize("kwargs", PARAMS)
def test_check_env_passes(kwargs):
    check_env(gym.make("NChain-v0", **kwargs).unwrapped, skip_render_check=False)
    for mode in ("ansi", "rgb_array"):
        check_env(gym.make("NChain-v0", render_mode=mode, **kwargs).unwrapped)


def test_gym_make_three_ways():
    for env_id in ("NChain-v0", "nchain_gym:NChain-v0"):
        env = gym.make(env_id)
        assert env.spec.max_episode_steps == 1000
        assert env.spec.reward_threshold is None
        assert isinstance(env.unwrapped, NChainEnv)
    assert isinstance(NChainEnv(), gym.Env)


def test_registration_is_idempotent():
    spec_before = gym.spec("NChain-v0")
    nchain_gym.register()
    nchain_gym.register()
    assert gym.spec("NChain-v0") == spec_before


def test_spaces_and_reset():
    env = NChainEnv(n=7)
    assert env.observation_space == gym.spaces.Discrete(7)
    assert env.action_space == gym.spaces.Discrete(2)
    obs, info = env.reset(seed=3)
    assert obs == 0 and isinstance(obs, int) and info == {}


def test_transition_table_matches_spec_table():
    # The original NChain-v0: BACKWARD -> 0 with `small`; FORWARD s<n-1 -> s+1 with 0;
    # FORWARD at n-1 stays with `large`.
    env = NChainEnv(n=5, slip=0.2, small=2, large=10)
    for s in range(5):
        for a in (FORWARD, BACKWARD):
            rows = env.P[s][a]
            assert sum(p for p, *_ in rows) == pytest.approx(1.0)
            by_taken = {}
            for p, s2, r, term in rows:
                assert term is False
                by_taken[a if p == pytest.approx(0.8) else 1 - a] = (s2, r)
            assert by_taken[BACKWARD] == (0, 2.0)
            assert by_taken[FORWARD] == ((s + 1, 0.0) if s < 4 else (4, 10.0))


@pytest.mark.parametrize("slip", [0.0, 1.0])
def test_zero_probability_outcomes_are_omitted(slip):
    env = NChainEnv(slip=slip)
    for s in range(env.n):
        for a in (0, 1):
            assert len(env.P[s][a]) == 1 and env.P[s][a][0][0] == 1.0


def test_deterministic_walk_without_slip():
    env = NChainEnv(n=4, slip=0.0, small=2, large=10)
    env.reset(seed=0)
    seen = [env.step(FORWARD)[:2] for _ in range(5)]
    assert seen == [(1, 0.0), (2, 0.0), (3, 0.0), (3, 10.0), (3, 10.0)]
    obs, reward, terminated, truncated, info = env.step(BACKWARD)
    assert (obs, reward, terminated, truncated) == (0, 2.0, False, False)
    assert info == {"slipped": False, "taken_action": BACKWARD}
    # BACKWARD from state 0 also pays `small`.
    assert env.step(BACKWARD)[:2] == (0, 2.0)


def test_always_slip_flips_every_action():
    env = NChainEnv(n=3, slip=1.0)
    env.reset(seed=0)
    obs, reward, *_, info = env.step(BACKWARD)
    assert (obs, reward, info["slipped"], info["taken_action"]) == (1, 0.0, True, FORWARD)


def test_same_seed_same_rollout():
    def rollout(seed):
        env = gym.make("NChain-v0")
        env.reset(seed=seed)
        actions = np.random.default_rng(99).integers(0, 2, 3000)
        return [env.step(int(a))[:4] for a in actions]

    first = rollout(5)
    assert first == rollout(5)
    assert first != rollout(6)


def test_reset_with_seed_restarts_stream():
    env = NChainEnv()
    env.reset(seed=1)
    a = [env.step(0)[4]["slipped"] for _ in range(50)]
    env.reset(seed=1)
    b = [env.step(0)[4]["slipped"] for _ in range(50)]
    assert a == b


def test_truncates_at_1000_steps():
    env = gym.make("NChain-v0")
    env.reset(seed=0)
    for t in range(1, 1001):
        _, _, terminated, truncated, _ = env.step(FORWARD)
        assert not terminated
        assert truncated == (t == 1000)


def test_numpy_integer_actions_accepted():
    env = NChainEnv(slip=0.0)
    env.reset()
    assert env.step(np.int64(0))[0] == 1
    assert env.step(np.array(1))[0] == 0


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"n": 1}, "n must be an integer >= 2.*1"),
        ({"n": 2.5}, "n must be an integer >= 2.*2.5"),
        ({"slip": -0.1}, r"slip must be a probability in \[0, 1\].*-0.1"),
        ({"slip": 1.5}, r"slip.*1.5"),
        ({"slip": float("nan")}, r"slip.*nan"),
        ({"small": float("inf")}, "small must be a finite number.*inf"),
        ({"large": float("nan")}, "large must be a finite number.*nan"),
        ({"large": "ten"}, "large must be a finite number.*'ten'"),
        ({"slip": True}, r"slip must be a probability in \[0, 1\], got True"),
        ({"slip": "0.3"}, r"slip must be a probability in \[0, 1\], got '0.3'"),
        ({"small": True}, "small must be a finite number, got True"),
        ({"n": True}, "n must be an integer >= 2"),
        ({"large": 10**400}, "large must be a finite number"),
        ({"render_mode": "human"}, "render_mode.*'human'"),
    ],
)
def test_bad_parameters(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        NChainEnv(**kwargs)


@pytest.mark.parametrize(
    "action",
    [2, -1, 0.5, 0.0, 1.0, True, False, np.True_, "0", None, np.array([0, 1]), np.array(0.0)],
)
def test_bad_action(action):
    env = NChainEnv()
    env.reset()
    with pytest.raises(ValueError, match=re.escape("action must be 0 (FORWARD) or 1 (BACKWARD)")):
        env.step(action)


def test_bad_action_rejected_under_python_O():
    code = (
        "from nchain_gym import NChainEnv\n"
        "e = NChainEnv(); e.reset()\n"
        "try:\n    e.step(7)\nexcept ValueError as exc:\n    print('rejected', exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-O", "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("rejected action must be 0 (FORWARD) or 1 (BACKWARD), got 7")


def test_step_before_reset():
    with pytest.raises(RuntimeError, match=r"before reset\(\)"):
        NChainEnv().step(0)


def test_render_ansi():
    env = NChainEnv(n=4, slip=0.0, render_mode="ansi")
    env.reset()
    assert env.render() == "[0]- 1 - 2 - 3 \n"
    env.step(FORWARD)
    assert env.render() == " 0 -[1]- 2 - 3   (FORWARD)\n"
    assert NChainEnv().render() is None


def test_docstring_numbers_are_true():
    # The env docstring quotes Q*(0) and the 1000-step return; keep them honest.
    doc = NChainEnv.__doc__
    solution = nchain_gym.solve(NChainEnv())
    q0 = f"[{solution.q[0, 0]:.3f}, {solution.q[0, 1]:.3f}]"
    assert q0 in doc
    ret = nchain_gym.policy_return(NChainEnv(), [FORWARD] * 5, horizon=1000)
    assert f"{ret:.1f} in expectation" in doc


def test_render_rgb_array_shows_position_action_and_slip():
    from nchain_gym.rendering import ACTED, AGENT, SLIPPED, picture_shape

    env = NChainEnv(n=4, slip=0.0, render_mode="rgb_array")
    assert "rgb_array" in env.metadata["render_modes"] and env.metadata["render_fps"] > 0
    env.reset(seed=0)
    start = env.render()
    assert start.dtype == np.uint8 and start.shape == picture_shape(4)

    def agent_columns(image):
        return np.unique(np.nonzero((image == AGENT).all(axis=2))[1])

    def colour_count(image, colour):
        return int((image == colour).all(axis=2).sum())

    assert colour_count(start, ACTED) == colour_count(start, SLIPPED) == 0  # no action yet
    env.step(FORWARD)
    moved = env.render()
    assert agent_columns(moved).min() > agent_columns(start).max()  # the disc moved right
    assert colour_count(moved, ACTED) > 0 and colour_count(moved, SLIPPED) == 0

    def arrow_points_right(image, colour):
        # The arrow's tallest column is the base of its head, on the side it points to.
        mask = (image == colour).all(axis=2)
        columns = np.nonzero(mask.any(axis=0))[0]
        tallest = int(mask.sum(axis=0).argmax())
        return tallest > (columns.min() + columns.max()) / 2

    assert arrow_points_right(moved, ACTED)
    env.step(BACKWARD)
    back = env.render()
    assert not arrow_points_right(back, ACTED)

    slippery = NChainEnv(n=3, slip=1.0, render_mode="rgb_array")
    slippery.reset(seed=0)
    slippery.step(BACKWARD)  # always slips: FORWARD is carried out
    picture = slippery.render()
    assert colour_count(picture, SLIPPED) > 0 and colour_count(picture, ACTED) == 0
    assert arrow_points_right(picture, SLIPPED)


@pytest.mark.parametrize("n", [2, 5, 60, 400, 100_000])
def test_chains_of_any_length_render_at_a_bounded_width(n):
    from nchain_gym.rendering import AGENT, MAX_WIDTH

    env = NChainEnv(n=n, slip=0.0, render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert image.shape[1] <= MAX_WIDTH
    assert (image == AGENT).all(axis=2).any()  # the agent is always visible


def test_stable_baselines3_make_vec_env():
    """SB3's make_vec_env asks for render_mode="rgb_array"; its vec env must step and render."""
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env("NChain-v0", n_envs=2, seed=0)
    obs = venv.reset()
    assert obs.shape == (2,) and (obs == 0).all()
    obs, rewards, _dones, _infos = venv.step(np.array([FORWARD, FORWARD]))
    assert obs.shape == (2,) and rewards.shape == (2,)
    frames = venv.get_images()
    assert len(frames) == 2 and frames[0].ndim == 3 and frames[0].dtype == np.uint8
    venv.close()


@pytest.mark.parametrize(
    "counts",
    [[1], [1000, 1, 1499], [1024, 1024], [3, 2048, 5], [2, 0, 5000, 7], [3073, 1], [1023, 2]],
)
def test_slip_stream_take_is_next_repeated(counts):
    """Fused loops take slips in bulk (several blocks at once); they must be the very
    uniforms step() would use, and next() must go on from where take() stopped."""
    from nchain_gym import SlipStream

    one_by_one = SlipStream(np.random.default_rng(3))
    in_bulk = SlipStream(np.random.default_rng(3))
    expected = [one_by_one.next() for _ in range(sum(counts))]
    got = np.concatenate([in_bulk.take(c) for c in counts]).tolist()
    assert got == expected
    assert [in_bulk.next() for _ in range(1030)] == [one_by_one.next() for _ in range(1030)]
