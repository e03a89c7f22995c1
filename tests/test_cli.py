"""The `nchain` command line, in-process and as the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from nchain_agents import evaluate, load, load_agent, tournament
from nchain_agents.cli import main
from nchain_gym import solve


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def read_png_shape(path):
    import matplotlib.image

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(path).shape


def test_agents_table_and_json(capsys):
    code, out, _ = run(capsys, "agents")
    assert code == 0
    for name in ("naive-sum", "q-table", "eps-greedy-q-table", "keras-dqn"):
        assert name in out
    code, out, _ = run(capsys, "agents", "--json")
    rows = json.loads(out)
    assert {row["name"] for row in rows} >= {"naive-sum", "keras-dqn"}
    assert all(row["distribution"] == "nchain-rl" for row in rows if row["error"] is None)


def test_train_saves_plots_and_matches_the_library(capsys, tmp_path):
    out_file, png = tmp_path / "q.zip", tmp_path / "q.png"
    code, out, _ = run(
        capsys, "train", "q-table", "--episodes", "7", "--seed", "3", "-o", str(out_file),
        "--plot", str(png), "--set", "learning_rate=0.5", "--json",
    )  # fmt: skip
    assert code == 0
    summary = json.loads(out)
    expected = load_agent("q-table", seed=3, learning_rate=0.5).learn(gym.make("NChain-v0"), 7)
    np.testing.assert_array_equal(summary["q_values"], expected.q_values())
    np.testing.assert_allclose(summary["q_star"], solve().q)
    assert summary["episodes"] == 7
    np.testing.assert_array_equal(load(out_file).q_values(), expected.q_values())
    height, width, _ = read_png_shape(png)
    assert (width, height) == (800, 450)


def test_train_table_output(capsys, tmp_path):
    code, out, _ = run(
        capsys, "train", "naive-sum", "--episodes", "3", "-o", str(tmp_path / "n.zip")
    )
    assert code == 0
    assert "learned Q beside exact Q*" in out
    assert "saved" in out


def test_train_refuses_to_overwrite(capsys, tmp_path):
    target = tmp_path / "keep.zip"
    target.write_bytes(b"precious")
    code, _, err = run(capsys, "train", "q-table", "--episodes", "1", "-o", str(target))
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "exists; pass --force" in err
    assert target.read_bytes() == b"precious"


def test_evaluate_matches_the_library(capsys, tmp_path):
    path = (
        load_agent("eps-greedy-q-table", seed=0)
        .learn(gym.make("NChain-v0"), 20)
        .save(tmp_path / "e.zip")
    )
    code, out, _ = run(capsys, "evaluate", str(path), "--episodes", "4", "--seed", "9", "--json")
    assert code == 0
    data = json.loads(out)
    expected = evaluate(load(path), gym.make("NChain-v0"), n_episodes=4, seed=9)
    assert data["returns"] == expected.returns.tolist()
    assert data["mean"] == pytest.approx(expected.mean)
    assert data["fraction_of_optimal"] == pytest.approx(expected.mean / 3663.6928, rel=1e-6)
    code, out, _ = run(capsys, "evaluate", str(path), "--episodes", "2")
    assert "% of the optimum 3663.7" in out


def test_compare_json_plot_reproducible(capsys, tmp_path):
    args = ["compare", "--trials", "4", "--episodes", "10", "--seed", "5", "--jobs", "2"]
    code, out, _ = run(
        capsys, *args, "--json", str(tmp_path / "a.json"), "--plot", str(tmp_path / "a.png")
    )
    assert code == 0
    assert "tournament: 4 trials" in out
    assert run(capsys, *args, "--json", str(tmp_path / "b.json"))[0] == 0
    first = json.loads((tmp_path / "a.json").read_text())
    assert first == json.loads((tmp_path / "b.json").read_text())
    expected = tournament(trials=4, episodes=10, seed=5).to_dict()
    assert first == json.loads(json.dumps(expected))
    height, width, _ = read_png_shape(tmp_path / "a.png")
    assert (width, height) == (1000, 450)


def test_compare_json_to_stdout_and_named_agents(capsys):
    code, out, _ = run(
        capsys, "compare", "random", "q-table", "--trials", "2", "--episodes", "3", "--json"
    )
    assert code == 0
    assert json.loads(out)["agents"] == ["random", "q-table"]


def test_compare_all_learners_in_one_tournament(capsys):
    """``--all`` is the four built-in learners; the table shows each one's share of the
    optimum and how often its greedy policy is optimal; the JSON is the library's."""
    args = ["compare", "--all", "--trials", "3", "--episodes", "2", "--seed", "4", "--json"]
    code, out, _ = run(capsys, *args)
    assert code == 0
    data = json.loads(out)
    assert data["agents"] == ["naive-sum", "q-table", "eps-greedy-q-table", "keras-dqn"]
    expected = tournament(data["agents"], trials=3, episodes=2, seed=4).to_dict()
    assert data == json.loads(json.dumps(expected))
    for row in data["results"]:
        assert row["fraction_of_optimum"] == pytest.approx(row["mean_total"] / data["optimum"])
        assert 0 <= row["optimal_policy_share"] <= 1
    code, out, _ = run(capsys, *args[:-1], "--batch-size", "1")
    assert code == 0
    assert "keras-dqn" in out and "optimum" in out and "optimal policy: share of trials" in out


