"""Saved files: round trips for every agent, hostile files, atomic saves."""

from __future__ import annotations

import io
import json
import zipfile

import gymnasium as gym
import numpy as np
import pytest

import nchain_agents
from helpers import rewrite
from nchain_agents import AgentFileError, list_agents, load, load_agent
from nchain_agents.archive import FORMAT_VERSION

AGENTS = [row.name for row in list_agents(include_broken=False)]


def short_env():
    return gym.make("NChain-v0", max_episode_steps=50)


@pytest.fixture(scope="module")
def saved_q_file(tmp_path_factory):
    """A trained agent with a non-empty table, saved once for the hostile-file tests."""
    path = tmp_path_factory.mktemp("saved") / "agent.zip"
    agent = load_agent(AGENTS[0], seed=1).learn(short_env(), episodes=3)
    agent.save(path)
    return path


@pytest.mark.parametrize("name", AGENTS)
def test_round_trip_every_agent(name, tmp_path):
    agent = load_agent(name, seed=3).learn(short_env(), episodes=2)
    path = agent.save(tmp_path / "agent")
    assert path.name == "agent.zip"
    same = load(path)
    assert type(same) is type(agent)
    assert same.get_hyperparameters() == agent.get_hyperparameters()
    assert same.history == agent.history
    np.testing.assert_array_equal(same.q_values(), agent.q_values())
    obs = np.arange(agent.n_states)
    np.testing.assert_array_equal(
        same.predict(obs, deterministic=True)[0], agent.predict(obs, deterministic=True)[0]
    )
    # The file says what it holds.
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["agent"] == name
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["spaces"]["observation"] == {"type": "Discrete", "n": 5, "start": 0}
    assert manifest["training"]["episodes"] == 2


def test_untrained_round_trip(tmp_path):
    path = load_agent("random", seed=4).save(tmp_path / "u.zip")
    again = load(path)
    assert not again.is_trained
    assert again.seed == 4


def test_class_load_checks_the_type(tmp_path, saved_q_file):
    from nchain_agents.default_plugins.random_agent import RandomAgent

    agent = load(saved_q_file)
    assert type(agent).load(saved_q_file).get_hyperparameters() == agent.get_hyperparameters()
    with pytest.raises(AgentFileError, match=r"holds a '.*' agent, not a 'random'"):
        RandomAgent.load(saved_q_file)
    with pytest.raises(TypeError, match=r"use nchain_agents.load\(path\)"):
        nchain_agents.Agent.load(saved_q_file)


def test_pickled_npy_is_refused_and_not_run(tmp_path, saved_q_file):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    buffer = io.BytesIO()
    np.save(buffer, np.array([Evil()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(saved_q_file) as archive:
        name = next(n for n in archive.namelist() if n.startswith("arrays/history.reward"))
    bad = rewrite(saved_q_file, tmp_path / "bad.zip", replace={name: buffer.getvalue()})
    with pytest.raises(AgentFileError, match="cannot be read without pickle"):
        load(bad)
    assert not marker.exists()


def test_path_traversal_entry_is_refused(tmp_path, saved_q_file):
    bad = rewrite(saved_q_file, tmp_path / "bad.zip", add={"../escape.txt": b"x"})
    with pytest.raises(AgentFileError, match=r"unexpected entries \['../escape.txt'\]"):
        load(bad)
    assert not (tmp_path.parent / "escape.txt").exists()
    bad2 = rewrite(
        saved_q_file,
        tmp_path / "bad2.zip",
        manifest=lambda m: m | {"files": {"../../x": {"size": 1}}},
        add={"files/../../x": b"x"},
    )
    with pytest.raises(AgentFileError, match="not a plain file name"):
        load(bad2)


def test_huge_declared_size_is_refused(tmp_path, saved_q_file):
    """A central directory claiming a 2 GiB manifest is refused before reading it."""
    data = bytearray(saved_q_file.read_bytes())
    index = data.find(b"PK\x01\x02")  # central directory records
    patched = 0
    while index >= 0:
        name_len = int.from_bytes(data[index + 28 : index + 30], "little")
        if bytes(data[index + 46 : index + 46 + name_len]) == b"manifest.json":
            data[index + 24 : index + 28] = (2**31).to_bytes(4, "little")  # uncompressed size
            patched += 1
        index = data.find(b"PK\x01\x02", index + 4)
    assert patched == 1
    bad = tmp_path / "huge.zip"
    bad.write_bytes(bytes(data))
    with pytest.raises(AgentFileError, match="declares"):
        load(bad)


def test_truncated_zip(tmp_path, saved_q_file):
    data = saved_q_file.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 10):
        bad = tmp_path / f"cut{cut}.zip"
        bad.write_bytes(data[:cut])
        with pytest.raises(AgentFileError, match=r"not a zip archive|damaged|truncated"):
            load(bad)


def test_future_format_version(tmp_path, saved_q_file):
    bad = rewrite(saved_q_file, tmp_path / "new.zip", manifest=lambda m: m | {"format_version": 99})
    with pytest.raises(AgentFileError, match=r"format version 99 is newer.*upgrade"):
        load(bad)


def test_agent_not_installed(tmp_path, saved_q_file):
    bad = rewrite(
        saved_q_file,
        tmp_path / "missing.zip",
        manifest=lambda m: (
            m
            | {
                "agent": "fancy-agent",
                "distribution": "nchain-fancy",
                "distribution_version": "2.0",
            }
        ),
    )
    with pytest.raises(
        AgentFileError, match=r"'fancy-agent' .*nchain-fancy 2.0.*pip install nchain-fancy"
    ):
        load(bad)


def test_wrong_array_shape(tmp_path):
    agent = load_agent("random", seed=0).learn(short_env(), episodes=1)
    path = agent.save(tmp_path / "a.zip")
    bad = rewrite(
        path,
        tmp_path / "shape.zip",
        manifest=lambda m: (
            m
            | {
                "spaces": {
                    "observation": {"type": "Discrete", "n": 7},
                    "action": m["spaces"]["action"],
                }
            }
        ),
    )
    # Random agent stores no table, so spaces alone are fine; history shape must still match.
    assert load(bad).n_states == 7
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((2, 2)))
    bad2 = rewrite(
        path, tmp_path / "shape2.zip", replace={"arrays/history.reward.npy": buffer.getvalue()}
    )
    with pytest.raises(AgentFileError, match=r"history.reward.*shape"):
        load(bad2)


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda m: m | {"format": "something-else"}, "not an nchain agent file"),
        (lambda m: m | {"hyperparameters": {"nope": 1}}, "hyperparameters do not fit"),
        (lambda m: m | {"seed": "abc"}, "'seed' must be a non-negative integer"),
        (lambda m: m | {"arrays": []}, "'arrays' is missing or not a dict"),
    ],
)
def test_bad_manifests(tmp_path, saved_q_file, change, pattern):
    with pytest.raises(AgentFileError, match=pattern):
        load(rewrite(saved_q_file, tmp_path / "bad.zip", manifest=change))


