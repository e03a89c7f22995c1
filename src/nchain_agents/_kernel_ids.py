"""Update-rule identifiers shared by the agent classes and the compiled kernels.

Kept apart from :mod:`nchain_agents._kernels` so that listing agents does not import Numba.
"""

NAIVE_SUM = 0
Q_LEARNING = 1
