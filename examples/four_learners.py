"""Does the tutorial's neural agent beat its tables, and how often? The README's answer.

Run: ``python examples/four_learners.py --trials 1000 --seeds 100`` (a few minutes on
2 cores). Prints, as Markdown:

- a tournament of every built-in learner (naive-sum, q-table, eps-greedy-q-table,
  keras-dqn, each at its default budget): win shares with 95 % Wilson intervals, mean
  game totals with 95 % intervals, the share of the optimum, how often each trained
  greedy policy is the optimal one, and how often the top score was tied;
- keras-dqn's learned Q table (seed 0, and the mean and spread over ``--seeds``
  agents trained in one batch) beside the exact Q* and the table the tutorial printed.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

from nchain_agents import learn_many, load_agent, tournament
from nchain_agents.experiments.tournament import LEARNERS
from nchain_agents.tutorial import ARTICLE_KERAS_Q
from nchain_gym import solve

TUTORIAL_Q = np.array(ARTICLE_KERAS_Q)  # the Q table the tutorial printed after 1000 episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=100, help="keras-dqn agents for the Q table")
    parser.add_argument("--episodes", type=int, help="training episodes (default: each agent's)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    result = tournament(
        LEARNERS, trials=args.trials, episodes=args.episodes, seed=args.seed, workers=2
    )
    shares, totals = result.share_intervals(), result.total_intervals()
    fractions, optimal = result.fractions_of_optimum, result.optimal_policy_shares
    top = result.totals.max(axis=1, keepdims=True)
    ties = int(((result.totals == top).sum(axis=1) > 1).sum())
    print(f"{result.trials} trials, seed {args.seed}; optimum {result.optimum:.1f}\n")
    print(
        "| agent | win share [95 % CI] | mean game total [95 % CI] | of optimum | greedy policy optimal |"
    )
    print("|---|---|---|---|---|")
    for i, name in enumerate(result.agents):
        print(
            f"| `{name}` | {100 * result.shares[i]:.1f} % [{100 * shares[i, 0]:.1f}, "
            f"{100 * shares[i, 1]:.1f}] | {result.mean_totals[i]:.0f} [{totals[i, 0]:.0f}, "
            f"{totals[i, 1]:.0f}] | {100 * fractions[i]:.1f} % | {100 * optimal[i]:.1f} % |"
        )
    print(f"\ntop score tied in {ties} trials ({100 * ties / result.trials:.1f} %)\n")

    env = gym.make("NChain-v0")
    agents = [load_agent("keras-dqn", seed=s) for s in range(args.seeds)]
    q = np.stack([a.q_values() for a in learn_many(agents, env, args.episodes)])
    mean, spread = q.mean(axis=0), q.std(axis=0)
    star = solve().q
    print(
        f"keras-dqn Q (seed 0; mean ± sd over seeds 0-{args.seeds - 1}) beside Q* and the tutorial's:\n"
    )
    print("| state | seed 0 | mean ± sd | Q* | tutorial |")
    print("|---|---|---|---|---|")
    for s in range(5):
        print(
            f"| {s} | {q[0, s, 0]:.1f}, {q[0, s, 1]:.1f} | {mean[s, 0]:.1f} ± {spread[s, 0]:.1f}, "
            f"{mean[s, 1]:.1f} ± {spread[s, 1]:.1f} | {star[s, 0]:.1f}, {star[s, 1]:.1f} | "
            f"{TUTORIAL_Q[s, 0]:.1f}, {TUTORIAL_Q[s, 1]:.1f} |"
        )
    forward = (q.argmax(axis=2) == 0).all(axis=1).mean()
    print(f"\ngreedy policy 'forward everywhere' (optimal) in {100 * forward:.0f} % of the seeds")


if __name__ == "__main__":
    main()
