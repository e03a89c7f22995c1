"""The tabular agents' math, written once as plain functions in Numba's subset of Python.

:class:`nchain_agents.tabular.TabularAgent` compiles them (``numba.njit``) the first
time they are needed, so importing this module (or a plugin built on it) costs nothing.
Both training loops, the env loop and the fused NChain loop, call the same compiled
functions. A plugin writes its own rules with the same signatures:

Each rule is compiled on its own: it may call NumPy and other ``numba.njit`` functions,
not plain Python helpers.

- ``update(table, s, a, r, s2, terminated, epsilon, params) -> None``: learn from one
  transition in place; ``params`` is the agent's ``rule_parameters()`` (float64 array),
  ``epsilon`` the episode's exploration rate (``nan`` when the agent has none);
- ``action(table, s, epsilon, draws, pos) -> (action, pos)``: choose an action from
  the uniforms ``draws[pos], draws[pos + 1], ...`` (at most two per call) and return
  the position after the ones used.
"""

from __future__ import annotations

# Each rule is compiled on its own, so it calls no Python helper (Numba could not); row
# reductions are loops, which on 2-element rows are several times faster in Numba than
# np.argmax / np.max / ndarray.sum on a row view.


def tutorial_action(table, s, epsilon, draws, pos):
    """The tutorial's action choice: epsilon-greedy plus a random move on a zero row.

    With a (non-NaN) ``epsilon``, one uniform decides exploration (``U < epsilon``). A
    random action (from the next uniform) is taken when exploring or when the state's
    row sums to 0 (untried); otherwise ``argmax Q[s]``, ties to the lowest action.
    """
    best = 0
    best_value = table[s, 0]
    total = best_value
    for a in range(1, table.shape[1]):
        value = table[s, a]
        total += value
        if value > best_value:
            best, best_value = a, value
    go_random = False
    if epsilon == epsilon:  # not NaN: this agent explores
        go_random = draws[pos] < epsilon
        pos += 1
    if not go_random and total == 0.0:
        go_random = True
    if go_random:
        return int(draws[pos] * table.shape[1]), pos + 1
    return best, pos


def naive_sum_update(table, s, a, r, s2, terminated, epsilon, params):
    """``T[s, a] += r``: sum the raw rewards, no discounting, no bootstrapping."""
    table[s, a] += r


def q_learning_update(table, s, a, r, s2, terminated, epsilon, params):
    """One Q-learning step; ``params = (gamma, lr, tutorial_rule)``.

    Standard: ``Q[s,a] += lr * (r + gamma * max Q[s'] - Q[s,a])``.
    Tutorial (``params[2] != 0``): ``Q[s,a] += r + lr * (gamma * max Q[s'] - Q[s,a])``
    (its table is the standard one divided by ``lr``). A terminal ``s'`` contributes no
    future value.
    """
    gamma, lr = params[0], params[1]
    best = table[s2, 0]
    for b in range(1, table.shape[1]):
        if table[s2, b] > best:
            best = table[s2, b]
    future = 0.0 if terminated else gamma * best
    if params[2] != 0.0:
        table[s, a] += r + lr * (future - table[s, a])
    else:
        table[s, a] += lr * (r + future - table[s, a])