def test_solve(capsys):
    code, out, _ = run(capsys, "solve", "--json")
    assert code == 0
    data = json.loads(out)
    np.testing.assert_allclose(data["q_star"], solve().q)
    assert data["optimal_expected_return"] == pytest.approx(3663.7, abs=0.1)
    assert data["policy"] == ["FORWARD"] * 5
    code, out, _ = run(capsys, "solve", "--n", "3", "--slip", "0")
    assert "expected 1000-step return" in out


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["train", "kersa-dqn"], "unknown agent 'kersa-dqn'; did you mean 'keras-dqn'?"),
        (["train", "q-table", "--set", "gama=0.9"], "'gama': did you mean 'gamma'?"),
        (["train", "q-table", "--set", "gamma=2"], r"gamma must be in \[0, 1\], got 2.0"),
        (["train", "q-table", "--set", "gamma"], "--set takes key=value"),
        (
            ["train", "q-table", "--env", "NChian-v0"],
            "cannot make env 'NChian-v0'.*did you mean 'NChain-v0'",
        ),
        (["evaluate", "/nonexistent/agent.zip"], "no such file"),
        (["compare", "--trials", "0"], "expected a number >= 1, got 0"),
        (["compare", "naive-sum", "bogus"], "unknown agent 'bogus'"),
        (["solve", "--slip", "1.5"], r"slip must be a probability in \[0, 1\], got 1.5"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line(capsys, tmp_path, monkeypatch, argv, pattern):
    import re

    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    _, err = capsys.readouterr()
    assert code == 2
    assert re.search(pattern, err), err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_unreadable_file(capsys, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_text("not a zip")
    code, _, err = run(capsys, "evaluate", str(bad))
    assert code == 2
    assert "not a zip archive" in err


def test_ctrl_c_leaves_outputs_intact(capsys, tmp_path, monkeypatch):
    import nchain_agents

    target = tmp_path / "out.json"
    target.write_text('{"old": true}')

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nchain_agents, "tournament", interrupted)
    code, _, err = run(capsys, "compare", "--json", str(target), "--force")
    assert code == 130
    assert "interrupted" in err
    assert target.read_text() == '{"old": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_console_script_and_light_start_up(tmp_path):
    exe = shutil.which("nchain")
    assert exe is not None, "the nchain console script is not installed"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "examples:" in out
    code = "import sys\nfrom nchain_agents.cli import main\nmain(['agents'])\nprint('tensorflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_one_sided_tournament_plots_and_keeps_its_json(capsys, tmp_path):
    """eps-greedy wins every trial against random: a share of exactly 1 plots fine."""
    png, js = tmp_path / "x.png", tmp_path / "x.json"
    code, _out, err = run(
        capsys, "compare", "random", "eps-greedy-q-table", "--trials", "5",
        "--plot", str(png), "--json", str(js),
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(js.read_text())
    assert [row["wins"] for row in data["results"]] == [0, 5]
    assert read_png_shape(png)[:2] == (450, 1000)


def test_a_failing_output_loses_no_other_and_exits_1(capsys, tmp_path, monkeypatch):
    """An internal error while plotting is a bug, not bad input: the JSON and the table
    still come out, the failure is reported, and the exit status is 1 (not 2)."""
    import nchain_agents.experiments.plots

    def broken_plot(*args, **kwargs):
        raise RuntimeError("matplotlib fell over")

    monkeypatch.setattr(nchain_agents.experiments.plots, "plot_tournament", broken_plot)
    js = tmp_path / "kept.json"
    code, out, err = run(
        capsys, "compare", "--trials", "2", "--episodes", "2", "--plot", str(tmp_path / "p.png"),
        "--json", str(js),
    )  # fmt: skip
    assert code == 1
    assert json.loads(js.read_text())["trials"] == 2
    assert "tournament: 2 trials" in out
    assert "could not write" in err and "matplotlib fell over" in err
    assert not (tmp_path / "p.png").exists()


def test_sweep_rows_stay_distinguishable_at_80_columns(capsys):
    from nchain_agents import sweep
    from nchain_agents.cli.render import print_sweep

    result = sweep(
        ["q-table", "eps-greedy-q-table"], grid={"learning_rate": [0.5, 0.8]},
        env_grid={"slip": [0.1, 0.2]}, trials=1, episodes=1,
    )  # fmt: skip
    capsys.readouterr()
    print_sweep(result, width=80)
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out  # nothing cut
    body = [line for line in out.splitlines() if line.startswith("│")]
    # Every cell's row shows its learning rate and slip in full (names may fold onto a
    # second line; values never do), so the 8 rows are the 8 combinations.
    settings = []
    for line in body:
        cells = [c.strip() for c in line.strip("│").split("│")]
        if cells[1]:
            settings.append((cells[1], cells[2]))
    assert sorted(settings) == sorted(
        (lr, slip) for lr in ("0.5", "0.8") for slip in ("0.1", "0.2") for _ in range(2)
    )


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["train", "q-table", "--set", "seed=5"], "set the seed with --seed"),
        (["train", "q-table", "--set", "learning_rate=" + "9" * 400], "too long"),
        (["train", "q-table", "--set", "learning_rate=" + "9" * 150], "learning_rate must be in (0, 1]"),
        (["train", "q-table", "--set", "gamma=" + "[" * 50_000], "too long"),
        (["train", "q-table", "--set", "gamma=[[[[1]]]]"], "not a container"),
        (["train", "q-table", "--env", "nosuchmodule:Foo-v0"], "cannot make env 'nosuchmodule:Foo-v0'"),
        (["evaluate", "x.zip", "--seed", "-1"], "expected a number >= 0, got -1"),
        (["compare", "--env", "CartPole-v1", "--trials", "1"], "observation space must be gymnasium.spaces.Discrete"),
        (["compare", "--jobs", "2000"], "expected a number <= 64, got 2000"),
        (["compare", "--timeout", "-3"], "expected seconds > 0"),
        (["solve", "--horizon", str(10**13)], "expected a number <= 1000000000000"),
        (["solve", "--n", "1"], "expected a number >= 2"),
        (["train", "q-table", "--episodes", "1", "-o", "under/a/file/x.zip"], "is a file, not a directory"),
        (["train", "q-table", "--episodes", "1", "-o", "y" * 300 + ".zip"], "name is too long"),
        (["train", "q-table", "--episodes", "1", "-o", "exists"], "exists.zip exists; pass --force"),
        (["train", "q-table", "--episodes", "1", "--json", "exists.zip"], "exists.zip exists; pass --force"),
        (["compare", "--trials", "1", "--plot", "exists.zip"], "exists.zip exists; pass --force"),
        (["compare", "--all", "q-table"], "give agent names or --all, not both"),
        (["compare", "--batch-size", "0"], "expected a number >= 1, got 0"),
    ],
)  # fmt: skip
def test_more_bad_input_is_one_line(capsys, tmp_path, monkeypatch, argv, pattern):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "under").write_text("a file where a directory should be")
    (tmp_path / "exists.zip").write_bytes(b"precious")
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    _, err = capsys.readouterr()
    assert code == 2, err
    assert pattern in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert (tmp_path / "exists.zip").read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.zip", "under"]


