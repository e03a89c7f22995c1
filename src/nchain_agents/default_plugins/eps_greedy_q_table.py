"""``eps-greedy-q-table``: tabular Q-learning with decaying epsilon-greedy exploration."""

from __future__ import annotations

from dataclasses import dataclass

from nchain_agents.base import hyperparameter, in_range
from nchain_agents.default_plugins.q_table import QTableAgent
from nchain_agents.hookspecs import hookimpl


@dataclass(kw_only=True, eq=False)
class EpsGreedyQTableAgent(QTableAgent):
    """Q-learning with epsilon-greedy exploration: the tutorial's tournament winner.

    As ``q-table``, plus: at the start of every episode ``eps *= epsilon_decay``; at
    each step a uniformly random action when ``U(0,1) < eps`` or the state's row sums
    to 0, else ``argmax``. The first episode therefore explores with 0.5 * 0.999.

    Source: the tutorial's ``eps_greedy_q_learning_with_table`` (eps 0.5, decay 0.999,
    gamma 0.95, lr 0.8, 500 episodes).
    """

    epsilon: float = hyperparameter(0.5, "initial exploration rate (tutorial: 0.5)", in_range(0, 1))
    epsilon_decay: float = hyperparameter(
        0.999, "factor applied to epsilon at the start of each episode", in_range(0, 1)
    )


@hookimpl
def register_agents(register):
    register("eps-greedy-q-table", EpsGreedyQTableAgent)
