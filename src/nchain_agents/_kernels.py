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
import types
from collections.abc import Callable
from typing import Any

from numba import njit

from nchain_agents import tabular_rules as rules
from nchain_gym.dynamics import SLIP_BLOCK

AGENT_BLOCK = 256
"""Uniforms per refill of the agent's draw buffer."""

_COMPILED: dict[Callable[..., Any], Any] = {}
_LOOPS: dict[tuple[Any, Any], Any] = {}
_LOCK = threading.RLock()


def compiled(rule: Callable[..., Any]) -> Any:
    """``rule`` compiled with ``numba.njit`` (cached on disk, GIL released), once.

    Compiled ``inline="always"``: the fused loop inlines it, so a rule costs what the
    same lines written in the loop would.
    """
    if hasattr(rule, "py_func"):  # already a Numba function
        return rule
    with _LOCK:
        if rule not in _COMPILED:
            _COMPILED[rule] = njit(cache=True, nogil=True, inline="always")(rule)
        return _COMPILED[rule]


def _train_nchain(
    table,
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

    ``UPDATE`` and ``ACTION`` are the rules (globals bound per rule pair, see
    :func:`train_loop`). ``epsilon``, ``env_pos`` and ``agent_pos`` are 1-element arrays
    carried across calls, like the two draw buffers, so chunked calls continue one stream.
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
            a, a_pos = ACTION(table, s, eps, agent_buf, a_pos)
            if e_pos == 0:
                env_buf[:] = env_rng.random(SLIP_BLOCK)
                e_pos = SLIP_BLOCK
            e_pos -= 1
            taken = a ^ (1 if env_buf[e_pos] < slip else 0)
            s2 = next_state[s, taken]
            r = rewards[s, taken]
            UPDATE(table, s, a, r, s2, False, eps, params)
            total += r
            s = s2
        out_reward[episode] = total
        out_length[episode] = max_steps
        out_epsilon[episode] = eps
    env_pos[0] = e_pos
    agent_pos[0] = a_pos
    epsilon[0] = eps


# The built-in rules share one loop cached on disk; its update tells them apart by their
# parameters (naive-sum takes none, Q-learning three), which costs nothing per step.
_naive_sum = compiled(rules.naive_sum_update)
_q_learning = compiled(rules.q_learning_update)


@njit(cache=True, nogil=True, inline="always")
def _builtin_update(table, s, a, r, s2, terminated, epsilon, params):
    if params.shape[0] == 0:
        _naive_sum(table, s, a, r, s2, terminated, epsilon, params)
    else:
        _q_learning(table, s, a, r, s2, terminated, epsilon, params)


UPDATE = _builtin_update
ACTION = compiled(rules.tutorial_action)
_train_builtin = njit(cache=True, nogil=True)(_train_nchain)


def train_loop(update_rule: Callable[..., Any], action_rule: Callable[..., Any], params):
    """``(loop, params)``: the fused loop for these rules, and the parameters it takes.

    The built-in rules run in the shared loop cached on disk. Any other pair gets its
    own copy of the loop with those rules inlined, compiled once per process and never
    written to the disk cache (so no plugin's code ends up in a cache the built-ins
    read: uninstalling a plugin can never break them).
    """
    builtin_sizes = {rules.naive_sum_update: 0, rules.q_learning_update: 3}
    if builtin_sizes.get(update_rule) == len(params) and action_rule is rules.tutorial_action:
        return _train_builtin, params
    key = (update_rule, action_rule)
    with _LOCK:
        if key not in _LOOPS:
            scope = {**globals(), "UPDATE": compiled(update_rule), "ACTION": compiled(action_rule)}
            code = _train_nchain.__code__
            _LOOPS[key] = njit(nogil=True)(types.FunctionType(code, scope, "train_nchain"))
        return _LOOPS[key], params
