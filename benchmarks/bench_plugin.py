"""A third-party tabular plugin against the built-in q-table, in one run.

Run: ``python benchmarks/bench_plugin.py`` (needs ``examples/plugin`` importable: it adds
``examples/plugin/src`` to ``sys.path`` itself). Prints, for 500 episodes of
``gym.make("NChain-v0")`` after one warm-up call each (compilation excluded):

- ``q-table`` (built-in, fused loop);
- the example plugin's Expected SARSA on the public ``TabularAgent`` base (fused loop),
  goal: within 2x of q-table;
- the same plugin on the env loop (a real ``env.step`` per step);
- a plugin written the 0.1 way, its own Python loop over ``env.step`` with NumPy per
  step (the baseline a plugin author had before the public compiled base).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import nchain_gym  # noqa: F401
from nchain_agents import load_agent

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "plugin" / "src"))
from nchain_sarsa import ExpectedSarsaAgent


def python_expected_sarsa(env, episodes: int, rng: np.random.Generator) -> np.ndarray:
    """Expected SARSA as a 0.1-style plugin wrote it: Python and NumPy per step."""
    q = np.zeros((5, 2))
    gamma, lr, eps = 0.95, 0.1, 0.1

    def policy(s):
        probs = np.full(2, eps / 2)
        probs[np.argmax(q[s])] += 1.0 - eps
        return probs

    for episode in range(episodes):
        s, _ = env.reset(seed=0 if episode == 0 else None)
        while True:
            a = int(rng.choice(2, p=policy(s)))
            s2, r, terminated, truncated, _ = env.step(a)
            expected = 0.0 if terminated else float(policy(s2) @ q[s2])
            q[s, a] += lr * (r + gamma * expected - q[s, a])
            s = s2
            if terminated or truncated:
                break
    return q


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    episodes = 500

    def q_table(loop="auto"):
        load_agent("q-table", seed=0).learn(gym.make("NChain-v0"), episodes, loop=loop)

    def sarsa(loop="auto"):
        ExpectedSarsaAgent(seed=0).learn(gym.make("NChain-v0"), episodes, loop=loop)

    load_agent("q-table", seed=0).learn(gym.make("NChain-v0"), 1)  # compile / load caches
    ExpectedSarsaAgent(seed=0).learn(gym.make("NChain-v0"), 1)
    ExpectedSarsaAgent(seed=0).learn(gym.make("NChain-v0"), 1, loop="env")
    t_q = min(timed(q_table) for _ in range(3))
    t_plugin = min(timed(sarsa) for _ in range(3))
    t_plugin_env = timed(lambda: sarsa("env"))
    sample = 20
    t_python = (
        timed(
            lambda: python_expected_sarsa(gym.make("NChain-v0"), sample, np.random.default_rng(0))
        )
        * episodes
        / sample
    )
    print(f"{episodes} episodes x 1000 steps of NChain-v0:")
    print(f"  q-table (built-in, fused)           {t_q:8.3f} s")
    print(
        f"  expected-sarsa plugin, fused        {t_plugin:8.3f} s  "
        f"{t_plugin / t_q:5.2f}x q-table (goal <= 2x)"
    )
    print(f"  expected-sarsa plugin, env loop     {t_plugin_env:8.3f} s")
    print(
        f"  0.1-style Python plugin             {t_python:8.3f} s  "
        f"(timed on {sample} episodes; {t_python / t_plugin:6.0f}x the compiled plugin)"
    )


if __name__ == "__main__":
    main()
