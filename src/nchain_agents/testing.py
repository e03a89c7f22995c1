"""The agent contract as a test, for plugin authors: ``check_agent(MyAgent)``.

Runs the whole contract on real envs (NChain-v0 and FrozenLake), with tiny budgets, and
raises ``AssertionError`` naming the first promise the class breaks::

    from nchain_agents.testing import check_agent, agent_test

    def test_my_agent():
        check_agent(MyAgent)

    test_my_agent_contract = agent_test(MyAgent)   # the same, as a pytest test

Checked: the class registers (a keyword-only dataclass implementing every hook, each
hyperparameter documented); ``learn`` on NChain-v0 and FrozenLake (history, timesteps, a
finite value table of the env's shape); ``predict`` for one state, a batch and an array
of any shape, and driven by Stable-Baselines3's ``evaluate_policy`` (or, without SB3,
called the way it calls); the same seed gives the same history and values; an agent
with a fused NChain loop agrees with its env loop; a save/load round trip gives the same
values, greedy actions and history, and continues exactly as the original does (the
random stream included); and an env with other spaces is refused.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nchain_agents.base import Agent
from nchain_agents.errors import SpaceMismatchError

__all__ = ["agent_test", "check_agent"]


def _nchain(steps: int = 40, **kwargs: Any) -> Any:
    import gymnasium as gym

    import nchain_gym  # noqa: F401  (registers NChain-v0)

    return gym.make("NChain-v0", max_episode_steps=steps, **kwargs)


def _frozen_lake() -> Any:
    import gymnasium as gym

    return gym.make("FrozenLake-v1", is_slippery=False, max_episode_steps=30)


@contextlib.contextmanager
def _registered(agent_class: type[Agent]) -> Iterator[None]:
    """Register the class for the check if it is not registered yet (saving needs a name)."""
    from nchain_agents.hookspecs import hookimpl
    from nchain_agents.registry import class_problem, default_registry

    problem = class_problem(agent_class)
    assert problem is None, f"{agent_class.__qualname__} cannot be registered: {problem}"
    if agent_class.__dict__.get("registered_name") is not None:
        yield
        return

    class Plugin:
        @hookimpl
        def register_agents(self, register: Callable[[str, type[Agent]], None]) -> None:
            register("agent-under-check", agent_class)

    registry = default_registry()
    names = registry.add_plugin(Plugin(), name="nchain_agents.testing", distribution="check")
    assert names == ["agent-under-check"], f"registering {agent_class.__qualname__} failed"
    try:
        yield
    finally:
        registry.remove_plugin("nchain_agents.testing")


def _same(a: Agent, b: Agent, what: str, exact: bool = True) -> None:
    assert a.history == b.history, f"{what}: the training histories differ"
    if exact:
        np.testing.assert_array_equal(a.q_values(), b.q_values(), err_msg=what)
    else:
        np.testing.assert_allclose(a.q_values(), b.q_values(), atol=1e-4, err_msg=what)


def check_agent(
    agent_class: type[Agent], hyperparameters: dict[str, Any] | None = None, *, exact: bool = True
) -> None:
    """Check that ``agent_class`` keeps the whole agent contract (see the module docstring).

    Args:
        agent_class: the class to check (registered or not).
        hyperparameters: keyword values for every agent built (e.g. a small network).
        exact: values must repeat bit for bit (``False`` allows float rounding, for
            agents whose two loops run different float kernels).

    Raises:
        AssertionError: naming the first broken promise.
    """
    hp = dict(hyperparameters or {})
    with _registered(agent_class):

        def make(seed: int = 0) -> Agent:
            return agent_class(seed=seed, **hp)

        for name, (_, doc) in agent_class.hyperparameter_docs().items():
            assert isinstance(doc, str) and doc.strip(), f"hyperparameter {name!r} has no doc"
        assert agent_class.summary(), "the class needs a docstring (its first line is shown)"

        # learn on NChain and on FrozenLake
        agent = make().learn(_nchain(), 3)
        assert agent.learn(_nchain(), 1) is agent, "learn must return the agent itself"
        assert len(agent.history) == 4 and agent.num_timesteps == 160, "history/timesteps"
        q = agent.q_values()
        assert q.shape == (5, 2) and np.isfinite(q).all(), f"q_values() gave {q!r}"
        lake = make().learn(_frozen_lake(), 3)
        assert lake.q_values().shape == (16, 4), "FrozenLake: 16 states x 4 actions"

        # predict: one state, batches, any shape, SB3's call pattern
        action, state = agent.predict(0, deterministic=True)
        assert state is None and np.shape(action) == () and int(action) in (0, 1)
        assert agent.predict(np.array([0, 3, 4]))[0].shape == (3,)
        assert agent.predict(np.zeros((2, 2), dtype=np.int64), deterministic=True)[0].shape == (
            2,
            2,
        )
        _check_sb3(agent)

        # same seed, same result; both loops agree
        again = make().learn(_nchain(), 3)
        again.learn(_nchain(), 1)
        _same(agent, again, "the same seed gave a different result", exact)
        from nchain_agents.fused import FusedNChain

        if isinstance(agent, FusedNChain):
            env_loop = make(5).learn(_nchain(60, slip=0.3), 4, loop="env")
            fused = make(5).learn(_nchain(60, slip=0.3), 4, loop="fused")
            _same(env_loop, fused, "the fused NChain loop disagrees with the env loop", exact)

        # save/load: the same agent, continuing the same way
        from nchain_agents.registry import load

        with tempfile.TemporaryDirectory() as tmp:
            loaded = load(agent.save(Path(tmp) / "agent.zip"))
        assert type(loaded) is agent_class, "load gave another class"
        assert loaded.get_hyperparameters() == agent.get_hyperparameters()
        _same(agent, loaded, "the loaded agent differs")
        states = np.arange(5)
        np.testing.assert_array_equal(
            loaded.predict(states, deterministic=True)[0],
            agent.predict(states, deterministic=True)[0],
            err_msg="greedy actions differ after loading",
        )
        agent.learn(_nchain(), 2)
        loaded.learn(_nchain(), 2)
        _same(agent, loaded, "training after load differs from training straight on", exact)

        # other spaces are refused
        try:
            agent.learn(_nchain(n=7), 1)
        except SpaceMismatchError:
            pass
        else:
            raise AssertionError("an env with other spaces was not refused")


def _check_sb3(agent: Agent) -> None:
    """Drive ``predict`` as Stable-Baselines3's ``evaluate_policy`` does."""
    try:
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.evaluation import evaluate_policy
    except ImportError:  # without SB3: the same call it makes
        actions, state = agent.predict(
            np.array([0, 1]), state=None, episode_start=np.ones(2, dtype=bool), deterministic=True
        )
        assert actions.shape == (2,) and state is None
        return
    venv = make_vec_env(lambda: _nchain(), n_envs=2, seed=0)
    try:
        rewards, lengths = evaluate_policy(
            agent, venv, n_eval_episodes=2, return_episode_rewards=True
        )
    finally:
        venv.close()
    assert np.shape(rewards) == (2,) and np.array_equal(lengths, [40, 40]), (
        "evaluate_policy could not drive it"
    )


def agent_test(agent_class: type[Agent], **kwargs: Any) -> Callable[[], None]:
    """``check_agent(agent_class, ...)`` as a test function pytest collects."""

    def test() -> None:
        check_agent(agent_class, **kwargs)

    test.__name__ = f"test_{agent_class.__name__}_keeps_the_agent_contract"
    return test
