"""PNG figures for training curves and tournaments (matplotlib, no GUI backend needed).

Uses matplotlib's object-oriented ``Figure`` API, so it never switches the backend
of the program that imports it. Install with ``pip install "nchain-rl[plot]"``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nchain_agents.errors import NChainAgentsError
from nchain_agents.files import atomic_write

if TYPE_CHECKING:
    from nchain_agents.base import History
    from nchain_agents.tournament import TournamentResult


class MissingExtraError(NChainAgentsError, ImportError):
    """An optional dependency is not installed."""


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtraError('plots need matplotlib: pip install "nchain-rl[plot]"') from None
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig, path: str | Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def plot_training(
    history: History, path: str | Path, *, title: str = "", optimal_level: float | None = None
) -> Path:
    """The tutorial's training curve: mean reward per step by episode.

    Args:
        history: the agent's training history.
        path: the PNG to write (atomically).
        title: figure title.
        optimal_level: mean reward per step of the optimal policy, drawn for reference.
    """
    fig = _figure(8, 4.5)
    ax = fig.add_subplot()
    curve = history.mean_reward
    episodes = np.arange(1, len(curve) + 1)
    ax.plot(episodes, curve, lw=1, color="tab:blue", label="mean reward per step")
    if optimal_level is not None:
        ax.axhline(optimal_level, color="tab:green", ls="--", lw=1, label="optimal policy")
    ax.set_xlabel("episode")
    ax.set_ylabel("mean reward per step")
    ax.set_title(title or "training curve")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_tournament(result: TournamentResult, path: str | Path) -> Path:
    """Win shares (Wilson 95 % intervals) and mean game totals (95 % intervals)."""
    fig = _figure(10, 4.5)
    left, right = fig.subplots(1, 2)
    names = list(result.agents)
    x = np.arange(len(names))
    shares = result.shares * 100
    ci = result.share_intervals() * 100
    left.bar(x, shares, color="tab:blue", alpha=0.8)
    left.errorbar(
        x, shares, yerr=[shares - ci[:, 0], ci[:, 1] - shares], fmt="none", ecolor="k", capsize=4
    )
    left.set_xticks(x, names, rotation=15)
    left.set_ylabel("wins (% of trials)")
    left.set_title(f"wins over {result.trials} trials")
    means = result.mean_totals
    tci = result.total_intervals()
    right.bar(x, means, color="tab:orange", alpha=0.8)
    right.errorbar(
        x, means, yerr=[means - tci[:, 0], tci[:, 1] - means], fmt="none", ecolor="k", capsize=4
    )
    if result.optimum is not None:
        right.axhline(
            result.optimum, color="tab:green", ls="--", lw=1, label=f"optimum {result.optimum:.1f}"
        )
        right.legend(loc="upper left")
    right.set_xticks(x, names, rotation=15)
    right.set_ylabel("greedy game total")
    right.set_title("mean game total (95 % CI)")
    for ax in (left, right):
        ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)
