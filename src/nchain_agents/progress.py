"""The one terminal progress bar (rich, on stderr) of training, tournaments and sweeps."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nchain_agents.history import EpisodeStats


class ProgressBar:
    """``label [bar] done/total unit  text  elapsed  eta`` on stderr.

    Args:
        label: what is being done (``"tournament"``, an agent's name, ...).
        total: the amount of work (``None`` until known).
        unit: what is counted (``"episodes"``, ``"trials"``, ``"cells"``).
        transient: remove the bar when it closes.
    """

    def __init__(
        self, label: str, total: int | None, unit: str, *, transient: bool = False
    ) -> None:
        from rich.console import Console
        from rich.markup import escape
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn(f"[bold]{escape(label)}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(escape(unit)),
            TextColumn("{task.fields[text]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            transient=transient,
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task(label, total=total, text="")
        self._progress.start()

    def update(self, completed: int, *, total: int | None = None, text: str = "") -> None:
        """Show ``completed`` units done (and the total, once it is known)."""
        changes: dict[str, Any] = {"completed": completed, "text": text}
        if total is not None:
            changes["total"] = total
        self._progress.update(self._task, **changes)

    def episode(self, stats: EpisodeStats) -> None:
        """A ``learn`` callback: the episode count, mean reward per step and epsilon."""
        text = f"reward/step {stats.mean_reward:6.3f}"
        if not math.isnan(stats.epsilon):
            text += f"  eps {stats.epsilon:.3f}"
        self.update(stats.episode, text=text)

    def close(self) -> None:
        self._progress.stop()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
