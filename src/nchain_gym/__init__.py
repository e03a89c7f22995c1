"""NChain-v0 for Gymnasium 1.x.

Importing this package registers ``NChain-v0`` (idempotently). Once the
distribution is installed, ``gym.make("NChain-v0")`` works without importing it:
a start-up hook registers the id the first time ``gymnasium`` is imported
(set ``NCHAIN_GYM_NO_AUTOREGISTER=1`` to switch that off).
"""

from __future__ import annotations

import gymnasium

from nchain_gym.dynamics import (
    ACTION_NAMES,
    BACKWARD,
    FORWARD,
    SLIP_BLOCK,
    NChainParams,
    SlipStream,
    outcome,
    outcome_table,
    transition_table,
)
from nchain_gym.env import NChainEnv
from nchain_gym.solver import EpisodeOptimum, Solution, episode_optimum, policy_return, solve
from nchain_gym.vector import NChainVectorEnv

__all__ = [
    "ACTION_NAMES",
    "BACKWARD",
    "ENV_ID",
    "FORWARD",
    "MAX_EPISODE_STEPS",
    "SLIP_BLOCK",
    "EpisodeOptimum",
    "NChainEnv",
    "NChainParams",
    "NChainVectorEnv",
    "SlipStream",
    "Solution",
    "episode_optimum",
    "outcome",
    "outcome_table",
    "policy_return",
    "register",
    "solve",
    "transition_table",
]

__version__ = "0.2.0"

ENV_ID = "NChain-v0"
MAX_EPISODE_STEPS = 1000


def register() -> None:
    """Register ``NChain-v0`` with Gymnasium unless it is already there."""
    if ENV_ID in gymnasium.registry:
        return
    gymnasium.register(
        id=ENV_ID,
        entry_point="nchain_gym.env:NChainEnv",
        vector_entry_point="nchain_gym.vector:NChainVectorEnv",
        max_episode_steps=MAX_EPISODE_STEPS,
    )


register()
