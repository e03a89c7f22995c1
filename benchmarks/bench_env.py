"""NChain-v0 speed: single env, vector env, and the start-up hook's cost.

Run: ``python benchmarks/bench_env.py``. Every figure is printed beside a baseline
measured in the same run, as a ratio.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np

import nchain_gym  # noqa: F401  (registers NChain-v0)


class MinimalChain(gym.Env):
    """The shortest faithful Python NChain: the baseline the real env must match."""

    def __init__(self, n=5, slip=0.2, small=2, large=10):
        self.n, self.slip, self.small, self.large = n, slip, small, large
        self.observation_space = gym.spaces.Discrete(n)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = 0
        return 0, {}

    def step(self, action):
        if self.np_random.random() < self.slip:
            action = 1 - action
        if action:
            self.state, reward = 0, self.small
        elif self.state < self.n - 1:
            self.state, reward = self.state + 1, 0
        else:
            reward = self.large
        return self.state, reward, False, False, {}


def time_single(env_id: str, steps: int = 200_000) -> float:
    env = gym.make(env_id)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, steps).tolist()
    step = env.step
    best = float("inf")
    for _ in range(3):
        env.reset(seed=0)
        start = time.perf_counter()
        for t, a in enumerate(actions):
            if t % 1000 == 999:
                env.reset()
            step(a)
        best = min(best, time.perf_counter() - start)
    return best / steps * 1e6


def time_vector(envs, steps: int) -> float:
    envs.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, (steps, envs.num_envs))
    start = time.perf_counter()
    for a in actions:
        envs.step(a)
    return steps * envs.num_envs / (time.perf_counter() - start)


def startup_ms(disabled: bool, runs: int = 40) -> float:
    env = dict(os.environ)
    env.pop("NCHAIN_GYM_NO_AUTOREGISTER", None)
    if disabled:
        env["NCHAIN_GYM_NO_AUTOREGISTER"] = "1"
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    gym.register("MinimalChain-v0", entry_point=MinimalChain, max_episode_steps=1000)
    ours = time_single("NChain-v0")
    base = time_single("MinimalChain-v0")
    print(
        f"single env via gym.make : {ours:6.2f} us/step   minimal Python env: {base:6.2f} us/step"
        f"   ratio {base / ours:4.2f}x (goal: <= 2.4 us/step, >= 1.0x)"
    )

    num_envs = 4096
    native = time_vector(gym.make_vec("NChain-v0", num_envs=num_envs), steps=2000)
    sync = time_vector(
        gym.make_vec("NChain-v0", num_envs=num_envs, vectorization_mode="sync"), steps=20
    )
    print(
        f"vector env, {num_envs} envs : {native / 1e6:6.1f} M steps/s   "
        f"SyncVectorEnv: {sync / 1e6:6.3f} M steps/s   ratio {native / sync:6.0f}x "
        "(goal: >= 50 M steps/s)"
    )

    on, off = [], []
    for _ in range(3):  # interleave to share any drift in machine load
        off.append(startup_ms(disabled=True, runs=15))
        on.append(startup_ms(disabled=False, runs=15))
    on_ms, off_ms = statistics.median(on), statistics.median(off)
    print(
        f"interpreter start-up    : {on_ms:6.1f} ms with the hook, {off_ms:6.1f} ms without, "
        f"difference {on_ms - off_ms:+5.2f} ms (goal: <= 5 ms)"
    )


if __name__ == "__main__":
    main()
