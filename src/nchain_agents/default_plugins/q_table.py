"""``q-table``: greedy tabular Q-learning, as in the tutorial."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nchain_agents.base import hyperparameter, in_range, one_of
from nchain_agents.hookspecs import hookimpl
from nchain_agents.tabular import TabularAgent
from nchain_agents.tabular_rules import q_learning_update

UPDATE_RULE_DOC = (
    "'standard': Q += lr*(r + gamma*max Q' - Q) (the tutorial's text); 'tutorial': "
    "Q += r + lr*(gamma*max Q' - Q) (its code, which printed its tables; = standard / lr)"
)


@dataclass(kw_only=True, eq=False)
class QTableAgent(TabularAgent):
    """Greedy Q-learning on a table: no exploration beyond random moves on all-zero rows.

    Update (standard rule): ``Q[s,a] += lr * (r + gamma * max_a' Q[s',a'] - Q[s,a])``.
    ``update_rule="tutorial"`` uses the tutorial code's ``Q[s,a] += r + lr * (gamma *
    max Q[s'] - Q[s,a])``: from zeros its table is the standard one divided by ``lr``
    at every step, so both make the same decisions from the same random draws.

    Source: the tutorial's ``q_learning_with_table`` (gamma 0.95, lr 0.8, 500 episodes).
    """

    gamma: float = hyperparameter(0.95, "discount factor (tutorial: 0.95)", in_range(0, 1))
    learning_rate: float = hyperparameter(
        0.8, "step size lr (tutorial: 0.8)", in_range(0, 1, low_open=True)
    )
    update_rule: str = hyperparameter("standard", UPDATE_RULE_DOC, one_of("standard", "tutorial"))

    update_step = staticmethod(q_learning_update)

    def rule_parameters(self) -> np.ndarray:
        return np.array(
            [self.gamma, self.learning_rate, 1.0 if self.update_rule == "tutorial" else 0.0]
        )


@hookimpl
def register_agents(register):
    register("q-table", QTableAgent)
