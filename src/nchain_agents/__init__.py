"""Agents for NChain-v0 behind a pluggy registry, with one Stable-Baselines3-style API.

```python
import gymnasium as gym
from nchain_agents import load_agent, list_agents, load

agent = load_agent("q-table", seed=0).learn(gym.make("NChain-v0"))
action, _ = agent.predict(0, deterministic=True)
agent.save("q.zip")
same = load("q.zip")
```

Outside packages add agents with ``@nchain_agents.hookimpl`` on a
``register_agents(register)`` function published under the entry-point group
``nchain_agents`` (see :mod:`nchain_agents.hookspecs`).
"""

from __future__ import annotations

from nchain_agents.base import (
    Agent,
    AgentState,
    EpisodeSink,
    EpisodeStats,
    History,
    hyperparameter,
    in_range,
    learn_many,
    one_of,
)
from nchain_agents.errors import (
    AgentFileError,
    AgentStateError,
    HyperparameterError,
    InvalidArgumentError,
    JobsFailedError,
    KerasBackendError,
    MissingExtraError,
    NChainAgentsError,
    NotTrainedError,
    PluginWarning,
    SpaceMismatchError,
    UnknownAgentError,
)
from nchain_agents.evaluation import EvaluationResult, evaluate
from nchain_agents.experiments.sweep import SweepResult, SweepRow, sweep
from nchain_agents.experiments.tournament import TournamentResult, tournament
from nchain_agents.fused import FusedNChain
from nchain_agents.hookspecs import hookimpl
from nchain_agents.registry import AgentInfo, Registry, list_agents, load, load_agent
from nchain_agents.tabular import TabularAgent

__all__ = [
    "Agent",
    "AgentFileError",
    "AgentInfo",
    "AgentState",
    "AgentStateError",
    "EpisodeSink",
    "EpisodeStats",
    "EvaluationResult",
    "FusedNChain",
    "History",
    "HyperparameterError",
    "InvalidArgumentError",
    "JobsFailedError",
    "KerasBackendError",
    "MissingExtraError",
    "NChainAgentsError",
    "NotTrainedError",
    "PluginWarning",
    "Registry",
    "SpaceMismatchError",
    "SweepResult",
    "SweepRow",
    "TabularAgent",
    "TournamentResult",
    "UnknownAgentError",
    "evaluate",
    "hookimpl",
    "hyperparameter",
    "in_range",
    "learn_many",
    "list_agents",
    "load",
    "load_agent",
    "one_of",
    "sweep",
    "tournament",
]