@pytest.mark.parametrize("name", ["b[/].zip", "d[bold red]x.zip"])
def test_markup_in_file_names_is_printed_as_is(capsys, tmp_path, name):
    target = tmp_path / name
    code, out, err = run(capsys, "train", "q-table", "--episodes", "2", "-o", str(target),
                         "--json", str(tmp_path / "s[/].json"))  # fmt: skip
    assert code == 0, err
    assert target.exists()
    assert name in out.replace("\n", "") and "s[/].json" in err


def test_evaluate_refuses_mismatched_spaces(capsys, tmp_path):
    path = (
        load_agent("q-table", seed=0).learn(gym.make("FrozenLake-v1"), 2).save(tmp_path / "f.zip")
    )
    code, _, err = run(capsys, "evaluate", str(path))
    assert code == 2
    assert "built for Discrete(16)" in err and "Discrete(5)" in err


def test_evaluate_refuses_an_env_that_never_ends():
    from nchain_gym import NChainEnv

    agent = load_agent("q-table", seed=0).learn(gym.make("NChain-v0", max_episode_steps=5), 1)
    with pytest.raises(ValueError, match="never ends an episode"):
        evaluate(agent, NChainEnv(), n_episodes=1)


@pytest.mark.parametrize("target", ["/dev/full", "closed"])
def test_unwritable_stdout_is_one_line(tmp_path, target):
    """`nchain solve --json` with stdout on a full device or closed: exit 2, one line."""
    redirect = ">/dev/full" if target == "/dev/full" else ">&-"
    command = f"\"{sys.executable}\" -c \"from nchain_agents.cli import main; import sys; sys.exit(main(['solve', '--json']))\" {redirect}"
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr


