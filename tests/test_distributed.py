"""Tournaments and sweeps on Ray (a local Ray started here) and on the local backend."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import write_distribution
from nchain_agents import sweep, tournament
from nchain_agents.cli import main
from nchain_agents.registry import default_registry

PLUGIN_DIR = Path(__file__).parent / "plugins"


@pytest.fixture(scope="module")
def test_agents():
    """The failing test agents, in this process and (by entry point) in Ray's workers."""
    if str(PLUGIN_DIR) not in sys.path:
        sys.path.insert(0, str(PLUGIN_DIR))
    import nchain_test_agents  # noqa: F401

    registry = default_registry()
    registry.add_plugin(sys.modules["nchain_test_agents"], name="test-agents", distribution="tests")
    yield
    registry.remove_plugin("test-agents")


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A local Ray (2 CPUs, no dashboard) whose workers can import the test plugin."""
    import ray  # part of the test extra: a missing Ray must fail loudly, not skip

    site = write_distribution(
        tmp_path_factory.mktemp("site"),
        "nchain-test-agents",
        "0.0",
        {"test": "nchain_test_agents"},
        {},
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("PYTHONPATH", f"{site}:{PLUGIN_DIR}")
    mp.syspath_prepend(str(PLUGIN_DIR))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    mp.undo()


@pytest.mark.slow
def test_ray_tournament_equals_local(local_ray):
    local = tournament(trials=12, episodes=40, seed=11, workers=2)
    remote = tournament(trials=12, episodes=40, seed=11, backend="ray", trials_per_task=5)
    np.testing.assert_array_equal(local.totals, remote.totals)
    assert local.to_dict() == remote.to_dict()


@pytest.mark.slow
def test_ray_tasks_train_keras_batches_like_local(local_ray):
    """A Ray task takes a batch of trials and trains its keras-dqn agents together; the
    games equal the local run's (one batch per worker) bit for bit."""
    kwargs = {
        "agents": ("q-table", "keras-dqn"), "trials": 6, "episodes": 2, "seed": 3,
        "env_kwargs": {"max_episode_steps": 50},
    }  # fmt: skip
    local = tournament(**kwargs, workers=2)
    remote = tournament(**kwargs, backend="ray", trials_per_task=3)
    assert local.to_dict() == remote.to_dict()


SWEEP = {
    "agents": ["q-table", "eps-greedy-q-table"],
    "grid": {"learning_rate": [0.5, 0.8], "epsilon": [0.3]},
    "env_grid": {"slip": [0.1, 0.2]},
    "seeds": [0, 1],
    "trials": 3,
    "episodes": 20,
}


@pytest.mark.slow
def test_ray_sweep_matches_local_schema_and_values(local_ray):
    local = sweep(**SWEEP)
    remote = sweep(**SWEEP, backend="ray")
    # q-table: 2 lr x 2 slips x 2 seeds; eps-greedy adds its own epsilon key (1 value).
    assert len(local.rows) == 16
    assert remote.rows == local.rows
    row = remote.rows[-1].to_dict()
    assert set(row) == {
        "agent", "hyperparameters", "env_id", "env_kwargs", "seed", "trials", "episodes",
        "status", "error", "mean_total", "mean_total_ci95", "optimum", "regret",
        "fraction_of_optimum", "totals",
    }  # fmt: skip
    assert row["hyperparameters"] == {"epsilon": 0.3, "learning_rate": 0.8}
    assert local.rows[0].hyperparameters == {"learning_rate": 0.5}


@pytest.mark.slow
def test_ray_failing_cell_is_reported_and_others_finish(local_ray, test_agents):
    result = sweep(
        ["random", "failing-agent"], grid={"fail": [True, False]}, trials=2, episodes=1,
        backend="ray", max_retries=1,
    )  # fmt: skip
    by_key = {(r.agent, r.hyperparameters.get("fail")): r for r in result.rows}
    assert len(result.rows) == 3
    failed = by_key[("failing-agent", True)]
    assert failed.status == "failed"
    assert "deliberate failure" in failed.error
    assert failed.attempts == 2
    assert by_key[("failing-agent", False)].status == "ok"
    assert by_key[("random", None)].status == "ok"


@pytest.mark.slow
def test_ray_survives_a_killed_worker(local_ray, test_agents, tmp_path):
    marker = tmp_path / "first-attempt"
    result = sweep(
        ["process-killer"], grid={"marker": [str(marker)]}, trials=1, episodes=1,
        backend="ray", max_retries=2,
    )  # fmt: skip
    assert marker.exists()  # the first attempt did end its worker process
    assert [row.status for row in result.rows] == ["ok"]


def test_local_sweep_reports_failures_and_continues(test_agents):
    result = sweep(
        ["failing-agent"], grid={"fail": [False, True]}, trials=2, episodes=2, max_retries=1
    )
    assert [row.status for row in result.rows] == ["ok", "failed"]
    assert "deliberate failure in learn()" in result.rows[1].error
    assert result.rows[1].attempts == 2


def test_bad_cell_values_are_refused_before_the_sweep_starts():
    from nchain_agents import HyperparameterError, InvalidArgumentError

    with pytest.raises(
        InvalidArgumentError, match=r"slip must be a probability in \[0, 1\], got 1.5"
    ):
        sweep(["q-table"], env_grid={"slip": [0.2, 1.5]}, trials=2, episodes=2)
    with pytest.raises(HyperparameterError, match="learning_rate must be float, got 'abc'"):
        sweep(["q-table"], grid={"learning_rate": [0.5, "abc"]}, trials=2, episodes=2)
    with pytest.raises(InvalidArgumentError, match="n must be an integer >= 2"):
        sweep(["q-table"], env_grid={"n": [1]}, trials=2, episodes=2)


