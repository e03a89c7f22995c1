"""Tournament of 2,000 trials: local threads vs Ray on this machine, and Ray's per-task cost.

Run: ``python benchmarks/bench_ray.py`` (needs the ray extra). On one 2-core machine
Ray cannot beat two threads running GIL-free compiled loops; the point of the Ray
backend is a cluster. The figures say what one machine pays for it.
"""

from __future__ import annotations

import time

import numpy as np

from nchain_agents import tournament
from nchain_agents.experiments.jobs import run_jobs


def noop(job: int) -> int:
    return job


def main() -> None:
    import ray

    trials = 2000
    tournament(trials=2, episodes=1)  # load compiled kernels
    start = time.perf_counter()
    local = tournament(trials=trials, seed=0, workers=2)
    t_local = time.perf_counter() - start

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    t_init = time.perf_counter() - start
    run_jobs(noop, list(range(4)), backend="ray")  # warm the workers
    n = 400
    start = time.perf_counter()
    run_jobs(noop, list(range(n)), backend="ray")
    per_task = (time.perf_counter() - start) / n
    start = time.perf_counter()
    remote = tournament(trials=trials, seed=0, backend="ray")
    t_ray = time.perf_counter() - start
    ray.shutdown()

    assert np.array_equal(local.totals, remote.totals), "backends disagree"
    print(f"tournament, {trials} trials (3 tabular agents, 500 episodes each):")
    print(f"  local, 2 threads     {t_local:7.1f} s")
    print(f"  ray, local 2 CPUs    {t_ray:7.1f} s  ({t_local / t_ray:4.2f}x local; same totals)")
    print(f"  ray.init             {t_init:7.1f} s (not included above)")
    print(f"  per-task overhead    {per_task * 1e3:7.2f} ms ({n} no-op tasks)")


if __name__ == "__main__":
    main()
