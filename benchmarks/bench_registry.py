"""Start-up cost of ``import nchain_agents`` + ``list_agents()`` in a fresh interpreter.

Run: ``python benchmarks/bench_registry.py``. Baseline in the same run: a fresh
interpreter that only imports NumPy (which nchain_agents needs anyway).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

LISTING = "import nchain_agents; nchain_agents.list_agents()"
BASELINE = "import numpy"


def median_seconds(code: str, runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    median_seconds(LISTING, runs=2)  # warm the file cache
    listing = median_seconds(LISTING)
    baseline = median_seconds(BASELINE)
    print(
        f"import nchain_agents + list_agents(): {listing:.3f} s   python -c 'import numpy': "
        f"{baseline:.3f} s   ratio {listing / baseline:.2f}x   (goal: <= 0.3 s)"
    )


if __name__ == "__main__":
    main()
