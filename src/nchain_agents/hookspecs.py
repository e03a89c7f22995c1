"""The plugin contract of ``nchain_agents``.

A plugin is any object (usually a module) with a function marked
``@nchain_agents.hookimpl`` named ``register_agents``. Outside packages publish it
under the entry-point group ``nchain_agents`` in their ``pyproject.toml``::

    [project.entry-points.nchain_agents]
    sarsa = "nchain_sarsa"

The built-in agents are registered through this very hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from nchain_agents.base import Agent

PROJECT_NAME = "nchain_agents"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_agents(register: Callable[[str, type[Agent]], None]) -> None:
    """Register this plugin's agents by calling ``register(name, agent_class)`` for each.

    Args:
        register: call it once per agent with a kebab-case name (lowercase letters,
            digits and single hyphens, e.g. ``"keras-dqn"``) and a subclass of
            :class:`nchain_agents.Agent`. A name another plugin already took makes
            this whole plugin fail to load; it is reported, and the others still load.

    Keep the plugin module light: import heavy libraries (TensorFlow, ...) inside the
    agent's methods, not at module level, so that listing agents stays fast.
    """
