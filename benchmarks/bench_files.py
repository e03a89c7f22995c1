"""Loading the largest agent files the loader accepts: time and peak memory.

Run: ``python benchmarks/bench_files.py``. Builds, in a temporary directory:

- a tabular agent at the limits: 1,000,000 states x 4 actions (the 4,000,000-pair
  table limit) and a 1,000,000-episode history (the history limit);
- a keras-dqn at the network limit (about 2,000,000 weights) with the same history;

then loads each in a fresh process and reports wall time and peak resident memory,
beside a baseline from the same run: the same arrays written with ``np.savez`` and read
back with ``np.load`` (no validation, no agent), so the ratio is the price of checking.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np

import nchain_gym  # noqa: F401
from nchain_agents import load_agent
from nchain_agents.limits import MAX_HISTORY_EPISODES, MAX_NETWORK_PARAMETERS, MAX_TABLE_CELLS
from probe import PEAK_MB

PROBE = (
    PEAK_MB
    + """
import json, sys, time
start = time.perf_counter()
if sys.argv[1] == "agent":
    from nchain_agents import load
    agent = load(sys.argv[2])
    size = agent.q_values().size
else:
    import numpy as np
    with np.load(sys.argv[2]) as data:
        size = sum(data[name].size for name in data.files)
print(json.dumps({
    "seconds": time.perf_counter() - start,
    "peak_mb": peak_mb(),
    "size": int(size),
}))
"""
)


class WideEnv(gym.Env):
    """A do-nothing env with the largest spaces an agent may have."""

    def __init__(self, n_states: int, n_actions: int) -> None:
        self.observation_space = gym.spaces.Discrete(n_states)
        self.action_space = gym.spaces.Discrete(n_actions)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 1, 1.0, False, True, {}


def fill_history(agent) -> None:
    n = MAX_HISTORY_EPISODES
    agent.history.reward = [1.0] * n
    agent.history.length = [1] * n
    agent.history.epsilon = [0.5] * n


def probe(kind: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, kind, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def baseline(agent, path: Path) -> Path:
    arrays = {**agent._state_arrays(), **agent.history.to_arrays()}
    np.savez(path, **arrays)
    return path


def report(label: str, agent, tmp: Path) -> None:
    path = agent.save(tmp / f"{label}.zip")
    ours = probe("agent", path)
    plain = probe("plain", baseline(agent, tmp / f"{label}.npz"))
    print(f"{label}: file {path.stat().st_size / 2**20:.1f} MB")
    print(f"  load()            {ours['seconds']:6.2f} s  peak {ours['peak_mb']:7.0f} MB")
    print(
        f"  np.load baseline  {plain['seconds']:6.2f} s  peak {plain['peak_mb']:7.0f} MB"
        f"  (load takes {ours['seconds'] / plain['seconds']:.1f}x the time)"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        n_states = MAX_TABLE_CELLS // 4
        tabular = load_agent("q-table", seed=0).learn(
            gym.wrappers.TimeLimit(WideEnv(n_states, 4), 1), 1, loop="env"
        )
        fill_history(tabular)
        report(f"q-table {n_states:,} x 4, {MAX_HISTORY_EPISODES:,} episodes", tabular, tmp)

        hidden = 10
        n_states = (MAX_NETWORK_PARAMETERS - hidden - 2) // (hidden + 1) - 2
        dqn = load_agent("keras-dqn", seed=0, hidden_units=hidden).learn(
            gym.wrappers.TimeLimit(WideEnv(n_states, 2), 1), 1, loop="env"
        )
        fill_history(dqn)
        weights = dqn.network_parameters(n_states, 2)
        report(f"keras-dqn {n_states:,} states, {weights:,} weights", dqn, tmp)


if __name__ == "__main__":
    main()
