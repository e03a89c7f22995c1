"""The conformance kit: every built-in agent and the example plugin pass it; a broken
agent does not."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from nchain_agents import AgentState, list_agents
from nchain_agents.default_plugins.q_table import QTableAgent
from nchain_agents.testing import agent_test, check_agent

ROOT = Path(__file__).resolve().parents[1]
FAST = [row.agent_class for row in list_agents(include_broken=False) if row.name != "keras-dqn"]


@pytest.mark.parametrize("agent_class", FAST, ids=lambda c: c.registered_name)
def test_built_in_agents_keep_the_contract(agent_class):
    check_agent(agent_class)


@pytest.mark.slow
def test_keras_dqn_keeps_the_contract():
    from nchain_agents.default_plugins.keras_dqn import KerasDQNAgent

    check_agent(KerasDQNAgent, {"hidden_units": 4}, exact=False)


def test_the_example_plugin_keeps_the_contract(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "plugin" / "src"))
    from nchain_sarsa import ExpectedSarsaAgent

    agent_test(ExpectedSarsaAgent)()  # not registered: the kit registers it for the check
    assert ExpectedSarsaAgent.__dict__.get("registered_name") is None
    sys.modules.pop("nchain_sarsa", None)


@dataclass(kw_only=True, eq=False)
class ForgetfulAgent(QTableAgent):
    """Saves its table but forgets its exploration state."""

    def get_state(self) -> AgentState:
        state = super().get_state()
        state.arrays["table"] = np.zeros_like(state.arrays["table"])
        return state


@dataclass(kw_only=True, eq=False)
class UndocumentedAgent(QTableAgent):
    """A hyperparameter without a doc."""

    speed: float = 1.0


class NotADataclass(QTableAgent):
    """Inherits the fields but is not a dataclass itself."""


@pytest.mark.parametrize(
    ("agent_class", "pattern"),
    [
        (ForgetfulAgent, "the loaded agent differs"),
        (UndocumentedAgent, "hyperparameter 'speed' has no doc"),
        (NotADataclass, "not a dataclass itself"),
    ],
)
def test_broken_agents_fail_the_kit(agent_class, pattern):
    with pytest.raises(AssertionError, match=pattern):
        check_agent(agent_class)
