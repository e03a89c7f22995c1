"""Sizes an agent may have: the same limits when it learns, when it is saved and loaded.

They are far above what NChain or the toy-text environments need, and low enough that
any file the loader accepts loads in bounded memory (about 1 GB at the very most).
Because ``learn`` refuses what ``load`` would refuse, a file that ``save`` writes always
loads again.
"""

from __future__ import annotations

MAX_STATES = 1_000_000
"""Observation space size."""
MAX_ACTIONS = 1_000
"""Action space size."""
MAX_TABLE_CELLS = 4_000_000
"""``n_states * n_actions``: a float64 table of at most 32 MB."""
MAX_HISTORY_EPISODES = 1_000_000
"""Episodes a saved training history may hold."""
MAX_NETWORK_PARAMETERS = 2_000_000
"""Weights of a neural agent's network (8 MB as float32)."""
MAX_FILE_BYTES = 256 << 20
"""Size of a saved agent file on disk."""
MAX_ENTRY_BYTES = 64 << 20
"""One entry of a saved agent file, uncompressed."""
MAX_TOTAL_BYTES = 192 << 20
"""All entries of a saved agent file, uncompressed."""
MAX_MANIFEST_BYTES = 1 << 20
MAX_JSON_DEPTH = 32


def space_problem(n_states: int, n_actions: int) -> str | None:
    """Why an agent may not have these space sizes, or ``None``."""
    if not 1 <= n_states <= MAX_STATES:
        return f"{n_states} states (agents handle 1 to {MAX_STATES:,})"
    if not 1 <= n_actions <= MAX_ACTIONS:
        return f"{n_actions} actions (agents handle 1 to {MAX_ACTIONS:,})"
    if n_states * n_actions > MAX_TABLE_CELLS:
        return (
            f"{n_states} states x {n_actions} actions (agents handle at most "
            f"{MAX_TABLE_CELLS:,} state-action pairs)"
        )
    return None
