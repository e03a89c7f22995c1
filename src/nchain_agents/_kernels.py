"""The compiled (Numba) side of the tabular agents: the rules, compiled, and the fused loop.

Imported only when a tabular agent trains. :func:`compiled` turns a rule written in
:mod:`nchain_agents.tabular_rules`' style into a Numba function (once per function);
:func:`train_nchain` is the fused NChain loop that calls a compiled update and action
rule, takes its slips exactly as ``NChainEnv`` draws them (the random-stream contract
of :mod:`nchain_gym.dynamics`) and its agent draws exactly as ``TabularAgent.act``
does: a block of ``AGENT_BLOCK`` uniforms from the agent's generator, refilled whenever
fewer than two are left. Same seed, same numbers as the env loop, bit for bit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from numba import njit

from nchain_gym.dynamics import SLIP_BLOCK

AGENT_BLOCK = 256
"""Uniforms per refill of the agent's draw buffer."""

_COMPILED: dict[Callable[..., Any], Any] = {}
_LOCK = threading.Lock()


def compiled(rule: Callable[..., Any]) -> Any:
    """``rule`` compiled with ``numba.njit`` (cached on disk, GIL released), once."""
    if hasattr(rule, "py_func"):  # already a Numba function
        return rule
    with _LOCK:
        if rule not in _COMPILED:
            _COMPILED[rule] = njit(cache=True, nogil=True)(rule)
        return _COMPILED[rule]


def _train_nchain(
    table,
    update,
    action,
    params,
    epsilon,
    decay,
    episodes,
    max_steps,
    next_state,
    rewards,
    slip,
    env_rng,
    env_buf,
    env_pos,
    agent_rng,
    agent_buf,
    agent_pos,
    out_reward,
    out_length,
    out_epsilon,
):
    """Train ``episodes`` NChain episodes of ``max_steps`` steps in one compiled loop.

    ``epsilon``, ``env_pos`` and ``agent_pos`` are 1-element arrays carried across
    calls, like the two draw buffers, so that chunked calls continue one stream.
    """
    e_pos = env_pos[0]  # locals in the hot loop, written back at the end
    a_pos = agent_pos[0]
    eps = epsilon[0]
    for episode in range(episodes):
        if eps == eps:  # the agent's schedule: epsilon *= decay before each episode
            eps *= decay
        s = 0
        total = 0.0
        for _ in range(max_steps):
            if a_pos > AGENT_BLOCK - 2:
                agent_buf[:] = agent_rng.random(AGENT_BLOCK)
                a_pos = 0
            a, a_pos = action(table, s, eps, agent_buf, a_pos)
            if e_pos == 0:
                env_buf[:] = env_rng.random(SLIP_BLOCK)
                e_pos = SLIP_BLOCK
            e_pos -= 1
            taken = a ^ (1 if env_buf[e_pos] < slip else 0)
            s2 = next_state[s, taken]
            r = rewards[s, taken]
            update(table, s, a, r, s2, False, eps, params)
            total += r
            s = s2
        out_reward[episode] = total
        out_length[episode] = max_steps
        out_epsilon[episode] = eps
    env_pos[0] = e_pos
    agent_pos[0] = a_pos
    epsilon[0] = eps


# Numba's on-disk cache of a function that takes other functions lists every
# specialisation in one index, and reading that index imports the modules of all the
# functions it was ever compiled with. A plugin's rules must therefore never enter the
# cached loop (uninstalling the plugin would break every tabular agent): the built-in
# rules get the cached loop, any other rules an uncached copy (compiled once a process).
_train_builtin = njit(cache=True, nogil=True)(_train_nchain)
_train_other = njit(cache=False, nogil=True)(_train_nchain)
BUILTIN_RULES_MODULE = "nchain_agents.tabular_rules"


def train_loop(update: Any, action: Any) -> Any:
    """The fused NChain loop for these compiled rules (see :func:`_train_nchain`)."""
    builtin = all(rule.py_func.__module__ == BUILTIN_RULES_MODULE for rule in (update, action))
    return _train_builtin if builtin else _train_other
