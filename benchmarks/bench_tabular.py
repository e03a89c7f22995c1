"""Tabular agents vs the tutorial's loops, in one run.

Run: ``python benchmarks/bench_tabular.py``. Prints:

1. one eps-greedy-q-table agent, 500 episodes on ``gym.make("NChain-v0")``: ours
   (auto = fused path; and the env path) vs a tutorial-style loop (timed on 20
   episodes and scaled to 500);
2. the 100-trial tournament (3 agents x 500 episodes + a greedy game each): ours
   with 2 workers vs the tutorial-style loop (timed on a fraction and extrapolated).
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

import nchain_gym  # noqa: F401
from nchain_agents import load_agent, tournament


def tutorial_eps_greedy(env, episodes, rng):
    """The tutorial's eps_greedy_q_learning_with_table, as it is written there."""
    q_table = np.zeros((5, 2))
    y, eps, lr, decay_factor = 0.95, 0.5, 0.8, 0.999
    for _ in range(episodes):
        s, _ = env.reset()
        eps *= decay_factor
        done = False
        while not done:
            if rng.random() < eps or np.sum(q_table[s, :]) == 0:
                a = rng.integers(0, 2)
            else:
                a = np.argmax(q_table[s, :])
            new_s, r, terminated, truncated, _ = env.step(int(a))
            done = terminated or truncated
            q_table[s, a] += r + lr * (y * np.max(q_table[new_s, :]) - q_table[s, a])
            s = new_s
    return q_table


def tutorial_naive_sum(env, episodes, rng):
    r_table = np.zeros((5, 2))
    for _ in range(episodes):
        s, _ = env.reset()
        done = False
        while not done:
            if np.sum(r_table[s, :]) == 0:  # noqa: SIM108  (the tutorial's own form)
                a = rng.integers(0, 2)
            else:
                a = np.argmax(r_table[s, :])
            new_s, r, terminated, truncated, _ = env.step(int(a))
            done = terminated or truncated
            r_table[s, a] += r
            s = new_s
    return r_table


def tutorial_game(table, env):
    s, _ = env.reset()
    total, done = 0.0, False
    while not done:
        s, r, terminated, truncated, _ = env.step(int(np.argmax(table[s, :])))
        total += r
        done = terminated or truncated
    return total


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    env = gym.make("NChain-v0")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    sample = 20
    t_tut, _ = timed(lambda: tutorial_eps_greedy(env, sample, rng))
    tutorial_500 = t_tut * 500 / sample

    load_agent("eps-greedy-q-table", seed=0).learn(gym.make("NChain-v0"), 1)  # compile/load
    load_agent("eps-greedy-q-table", seed=0).learn(gym.make("NChain-v0"), 1, loop="env")
    t_fused, _ = timed(
        lambda: load_agent("eps-greedy-q-table", seed=0).learn(gym.make("NChain-v0"))
    )
    t_env, _ = timed(
        lambda: load_agent("eps-greedy-q-table", seed=0).learn(gym.make("NChain-v0"), loop="env")
    )
    print("one agent, 500 episodes x 1000 steps on gym.make('NChain-v0'):")
    print(f"  tutorial-style loop  {tutorial_500:8.2f} s  (timed on {sample} episodes)")
    print(f"  ours, env path       {t_env:8.3f} s  {tutorial_500 / t_env:8.1f}x")
    print(f"  ours, auto (fused)   {t_fused:8.3f} s  {tutorial_500 / t_fused:8.1f}x")

    # Tutorial tournament cost: per trial, naive + q-table + eps-greedy (q-table costs
    # like eps-greedy) for 500 episodes each, plus three 1000-step games.
    t_naive, table = timed(lambda: tutorial_naive_sum(env, sample, rng))
    t_game, _ = timed(lambda: tutorial_game(table, env))
    per_trial = (t_naive + 2 * t_tut) * 500 / sample + 3 * t_game
    tutorial_100 = 100 * per_trial
    tournament(trials=2, episodes=1, seed=0)  # load compiled kernels
    t_ours, result = timed(lambda: tournament(trials=100, seed=0, workers=2))
    print("tournament, 100 trials x 3 agents x 500 episodes + games:")
    print(f"  tutorial-style loop  {tutorial_100:8.1f} s  (extrapolated from {sample} episodes)")
    print(f"  ours, 2 workers      {t_ours:8.2f} s  {tutorial_100 / t_ours:8.1f}x  (goal <= 10 s)")
    print(f"  wins {result.wins.tolist()}  mean totals {np.round(result.mean_totals).tolist()}")


if __name__ == "__main__":
    main()
