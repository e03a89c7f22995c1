"""What training records: per-episode statistics and the history they add up to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class EpisodeStats:
    """What a ``learn`` callback receives after each episode.

    Attributes:
        episode: 1-based index of the episode within this ``learn`` call.
        episodes: the episodes this ``learn`` call will run.
        reward: the episode's total reward.
        length: its number of steps.
        epsilon: the exploration rate used (``nan`` for agents without one).
    """

    episode: int
    episodes: int
    reward: float
    length: int
    epsilon: float

    @property
    def mean_reward(self) -> float:
        """Mean reward per step: the tutorial's training curve."""
        return self.reward / self.length if self.length else 0.0


EpisodeSink = Callable[[float, int, float], bool]
"""What a training loop calls after each episode: ``sink(total_reward, length, epsilon)``;
it records the episode and returns ``False`` when training must stop."""

Callback = Callable[[EpisodeStats], bool | None]
"""Called after each episode; returning ``False`` stops ``learn`` early (like SB3)."""


class History:
    """Per-episode training record: total reward, length and epsilon of each episode."""

    FIELDS = ("reward", "length", "epsilon")

    def __init__(self) -> None:
        self.reward: list[float] = []
        self.length: list[int] = []
        self.epsilon: list[float] = []

    def append(self, reward: float, length: int, epsilon: float) -> None:
        self.reward.append(float(reward))
        self.length.append(int(length))
        self.epsilon.append(float(epsilon))

    def __len__(self) -> int:
        return len(self.reward)

    @property
    def mean_reward(self) -> np.ndarray:
        """Mean reward per step of each episode (the tutorial's training curve)."""
        length = np.asarray(self.length, dtype=np.float64)
        return np.divide(self.reward, length, out=np.zeros_like(length), where=length > 0)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "reward": np.asarray(self.reward, dtype=np.float64),
            "length": np.asarray(self.length, dtype=np.int64),
            "epsilon": np.asarray(self.epsilon, dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> History:
        history = cls()
        history.reward = arrays["reward"].astype(np.float64).tolist()
        history.length = arrays["length"].astype(np.int64).tolist()
        history.epsilon = arrays["epsilon"].astype(np.float64).tolist()
        return history

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, History):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f), getattr(other, f), equal_nan=True) for f in self.FIELDS
        )

    def __repr__(self) -> str:
        return f"History({len(self)} episodes)"
