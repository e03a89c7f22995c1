"""Agents that fail on purpose, for the failure-handling tests of sweeps on Ray."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import nchain_agents
from nchain_agents import hyperparameter
from nchain_agents.default_plugins.random_agent import RandomAgent


@dataclass(kw_only=True, eq=False)
class FailingAgent(RandomAgent):
    """Raises in learn() when ``fail`` is set."""

    fail: bool = hyperparameter(True, "raise in learn()")

    def start_learning(self):
        if self.fail:
            raise RuntimeError("deliberate failure in learn()")


@dataclass(kw_only=True, eq=False)
class ProcessKillerAgent(RandomAgent):
    """Ends its whole process the first time (no marker file yet), then learns normally."""

    marker: str = hyperparameter("", "file that records the first attempt")

    def start_learning(self):
        if self.marker and not Path(self.marker).exists():
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(17)


@dataclass(kw_only=True, eq=False)
class SleepyAgent(RandomAgent):
    """Hangs in learn() for ``sleep`` seconds (a stuck job, for timeouts)."""

    sleep: float = hyperparameter(0.0, "seconds to hang before learning")

    def start_learning(self):
        time.sleep(self.sleep)


@nchain_agents.hookimpl
def register_agents(register):
    register("failing-agent", FailingAgent)
    register("process-killer", ProcessKillerAgent)
    register("sleepy-agent", SleepyAgent)
