"""The tournament as a library call."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from nchain_agents import UnknownAgentError, tournament


def small(**kwargs):
    return tournament(**({"trials": 6, "episodes": 20, "seed": 3} | kwargs))


def test_result_shape_and_summary():
    result = small()
    assert result.agents == ("naive-sum", "q-table", "eps-greedy-q-table")
    assert result.totals.shape == (6, 3)
    assert result.wins.sum() == 6
    np.testing.assert_array_equal(
        result.wins, np.bincount(result.totals.argmax(axis=1), minlength=3)
    )
    low, high = result.total_intervals().T
    assert (low <= result.mean_totals).all() and (result.mean_totals <= high).all()
    assert result.optimum == pytest.approx(3663.69, abs=0.01)
    np.testing.assert_allclose(result.regrets, result.optimum - result.mean_totals)
    data = json.loads(json.dumps(result.to_dict()))
    assert [row["wins"] for row in data["results"]] == result.wins.tolist()


def test_ties_go_to_the_earlier_agent():
    # With zero training episodes every table is zero, so every greedy game is
    # always-FORWARD; with common random numbers all games of a trial meet the same
    # slips, so all totals tie within a trial and the first agent wins them all.
    result = small(episodes=0, common_random_numbers=True)
    assert (result.totals == result.totals[:, :1]).all()
    assert result.wins.tolist() == [6, 0, 0]


def test_each_agent_meets_its_own_slips():
    """The tutorial's games run one after another on one env: same policy, other slips.

    Zero-episode agents all play always-FORWARD. Two independent 1000-step games of it
    have totals with a standard deviation of about 150 (measured), so two games tie
    exactly in well under 1 % of trials; over 20 trials, more than two trials with a
    three-way tie would be a near-impossible event unless the slips were shared.
    """
    result = small(episodes=0, trials=20)
    all_tied = (result.totals == result.totals[:, :1]).all(axis=1)
    assert all_tied.sum() <= 2
    # The first game is the trial's game env seeded once; the next ones continue its
    # stream: replaying that by hand gives the same totals.
    import gymnasium as gym

    from nchain_agents import evaluate, load_agent
    from nchain_agents.experiments.trials import trial_seeds

    agent_seeds, game_seed = trial_seeds(3, 20, 3)[0]
    env = gym.make("NChain-v0")
    agents = [load_agent(n, seed=s) for n, s in zip(result.agents, agent_seeds, strict=True)]
    expected = []
    for i, agent in enumerate(agents):
        agent.learn(gym.make("NChain-v0"), 0)
        expected.append(evaluate(agent, env, 1, seed=game_seed if i == 0 else None).mean)
    assert result.totals[0].tolist() == expected


def test_same_seed_same_result_any_workers():
    a = small(workers=1)
    b = small(workers=2)
    np.testing.assert_array_equal(a.totals, b.totals)
    assert not np.array_equal(a.totals, small(seed=4).totals)


def test_progress_is_reported():
    seen = []
    small(trials=3, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_any_registered_agent_can_take_part():
    result = small(agents=["random", "q-table"], trials=2)
    assert result.agents == ("random", "q-table")


def test_hyperparameters_per_agent():
    a = small(agents=["q-table"], hyperparameters={"q-table": {"update_rule": "tutorial"}})
    b = small(agents=["q-table"])
    np.testing.assert_array_equal(a.totals, b.totals)  # same decisions, same games


@pytest.mark.slow
def test_long_run_matches_the_tutorials_experiment():
    """1,000 trials against the pooled reference (8,400 trials from three independent
    implementations of the tutorial): shares 14.5 / 16.5 / 69.1 % (+-0.5), top-score
    ties in about 0.25 % of trials.

    Shares: 4 binomial standard deviations at n = 1000, 4 * sqrt(p (1 - p) / 1000) =
    4.5 / 4.7 / 5.8 points, plus the reference's own 0.5. Ties: expected 2.5 in 1,000
    trials; we allow at most 12 (Poisson(2.5): P(X >= 13) ~ 1e-6). Giving every agent
    of a trial the same slips, the mistake this guards against, tied in 5.6 % of
    trials: ~56 expected, so it cannot pass.
    """
    result = tournament(trials=1000, seed=2026, workers=2)
    for share, p in zip(result.shares, (0.145, 0.165, 0.691), strict=True):
        assert abs(share - p) <= 4 * np.sqrt(p * (1 - p) / 1000) + 0.005, result.shares
    top = result.totals.max(axis=1, keepdims=True)
    ties = int(((result.totals == top).sum(axis=1) > 1).sum())
    assert ties <= 12, ties


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"agents": ["q-tabel"]}, UnknownAgentError, "did you mean 'q-table'"),
        ({"agents": []}, ValueError, "at least one agent"),
        ({"agents": ["q-table", "q-table"]}, ValueError, "once"),
        ({"trials": 0}, ValueError, "trials must be an integer >= 1, got 0"),
        ({"workers": 0}, ValueError, "workers must be an integer from 1 to 64, got 0"),
        ({"episodes": -1}, ValueError, "episodes must be None or an integer >= 0, got -1"),
        ({"hyperparameters": {"keras": {}}}, ValueError, "not in the tournament"),
    ],
)
def test_bad_input(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        small(**kwargs)


def test_batched_and_one_at_a_time_tournaments_agree():
    """keras-dqn trials trained in one batch, in two batches (two workers), capped
    batches, and one at a time (one trial per job) give the same games, bit for bit."""
    kwargs = {
        "agents": ("q-table", "keras-dqn"), "trials": 5, "episodes": 3, "seed": 5,
        "env_kwargs": {"max_episode_steps": 60},
    }  # fmt: skip
    one_batch = tournament(**kwargs)
    assert one_batch.optimal_policies is not None and one_batch.optimal_policies.shape == (5, 2)
    for other in (
        tournament(**kwargs, workers=2),
        tournament(**kwargs, batch_size=2),
        tournament(**kwargs, trials_per_task=1),
    ):
        np.testing.assert_array_equal(other.totals, one_batch.totals)
        np.testing.assert_array_equal(other.optimal_policies, one_batch.optimal_policies)


def test_optimal_policy_flags_follow_the_greedy_policies():
    """A trial's flag is set exactly when the agent's greedy policy earns the optimum:
    on the default chain that is 'forward everywhere'; naive-sum, which locks into
    backward at state 0, is never optimal with the tutorial's budget."""
    from nchain_agents import load_agent
    from nchain_agents.experiments.trials import trial_seeds
    from nchain_gym import solve

    result = tournament(("naive-sum", "eps-greedy-q-table"), trials=6, seed=2)
    seeds = trial_seeds(2, 6, 2)
    optimal = solve().policy
    for t, (agent_seeds, _) in enumerate(seeds):
        for j, name in enumerate(result.agents):
            agent = load_agent(name, seed=agent_seeds[j]).learn(gym.make("NChain-v0"))
            greedy = agent.predict(np.arange(5), deterministic=True)[0]
            assert result.optimal_policies[t, j] == np.array_equal(greedy, optimal)
    assert not result.optimal_policies[:, 0].any()
    assert result.optimal_policy_shares[1] == result.optimal_policies[:, 1].mean()
