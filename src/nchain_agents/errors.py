"""Exceptions of ``nchain_agents``: each names the bad value and what is allowed."""

from __future__ import annotations

from typing import Any


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, so that an error message stays one line."""
    try:
        text = repr(value)
    except ValueError:  # an int too large to print
        text = f"<{type(value).__name__} too large to print>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class NChainAgentsError(Exception):
    """Base class of every error this package raises on purpose."""


class UnknownAgentError(NChainAgentsError, KeyError):
    """No agent is registered under the requested name."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class InvalidArgumentError(NChainAgentsError, ValueError):
    """An argument of a library call is out of range or of the wrong kind."""


class HyperparameterError(NChainAgentsError, ValueError):
    """A hyperparameter has an unknown name or a value outside its range."""


class SpaceMismatchError(NChainAgentsError, ValueError):
    """An environment's spaces are not Discrete or differ from the agent's."""


class NotTrainedError(NChainAgentsError, RuntimeError):
    """The agent has no learned table or model yet."""


class AgentFileError(NChainAgentsError, ValueError):
    """A saved agent file is unreadable, damaged, foreign, too new, or needs a missing plugin."""


class AgentStateError(NChainAgentsError, ValueError):
    """An agent holds what a saved file may not (``save`` refuses it, so ``load`` never has to)."""


class JobsFailedError(NChainAgentsError, RuntimeError):
    """Work that was started failed: a tournament's trial raised or timed out."""


class MissingExtraError(NChainAgentsError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class KerasBackendError(NChainAgentsError, RuntimeError):
    """Keras is set to a backend other than TensorFlow (keras-dqn needs TensorFlow)."""


class PluginWarning(UserWarning):
    """A plugin could not be loaded; the others still were."""