def test_foreign_files(tmp_path):
    (tmp_path / "text.zip").write_text("hello")
    with pytest.raises(AgentFileError, match="not a zip archive"):
        load(tmp_path / "text.zip")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "hi")
    with pytest.raises(AgentFileError, match=r"no manifest.json"):
        load(tmp_path / "other.zip")
    with pytest.raises(AgentFileError, match="no such file"):
        load(tmp_path / "absent.zip")
    with pytest.raises(AgentFileError, match="is a directory"):
        load(tmp_path)


def test_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.zip"
    first = load_agent("random", seed=1).learn(short_env(), episodes=2)
    first.save(path)
    before = path.read_bytes()

    second = load_agent("random", seed=2).learn(short_env(), episodes=5)
    real_writestr = zipfile.ZipFile.writestr
    calls = {"n": 0}

    def failing_writestr(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full (simulated)")
        return real_writestr(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing_writestr)
    with pytest.raises(OSError, match="simulated"):
        second.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.zip"]
    assert len(load(path).history) == 2


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_respect_the_umask(tmp_path, umask, mode):
    import os

    from nchain_agents.archive import atomic_write

    agent = load_agent("random", seed=0).learn(short_env(), episodes=1)
    old = os.umask(umask)
    try:
        saved = agent.save(tmp_path / "a.zip")
        text = atomic_write(tmp_path / "b.json", lambda handle: handle.write(b"{}"))
    finally:
        os.umask(old)
    assert saved.stat().st_mode & 0o777 == mode
    assert text.stat().st_mode & 0o777 == mode


def test_replaced_file_keeps_its_mode(tmp_path):
    import os

    path = tmp_path / "keep.zip"
    load_agent("random", seed=0).learn(short_env(), episodes=1).save(path)
    os.chmod(path, 0o640)
    old = os.umask(0o077)
    try:
        load_agent("random", seed=1).learn(short_env(), episodes=2).save(path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640
    assert len(load(path).history) == 2


def test_excluded_plugin_is_named_as_excluded(tmp_path, fake_site, monkeypatch):
    """A file from an installed plugin that NCHAIN_AGENTS_PLUGINS leaves out says so."""
    from helpers import write_distribution
    from nchain_agents import registry as registry_module

    write_distribution(
        fake_site,
        "nchain-excluded",
        "1.0",
        {"excluded": "nchain_excluded_plugin"},
        {
            "nchain_excluded_plugin.py": """
                from dataclasses import dataclass
                import nchain_agents
                from nchain_agents.default_plugins.random_agent import RandomAgent

                @dataclass(kw_only=True, eq=False)
                class ExcludedAgent(RandomAgent):
                    '''An agent from a plugin that may be filtered out.'''

                @nchain_agents.hookimpl
                def register_agents(register):
                    register("excluded-agent", ExcludedAgent)
            """
        },
    )
    monkeypatch.setattr(registry_module, "_default", registry_module.Registry())
    path = load_agent("excluded-agent", seed=0).learn(short_env(), 1).save(tmp_path / "x.zip")
    monkeypatch.setenv("NCHAIN_AGENTS_PLUGINS", "none")
    monkeypatch.setattr(registry_module, "_default", registry_module.Registry())
    with pytest.raises(AgentFileError, match=r"nchain-excluded, which is installed but not loaded"):
        load(path)
    monkeypatch.delenv("NCHAIN_AGENTS_PLUGINS")
    monkeypatch.setattr(registry_module, "_default", registry_module.Registry())
    assert type(load(path)).__name__ == "ExcludedAgent"


def test_devices_and_pipes_are_written_into_not_replaced(tmp_path):
    import os
    import stat
    import threading

    from nchain_agents.archive import atomic_write

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    atomic_write(fifo, lambda handle: handle.write(b"through the pipe"))
    reader.join(timeout=10)
    assert received == [b"through the pipe"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still a pipe, not a file renamed over it
    atomic_write("/dev/null", lambda handle: handle.write(b"gone"))
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        atomic_write(tmp_path, lambda handle: handle.write(b"x"))
