"""PNG figures for training curves and tournaments (matplotlib, no GUI backend needed).

Uses matplotlib's object-oriented ``Figure`` API, so it never switches the backend
of the program that imports it. Install with ``pip install "nchain-rl[plot]"``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nchain_agents.archive import atomic_write
from nchain_agents.errors import MissingExtraError

if TYPE_CHECKING:
    from nchain_agents.base import History
    from nchain_agents.experiments.sweep import SweepResult
    from nchain_agents.experiments.tournament import TournamentResult


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtraError('plots need matplotlib: pip install "nchain-rl[plot]"') from None
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _error_bars(values: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    """``yerr`` for ``errorbar``: distances to the interval ends, never negative.

    A one-sided result (a share of exactly 0 or 1) gives an interval end that
    floating point puts a hair on the wrong side of the value; matplotlib refuses
    negative error bars, so they are clamped to 0.
    """
    return np.maximum(np.stack([values - intervals[:, 0], intervals[:, 1] - values]), 0.0)


def png_bytes(fig) -> bytes:
    """A figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _save(fig, path: str | Path) -> Path:
    data = png_bytes(fig)
    return atomic_write(path, lambda handle: handle.write(data))


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
    return _save(training_figure(history, title=title, optimal_level=optimal_level), path)


def training_figure(history: History, *, title: str = "", optimal_level: float | None = None):
    """The figure :func:`plot_training` writes."""
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
    return fig


def plot_tournament(result: TournamentResult, path: str | Path) -> Path:
    """Win shares (Wilson 95 % intervals) and mean game totals (95 % intervals)."""
    return _save(tournament_figure(result), path)


def tournament_figure(result: TournamentResult):
    """The figure :func:`plot_tournament` writes."""
    fig = _figure(10, 4.5)
    left, right = fig.subplots(1, 2)
    names = list(result.agents)
    x = np.arange(len(names))
    shares = result.shares * 100
    ci = result.share_intervals() * 100
    left.bar(x, shares, color="tab:blue", alpha=0.8)
    left.errorbar(x, shares, yerr=_error_bars(shares, ci), fmt="none", ecolor="k", capsize=4)
    left.set_xticks(x, names, rotation=15)
    left.set_ylabel("wins (% of trials)")
    left.set_title(f"wins over {result.trials} trials")
    means = result.mean_totals
    tci = result.total_intervals()
    right.bar(x, means, color="tab:orange", alpha=0.8)
    right.errorbar(x, means, yerr=_error_bars(means, tci), fmt="none", ecolor="k", capsize=4)
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
    return fig


def plot_sweep(result: SweepResult, path: str | Path) -> Path:
    """Mean game total per cell with its 95 % interval (failed cells marked)."""
    rows = result.rows
    fig = _figure(9, 1.2 + 0.35 * max(len(rows), 1))
    ax = fig.add_subplot()
    labels, means, errors, colors = [], [], [], []
    for row in rows:
        setting = " ".join(f"{k}={v}" for k, v in row.settings.items())
        labels.append(f"{row.agent} {setting} seed={row.seed}".strip())
        if row.stats is not None:
            mean, (low, high) = row.stats.mean_total, row.stats.mean_total_ci95
            means.append(mean)
            errors.append((max(mean - low, 0.0), max(high - mean, 0.0)))
            colors.append("tab:blue")
        else:
            means.append(0.0)
            errors.append((0.0, 0.0))
            colors.append("tab:red")
            labels[-1] += " (failed)"
    y = np.arange(len(rows))
    ax.barh(y, means, color=colors, alpha=0.8)
    if rows:
        ax.errorbar(means, y, xerr=np.array(errors).T, fmt="none", ecolor="k", capsize=3)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("mean greedy game total (95 % CI)")
    ax.set_title(f"sweep: {len(rows)} cells")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)