def test_sweep_rejects_unknown_grid_names():
    with pytest.raises(ValueError, match=r"no agent in the sweep has hyperparameter\(s\) \['lr'\]"):
        sweep(["q-table"], grid={"lr": [0.1]})


def test_cli_sweep_json_config_and_exit_code(capsys, tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text(
        'agents = ["q-table"]\ntrials = 2\nepisodes = 3\n[env_grid]\nslip = [0.1, 0.2]\n'
    )
    code = main(["sweep", "--config", str(config), "--seeds", "4", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    data = json.loads(out)
    assert [row["env_kwargs"] for row in data["rows"]] == [{"slip": 0.1}, {"slip": 0.2}]
    expected = sweep(["q-table"], env_grid={"slip": [0.1, 0.2]}, seeds=[4], trials=2, episodes=3)
    assert data == json.loads(json.dumps(expected.to_dict()))
    code = main(
        ["sweep", "q-table", "--env-grid", "slip=0.2,7", "--trials", "1", "--episodes", "1"]
    )
    _, err = capsys.readouterr()
    assert code == 2  # bad input, refused before any cell ran
    assert "slip must be a probability in [0, 1], got 7" in err


def test_cli_sweep_exits_1_when_a_cell_fails(capsys, test_agents):
    code = main(["sweep", "failing-agent", "--trials", "1", "--episodes", "1", "--retries", "0"])
    out, _ = capsys.readouterr()
    assert code == 1
    assert "1 failed" in out


def test_missing_ray_names_the_extra(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code = main(["compare", "--backend", "ray", "--trials", "1", "--episodes", "1"])
    _, err = capsys.readouterr()
    assert code == 2
    assert 'pip install "nchain-rl[ray]"' in err


@pytest.mark.slow
def test_ray_is_quiet_by_default(tmp_path):
    """A local Ray started for a command prints no warning or info lines of its own."""
    import subprocess

    code = (
        "import sys\nfrom nchain_agents.cli import main\n"
        "sys.exit(main(['compare', '--backend', 'ray', '--trials', '2', '--episodes', '1',"
        " '--json', 'out.json']))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert out.returncode == 0, out.stderr
    noise = [line for line in out.stderr.splitlines() if " WARNING " in line or " INFO " in line]
    assert noise == [], out.stderr


def test_local_timeout_reports_a_stuck_cell_and_finishes_the_rest(test_agents):
    import time

    start = time.monotonic()
    result = sweep(
        ["sleepy-agent"], grid={"sleep": [0.0, 30.0]}, trials=1, episodes=1, timeout=1.0,
        workers=2, max_retries=0,
    )  # fmt: skip
    assert time.monotonic() - start < 10
    by_sleep = {row.hyperparameters["sleep"]: row for row in result.rows}
    assert by_sleep[0.0].status == "ok"
    assert by_sleep[30.0].status == "failed"
    assert "timed out after 1 s" in by_sleep[30.0].error


@pytest.mark.slow
def test_ray_timeout_reports_a_stuck_cell(local_ray, test_agents):
    result = sweep(
        ["sleepy-agent"], grid={"sleep": [0.0, 60.0]}, trials=1, episodes=1, timeout=5.0,
        backend="ray", max_retries=0,
    )  # fmt: skip
    statuses = {row.hyperparameters["sleep"]: row.status for row in result.rows}
    assert statuses == {0.0: "ok", 60.0: "failed"}


def test_bad_run_settings_are_refused_up_front():
    from nchain_agents import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="workers must be an integer from 1 to 64"):
        tournament(trials=1, workers=2000)
    with pytest.raises(
        InvalidArgumentError, match="trials_per_task must be None or an integer >= 1"
    ):
        tournament(trials=3, trials_per_task=-1)
    with pytest.raises(InvalidArgumentError, match="sets 'seed'"):
        tournament(agents=["q-table"], trials=1, hyperparameters={"q-table": {"seed": 3}})
    with pytest.raises(InvalidArgumentError, match="timeout must be None or seconds > 0"):
        sweep(["q-table"], timeout=0)
    with pytest.raises(InvalidArgumentError, match="seeds must be distinct integers >= 0"):
        sweep(["q-table"], seeds=[1.5, True])
    with pytest.raises(InvalidArgumentError, match="seeds must be a non-empty list"):
        sweep(["q-table"], seeds=[])
    with pytest.raises(InvalidArgumentError, match="agents must be a non-empty list"):
        sweep("q-table")


@pytest.mark.parametrize(
    ("toml", "pattern"),
    [
        ("grid = 5\n", "grid must be a table"),
        ("env_grid = [1, 2]\n", "env_grid must be a table"),
        ("seeds = []\n", "seeds must be a non-empty list"),
        ("seeds = [1.5, true]\n", "seeds must be a non-empty list of distinct whole numbers"),
        ('agents = "q-table"\n', "agents must be a non-empty list of agent names"),
        ("trials = 0\n", "trials must be a whole number >= 1"),
        (
            "[grid]\nlearning_rate = [[0.5]]\n",
            "grid.learning_rate must be a value or a non-empty list",
        ),
        ('[grid]\nlearning_rate = ["abc"]\n', "learning_rate must be float, got 'abc'"),
        ("[env_grid]\nn = [1]\n", "n must be an integer >= 2"),
    ],
)
def test_strict_sweep_config(capsys, tmp_path, toml, pattern):
    config = tmp_path / "sweep.toml"
    config.write_text(('agents = ["q-table"]\n' if "agents" not in toml else "") + toml)
    code = main(["sweep", "--config", str(config), "--trials", "1", "--episodes", "1"])
    _, err = capsys.readouterr()
    assert code == 2, err
    assert pattern in err, err
    assert len(err.strip().splitlines()) == 1
