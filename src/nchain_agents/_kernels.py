"""Compiled (Numba) pieces of the tabular agents: the one place their math lives.

Both training paths call these same functions: the env path calls them once per
step from Python around a real ``env.step``, and the fused NChain path calls them
inside :func:`train_nchain`, a compiled loop whose dynamics are the env's own
``outcome_table`` and whose slips come from the same generator stream the env
would use. Same seed, same numbers, bit for bit.

Random numbers for the agent come from a block of uniforms (``AGENT_BLOCK``)
refilled from the agent's ``numpy.random.Generator`` whenever fewer than two are
left, in both paths.
"""

from __future__ import annotations

from numba import njit

from nchain_agents._kernel_ids import NAIVE_SUM
from nchain_gym.env import ENV_DRAW_BLOCK

AGENT_BLOCK = 256
"""Uniforms per refill of the agent's draw buffer."""
ENV_BLOCK = ENV_DRAW_BLOCK
"""Uniforms per refill of the fused env's slip buffer: exactly as ``NChainEnv`` draws them."""


# Row reductions are written as loops: on 2-element rows they are several times
# faster in Numba than np.argmax / np.max / ndarray.sum on a row view.


@njit(cache=True, nogil=True, inline="always")
def row_argmax_sum(table, s):
    """``(argmax Q[s], sum Q[s])``; argmax ties go to the lowest action, as np.argmax."""
    best = 0
    best_value = table[s, 0]
    total = best_value
    for a in range(1, table.shape[1]):
        value = table[s, a]
        total += value
        if value > best_value:
            best, best_value = a, value
    return best, total


@njit(cache=True, nogil=True, inline="always")
def row_max(table, s):
    """``max Q[s]``."""
    best = table[s, 0]
    for a in range(1, table.shape[1]):
        if table[s, a] > best:
            best = table[s, a]
    return best


@njit(cache=True, nogil=True, inline="always")
def choose_action(table, s, eps, explore, zero_row_rule, draws, pos):
    """The tutorial's action choice; returns ``(action, next_pos)``.

    ``if (explore and U < eps) or (zero_row_rule and sum(Q[s]) == 0)``: a uniformly
    random action, else ``argmax Q[s]`` (ties to the lowest action).
    """
    greedy, total = row_argmax_sum(table, s)
    go_random = False
    if explore:
        go_random = draws[pos] < eps
        pos += 1
    if not go_random and zero_row_rule and total == 0.0:
        go_random = True
    if go_random:
        return int(draws[pos] * table.shape[1]), pos + 1
    return greedy, pos


@njit(cache=True, nogil=True, inline="always")
def naive_sum_update(table, s, a, r):
    """``T[s, a] += r``: sum the raw rewards, no discounting, no bootstrapping."""
    table[s, a] += r


@njit(cache=True, nogil=True, inline="always")
def q_learning_update(table, s, a, r, s2, terminated, gamma, lr, tutorial_rule):
    """One Q-learning step, textbook rule or the tutorial code's rule.

    Standard: ``Q[s,a] += lr * (r + gamma * max Q[s'] - Q[s,a])``.
    Tutorial: ``Q[s,a] += r + lr * (gamma * max Q[s'] - Q[s,a])`` (its table is the
    standard one divided by ``lr``). A terminal ``s'`` contributes no future value.
    """
    future = 0.0 if terminated else gamma * row_max(table, s2)
    if tutorial_rule:
        table[s, a] += r + lr * (future - table[s, a])
    else:
        table[s, a] += lr * (r + future - table[s, a])


@njit(cache=True, nogil=True, inline="always")
def update(kind, table, s, a, r, s2, terminated, gamma, lr, tutorial_rule):
    """Dispatch to the agent's update rule."""
    if kind == NAIVE_SUM:
        naive_sum_update(table, s, a, r)
    else:
        q_learning_update(table, s, a, r, s2, terminated, gamma, lr, tutorial_rule)


@njit(cache=True, nogil=True)
def train_nchain(
    table,
    kind,
    gamma,
    lr,
    tutorial_rule,
    explore,
    zero_row_rule,
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
        if explore:
            eps *= decay
        s = 0
        total = 0.0
        for _ in range(max_steps):
            if a_pos > AGENT_BLOCK - 2:
                agent_buf[:] = agent_rng.random(AGENT_BLOCK)
                a_pos = 0
            a, a_pos = choose_action(table, s, eps, explore, zero_row_rule, agent_buf, a_pos)
            if e_pos == 0:
                env_buf[:] = env_rng.random(ENV_BLOCK)
                e_pos = ENV_BLOCK
            e_pos -= 1
            taken = a ^ (1 if env_buf[e_pos] < slip else 0)
            s2 = next_state[s, taken]
            r = rewards[s, taken]
            update(kind, table, s, a, r, s2, False, gamma, lr, tutorial_rule)
            total += r
            s = s2
        out_reward[episode] = total
        out_length[episode] = max_steps
        out_epsilon[episode] = eps
    env_pos[0] = e_pos
    agent_pos[0] = a_pos
    epsilon[0] = eps
