"""Terminal progress bars (rich) for training and tournaments."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nchain_agents.base import EpisodeStats


class EpisodeProgress:
    """A rich progress bar over episodes: mean reward per step, epsilon and ETA."""

    def __init__(self, total: int, label: str = "training", *, transient: bool = False) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            transient=transient,
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task(label, total=total, stats="")
        self._progress.start()

    def update(self, stats: EpisodeStats) -> None:
        text = f"reward/step {stats.mean_reward:6.3f}"
        if not math.isnan(stats.epsilon):
            text += f"  eps {stats.epsilon:.3f}"
        self._progress.update(self._task, completed=stats.episode, stats=text)

    def advance(self, completed: int, text: str = "") -> None:
        self._progress.update(self._task, completed=completed, stats=text)

    def close(self) -> None:
        self._progress.stop()
