"""The opt-in fused NChain loop: an agent that runs NChain's dynamics itself, compiled.

An agent that also subclasses :class:`FusedNChain` and implements :meth:`learn_nchain`
is trained without calling ``env.step`` when — and only when — the env is the
registered, unmodified NChain (:meth:`nchain_gym.NChainParams.from_env`). The loop must
follow :mod:`nchain_gym.dynamics`' random-stream contract and the agent's own
env-loop draws, so that both loops give the same result from the same seed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nchain_agents.errors import InvalidArgumentError

if TYPE_CHECKING:
    from nchain_agents.history import EpisodeSink
    from nchain_gym.dynamics import NChainParams


class FusedNChain(ABC):
    """Mixin for agents with a compiled NChain training loop."""

    @abstractmethod
    def learn_nchain(
        self, params: NChainParams, episodes: int, on_episode: EpisodeSink, chunked: bool
    ) -> None:
        """Train ``episodes`` episodes of NChain(``params``) without an env.

        Like the env loop: draw the env seed with ``draw_env_seed()`` first (the env
        would be reset with it), take slips from ``SlipStream(default_rng(seed))``,
        call ``next_epsilon()`` (or apply its rule) at the start of each episode, and
        call ``on_episode(total, length, epsilon)`` after each one, stopping when it
        returns ``False``. ``chunked`` says someone watches each episode (a callback or
        a progress bar), so episodes should be handed over as they finish.
        """

    @classmethod
    def batches(cls) -> bool:
        """Whether :meth:`learn_nchain_batch` trains many agents faster than one by one.

        ``learn_many``, tournaments and sweeps hand such classes whole batches.
        Default: ``False``.
        """
        return False

    @classmethod
    def learn_nchain_batch(
        cls,
        agents: Sequence[Any],
        params: NChainParams,
        episodes: int,
        sinks: Sequence[EpisodeSink],
        chunked: bool = False,
        batch_size: int | None = None,
    ) -> None:
        """Train each of ``agents`` (all of this class) as its ``learn_nchain`` would.

        ``sinks[i]`` is agent i's ``on_episode``; ``chunked`` is as for ``learn_nchain``:
        when it is ``True`` an agent whose sink returns ``False`` stops there while the
        others go on (when ``False``, no sink ever stops). A batched implementation must
        leave every agent exactly where training it alone would (same random streams).
        ``batch_size`` caps the agents trained at once (``None``: the class chooses).
        Default: one after another.
        """
        for agent, sink in zip(agents, sinks, strict=True):
            agent.learn_nchain(params, episodes, sink, chunked)


def trains_in_batches(cls: type) -> bool:
    """Whether agents of class ``cls`` train many at once (``FusedNChain.batches()``)."""
    return issubclass(cls, FusedNChain) and cls.batches()


def nchain_params_for(agent: Any, env: Any, loop: str) -> NChainParams | None:
    """The NChain setting for a fused loop of ``agent`` on ``env``, or ``None`` (env loop).

    ``loop="auto"`` fuses when the agent can and the env is the unmodified NChain;
    ``"fused"`` insists (and says why it cannot); ``"env"`` never fuses.
    """
    from nchain_gym.dynamics import NChainParams

    if loop == "env":
        return None
    params = NChainParams.from_env(env) if isinstance(agent, FusedNChain) else None
    if loop == "fused" and params is None:
        raise InvalidArgumentError(
            "loop='fused' needs an agent with a fused NChain loop and an env made by "
            "gym.make('NChain-v0', ...) with only Gymnasium's standard wrappers; "
            f"{type(agent).__name__} with {env} does not qualify (use loop='env')"
        )
    return params
