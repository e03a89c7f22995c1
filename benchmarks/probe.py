"""Shared by the benchmarks: source text that fresh interpreters run."""

PEAK_MB = """
def peak_mb():  # VmHWM: this process's own peak (ru_maxrss counts the parent's at fork)
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) // 1024
"""
"""Defines ``peak_mb()``: the running process's peak resident memory, in MB."""
