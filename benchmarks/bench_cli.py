"""End-to-end command-line timings, each beside a baseline from the same run.

Run: ``python benchmarks/bench_cli.py``.

- ``nchain compare`` with defaults (100 trials, three tabular agents), a fresh
  process, against the tutorial-style loop extrapolated from a short timing
  (see ``bench_tabular.py``);
- ``nchain agents`` start-up against ``python -c "import numpy"``.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_tabular import timed, tutorial_eps_greedy, tutorial_game, tutorial_naive_sum


def wall(argv: list[str], runs: int = 1) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    exe = shutil.which("nchain")
    if exe is None:
        raise SystemExit("install the project first: python -m pip install -e .")
    env = gym.make("NChain-v0")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    t_eps, _ = timed(lambda: tutorial_eps_greedy(env, 10, rng))
    t_naive, table = timed(lambda: tutorial_naive_sum(env, 10, rng))
    t_game, _ = timed(lambda: tutorial_game(table, env))
    tutorial = 100 * ((t_naive + 2 * t_eps) * 500 / 10 + 3 * t_game)

    wall([exe, "compare", "--trials", "2", "--episodes", "1"])  # warm caches
    compare = wall([exe, "compare"], runs=3)
    print(
        f"nchain compare (defaults, fresh process): {compare:6.2f} s   tutorial-style loop: "
        f"{tutorial:6.0f} s (extrapolated)   ratio {tutorial / compare:5.0f}x   (goal <= 10 s)"
    )
    agents = wall([exe, "agents"], runs=7)
    numpy_only = wall([sys.executable, "-c", "import numpy"], runs=7)
    print(
        f"nchain agents start-up: {agents:5.2f} s   python -c 'import numpy': {numpy_only:5.2f} s"
        f"   ratio {agents / numpy_only:4.1f}x   (goal <= 0.5 s)"
    )


if __name__ == "__main__":
    main()
