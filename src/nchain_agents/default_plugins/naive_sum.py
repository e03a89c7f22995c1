"""``naive-sum``: the tutorial's first agent, a table of summed raw rewards."""

from __future__ import annotations

from dataclasses import dataclass

from nchain_agents.hookspecs import hookimpl
from nchain_agents.tabular import TabularAgent
from nchain_agents.tabular_rules import naive_sum_update


@dataclass(kw_only=True, eq=False)
class NaiveSumAgent(TabularAgent):
    """Sums the raw reward of each state-action pair and acts greedily on the sums.

    Update: ``T[s, a] += r`` (no discount, no look-ahead). Greedy ``argmax`` play,
    with a uniformly random action while the current state's row sums to 0.
    It learns that BACKWARD pays at once and rarely finds the far end of the chain.

    Source: the "naive sum of rewards" agent of the classic Keras/NChain Q-learning
    tutorial (adventuresinmachinelearning.com); default budget 500 episodes.
    """

    update_step = staticmethod(naive_sum_update)


@hookimpl
def register_agents(register):
    register("naive-sum", NaiveSumAgent)
