"""The tournament as a library call."""

from __future__ import annotations

import json

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
    # With zero training episodes every table is zero: all greedy games are
    # always-FORWARD from the same game seed, so all totals tie within a trial.
    result = small(episodes=0)
    assert (result.totals == result.totals[:, :1]).all()
    assert result.wins.tolist() == [6, 0, 0]


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


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"agents": ["q-tabel"]}, UnknownAgentError, "did you mean 'q-table'"),
        ({"agents": []}, ValueError, "at least one agent"),
        ({"agents": ["q-table", "q-table"]}, ValueError, "once"),
        ({"trials": 0}, ValueError, "trials must be an integer >= 1, got 0"),
        ({"workers": 0}, ValueError, "workers must be an integer >= 1, got 0"),
        ({"episodes": -1}, ValueError, "episodes must be None or an integer >= 0, got -1"),
        ({"hyperparameters": {"keras": {}}}, ValueError, "not in the tournament"),
    ],
)
def test_bad_input(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        small(**kwargs)