def test_ctrl_c_stops_a_running_compare_quickly(tmp_path):
    """SIGINT while a long trial runs: exit 130 within a few seconds, no output file.
    Each trial trains 20,000 episodes (about 0.4 s of compiled work per agent and trial,
    400 trials); before, Ctrl-C printed "interrupted" and then waited for the pool."""
    import signal
    import time

    target = tmp_path / "out.json"
    process = subprocess.Popen(
        # A terminal's Ctrl-C: the default handler (a shell may start us with SIGINT
        # ignored, as non-interactive shells do for background jobs).
        [sys.executable, "-c", "import signal, sys; "
         "signal.signal(signal.SIGINT, signal.default_int_handler); "
         "from nchain_agents.cli import main; sys.exit(main(sys.argv[1:]))",
         "compare", "--trials", "400", "--episodes", "20000",
         "--jobs", "2", "--json", str(target)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    time.sleep(4)
    assert process.poll() is None, process.communicate()
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert time.monotonic() - sent < 5
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_huge_numbers_are_hyperparameter_errors():
    from nchain_agents import HyperparameterError

    with pytest.raises(HyperparameterError, match="learning_rate must be a finite number"):
        load_agent("q-table", learning_rate=10**400)
    with pytest.raises(HyperparameterError, match=r"hidden_units must be in \[1, 4096\], got 1000"):
        load_agent("keras-dqn", hidden_units=10**400)
