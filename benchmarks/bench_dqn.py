"""keras-dqn vs the tutorial's Keras loop, in one run.

Run: ``python benchmarks/bench_dqn.py``. Prints:

- the tutorial-style loop (three ``model.predict`` and one ``model.fit`` per step),
  timed on 30 steps and extrapolated to 1000 episodes x 1000 steps;
- our env path per step (one compiled call per step);
- our fused path: a fresh interpreter running ``load_agent("keras-dqn").learn(
  gym.make("NChain-v0"))`` (1000 episodes), wall time including imports, TensorFlow
  start-up and XLA compilation, and its peak memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np

import nchain_gym  # noqa: F401
from nchain_agents import load_agent
from nchain_agents.dqn_graph import import_tensorflow
from probe import PEAK_MB

FUSED_RUN = (
    PEAK_MB
    + """
import json, time
start = time.perf_counter()
import gymnasium as gym
from nchain_agents import load_agent
agent = load_agent("keras-dqn", seed=0).learn(gym.make("NChain-v0"))
print(json.dumps({
    "seconds": time.perf_counter() - start,
    "peak_mb": peak_mb(),
    "q": agent.q_values().round(1).tolist(),
}))
"""
)


def tutorial_steps(steps: int) -> float:
    """Seconds per step of the tutorial's loop body."""
    _, keras = import_tensorflow()
    model = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(10, activation="sigmoid"),
            keras.layers.Dense(2, activation="linear"),
        ]
    )
    model.compile(loss="mse", optimizer="adam", metrics=["mae"])
    env = gym.make("NChain-v0")
    s, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    eye = np.identity(5)
    eps, y = 0.5, 0.95

    def one_step(s):
        if rng.random() < eps:
            a = int(rng.integers(0, 2))
        else:
            a = int(np.argmax(model.predict(eye[s : s + 1], verbose=0)))
        new_s, r, *_ = env.step(a)
        target = r + y * np.max(model.predict(eye[new_s : new_s + 1], verbose=0))
        target_vec = model.predict(eye[s : s + 1], verbose=0)[0]
        target_vec[a] = target
        model.fit(eye[s : s + 1], target_vec.reshape(-1, 2), epochs=1, verbose=0)
        return new_s

    s = one_step(s)  # first call builds the graphs
    start = time.perf_counter()
    for _ in range(steps):
        s = one_step(s)
    return (time.perf_counter() - start) / steps


def main() -> None:
    tutorial = tutorial_steps(30)
    tutorial_total = tutorial * 1000 * 1000

    agent = load_agent("keras-dqn", seed=0)
    env = gym.make("NChain-v0", max_episode_steps=200)
    agent.learn(env, 1, loop="env")  # trace the step functions
    start = time.perf_counter()
    agent.learn(env, 10, loop="env")
    generic = (time.perf_counter() - start) / 2000

    out = subprocess.run(
        [sys.executable, "-c", FUSED_RUN], capture_output=True, text=True, check=True
    )
    fused = json.loads(out.stdout)
    print("keras-dqn, 1000 episodes x 1000 steps on NChain-v0:")
    print(
        f"  tutorial-style loop   {tutorial * 1e3:8.1f} ms/step -> {tutorial_total / 3600:6.1f} h"
    )
    print(
        f"  ours, env path        {generic * 1e3:8.3f} ms/step  {tutorial / generic:8.0f}x"
        "  (goal <= 0.5 ms/step)"
    )
    print(
        f"  ours, fused (auto)    {fused['seconds']:8.1f} s wall, fresh interpreter "
        f"{tutorial_total / fused['seconds']:8.0f}x  (goal <= 20 s, >= 5000x)"
    )
    print(f"  peak memory of that run {fused['peak_mb']:.0f} MB  (goal <= 1500 MB)")
    print(f"  learned Q {fused['q']}")


if __name__ == "__main__":
    main()
