"""Experiments over agents: the tutorial's tournament, sweeps, the job runners, plots.

- :mod:`~nchain_agents.experiments.trials`: the one primitive both build on, *play
  trials* (train each agent from scratch, then play the greedy games);
- :mod:`~nchain_agents.experiments.tournament`: agents against each other, trial by trial;
- :mod:`~nchain_agents.experiments.sweep`: agents x hyperparameters x env settings x seeds;
- :mod:`~nchain_agents.experiments.jobs`: where the work runs (local threads or Ray);
- :mod:`~nchain_agents.experiments.plots`: their pictures (matplotlib, the ``plot`` extra).

``tournament``, ``sweep`` and their result types are re-exported by ``nchain_agents``.
"""

from __future__ import annotations

from nchain_agents.experiments.sweep import SweepResult, SweepRow, sweep
from nchain_agents.experiments.tournament import TournamentResult, tournament

__all__ = ["SweepResult", "SweepRow", "TournamentResult", "sweep", "tournament"]
