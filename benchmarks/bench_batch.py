"""All four learners in one tournament, and how batched keras-dqn scales, in one run.

Run: ``python benchmarks/bench_batch.py`` (takes a few minutes). Prints:

- the four-agent tournament (naive-sum, q-table, eps-greedy-q-table, keras-dqn at its
  default 1000 episodes), 100 trials, 2 workers, in a fresh interpreter: wall time
  including imports, TensorFlow start-up and XLA compilation (goal <= 30 s);
- the same tournament one agent at a time (``trials_per_task=1``: every keras-dqn
  agent trains alone on the fused path, as before batching), timed on 2 and 6 trials
  and extrapolated to 100;
- the tutorial's own loops for it, extrapolated (its Keras loop at the per-step cost
  ``bench_dqn.py`` measures; its tables are negligible next to it);
- batched keras-dqn for B = 1, 10, 100, 1000 agents: microseconds per agent-step
  (compilation excluded) and the peak memory of the process (TensorFlow included);
- the three-table tournament (100 trials, 2 workers), which batching must not slow.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from bench_dqn import tutorial_steps
from probe import PEAK_MB

TOURNAMENT = (
    PEAK_MB
    + """
import json, sys, time
from nchain_agents import tournament
from nchain_agents.experiments.tournament import LEARNERS
agents = LEARNERS if sys.argv[1] == "all" else LEARNERS[:3]
per_task = None if sys.argv[3] == "auto" else int(sys.argv[3])
result = tournament(agents, trials=int(sys.argv[2]), workers=2, trials_per_task=per_task)
print(json.dumps({"peak_mb": peak_mb(), "shares": result.shares.tolist()}))
"""
)

SCALING = (
    PEAK_MB
    + """
import json, sys, time
import gymnasium as gym
from nchain_agents import learn_many, load_agent
from nchain_agents.dqn_graph import import_tensorflow
import_tensorflow()
size, extra = int(sys.argv[1]), int(sys.argv[2])
env = gym.make("NChain-v0")
def run(episodes, first_seed):
    agents = [load_agent("keras-dqn", seed=first_seed + i) for i in range(size)]
    start = time.perf_counter()
    learn_many(agents, env, episodes)
    return time.perf_counter() - start
run(1, 2 * 10**6)  # warm-up: TensorFlow's and XLA's first-use costs
short = run(1, 0)  # set-up, compilation and one episode
long = run(1 + extra, 10**6)  # the same plus `extra` episodes
print(json.dumps({
    "us_per_agent_step": (long - short) / (extra * 1000 * size) * 1e6,
    "compile_and_first_s": short,
    "peak_mb": peak_mb(),
}))
"""
)


def fresh(code: str, *args: str) -> tuple[float, dict]:
    """Wall seconds of a fresh interpreter running ``code``, and what it printed."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return time.perf_counter() - start, json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    steps = 1000 * 1000 * 100  # keras-dqn agent-steps in a 100-trial tournament
    tutorial = tutorial_steps(30) * steps

    batched, info = fresh(TOURNAMENT, "all", "100", "auto")
    # One trial per job on 2 workers: 2 trials are start-up plus one round, 6 trials
    # start-up plus three rounds; 100 trials are start-up plus 50 rounds.
    two, _ = fresh(TOURNAMENT, "all", "2", "1")
    six, _ = fresh(TOURNAMENT, "all", "6", "1")
    alone = two + (six - two) / 2 * 49
    print("four-agent tournament, 100 trials, keras-dqn 1000 episodes, 2 workers:")
    print(f"  tutorial's loops (extrapolated)       {tutorial / 3600:10.0f} h")
    print(
        f"  one agent at a time, fused (extrap.)  {alone:10.1f} s  "
        f"(from {two:.1f} s for 2 trials, {six:.1f} s for 6)"
    )
    print(
        f"  batched, fresh process                {batched:10.1f} s  "
        f"{alone / batched:5.1f}x faster, {tutorial / batched:9.0f}x the tutorial "
        f"(goal <= 30 s); peak {info['peak_mb']} MB"
    )
    print(f"  win shares {[round(100 * s, 1) for s in info['shares']]} %")

    print("batched keras-dqn, NChain-v0 (compilation excluded):")
    print("       B   us/agent-step   compile + 1st episode   peak memory")
    for size, extra in ((1, 1000), (10, 300), (100, 40), (1000, 5)):  # a few s of work each
        _, row = fresh(SCALING, str(size), str(extra))
        print(
            f"  {size:6d}   {row['us_per_agent_step']:13.3f}   "
            f"{row['compile_and_first_s']:19.1f} s   {row['peak_mb']:8d} MB"
        )

    tables, _ = fresh(TOURNAMENT, "tables", "100", "auto")
    print(f"three-table tournament, 100 trials, 2 workers, fresh process: {tables:.1f} s")


if __name__ == "__main__":
    main()
