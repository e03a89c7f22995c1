"""Running independent jobs (tournament batches, sweep cells) locally or on Ray.

``run_jobs`` is the one place that knows about backends:

- ``"local"``: a thread pool on this machine (the compiled training loops release the GIL);
- ``"ray"``: one Ray task per job, on a local Ray (default) or a cluster
  (``address=...`` or ``RAY_ADDRESS``). Install with ``pip install "nchain-rl[ray]"``.

Jobs get their seeds from their own description, never from the order in which they
run, so both backends return the same numbers. A job that raises is retried up to
``max_retries`` times (on Ray, a worker process that dies is retried too); one that
still fails comes back as a :class:`JobFailure` instead of taking the others down.
Ctrl-C cancels what is outstanding and shuts down a Ray that this call started.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nchain_agents.errors import InvalidArgumentError, MissingExtraError

BACKENDS = ("local", "ray")
MAX_WORKERS = 64
"""Most worker threads a local run may use (each runs a whole training)."""


@dataclass(frozen=True)
class JobFailure:
    """A job that still failed after its retries."""

    error: str
    attempts: int


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise InvalidArgumentError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingExtraError('the ray backend needs Ray: pip install "nchain-rl[ray]"') from None
    return ray


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    # Ray wraps the worker's traceback; its last line is the original error.
    return lines[-1].strip() if lines else type(exc).__name__


def check_workers(workers: Any) -> int:
    """``workers`` as an int in ``1..MAX_WORKERS``, or an :class:`InvalidArgumentError`."""
    from nchain_gym.dynamics import is_whole_number

    if not is_whole_number(workers, 1) or workers > MAX_WORKERS:
        raise InvalidArgumentError(
            f"workers must be an integer from 1 to {MAX_WORKERS}, got {workers!r}"
        )
    return int(workers)


def check_timeout(timeout: Any) -> float | None:
    """``None`` or a positive, finite number of seconds."""
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not 0 < timeout < float("inf")
    ):
        raise InvalidArgumentError(f"timeout must be None or seconds > 0, got {timeout!r}")
    return float(timeout)


def run_jobs(
    fn: Callable[[Any], Any],
    jobs: Sequence[Any],
    *,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    max_retries: int = 2,
    on_result: Callable[[int, Any], None] | None = None,
    timeout: float | None = None,
) -> list[Any]:
    """``[fn(job) for job in jobs]`` on a backend; failures come back as ``JobFailure``.

    Args:
        fn: a module-level function (Ray pickles it by reference).
        jobs: picklable job descriptions.
        backend: ``"local"`` or ``"ray"``.
        workers: threads for the local backend, 1 to ``MAX_WORKERS``.
        address: Ray cluster address; ``None`` uses ``RAY_ADDRESS`` or a local Ray.
        max_retries: extra attempts for a job that raises (or whose worker dies).
        on_result: called as ``on_result(index, result)`` in the caller's thread as
            each job finishes, in completion order.
        timeout: seconds a job may run (all its attempts together); one that runs
            longer is reported as a ``JobFailure`` and the others go on. ``None``: no limit.

    Ctrl-C (``KeyboardInterrupt`` in the calling thread) returns at once: local worker
    threads are daemons that take no new job and are abandoned mid-job, Ray tasks are
    cancelled.
    """
    from nchain_gym.dynamics import is_whole_number

    check_backend(backend)
    if not is_whole_number(max_retries, 0):
        raise InvalidArgumentError(f"max_retries must be an integer >= 0, got {max_retries!r}")
    workers = check_workers(workers)
    timeout = check_timeout(timeout)
    if backend == "ray":
        return _run_ray(fn, jobs, address, max_retries, on_result, timeout)
    return _run_local(fn, jobs, workers, max_retries, on_result, timeout)


def _attempt_locally(fn: Callable[[Any], Any], job: Any, max_retries: int) -> Any:
    for attempt in range(1, max_retries + 2):
        try:
            return fn(job)
        except Exception as exc:
            if attempt > max_retries:
                return JobFailure(_describe(exc), attempt)
    raise AssertionError("unreachable")


def _run_local(fn, jobs, workers, max_retries, on_result, timeout) -> list[Any]:
    """A pool of daemon threads fed from a queue; the calling thread collects results.

    Daemon threads (not ``concurrent.futures``, whose workers are joined at exit) so
    that Ctrl-C and timeouts never wait for a running job to finish.
    """
    results: list[Any] = [None] * len(jobs)
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(jobs)):
        todo.put(index)
    finished: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
    stop = threading.Event()
    started: dict[int, float] = {}

    def work() -> None:
        while not stop.is_set():
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            started[index] = time.monotonic()
            finished.put((index, _attempt_locally(fn, jobs[index], max_retries)))

    def start_worker() -> None:
        threading.Thread(target=work, name="nchain-worker", daemon=True).start()

    for _ in range(min(workers, len(jobs))):
        start_worker()
    remaining = set(range(len(jobs)))

    def record(index: int, result: Any) -> None:
        remaining.discard(index)
        results[index] = result
        if on_result is not None:
            on_result(index, result)

    try:
        while remaining:
            try:
                index, result = finished.get(timeout=0.1)
            except queue.Empty:
                if timeout is not None:
                    now = time.monotonic()
                    for index in sorted(remaining):
                        if index in started and now - started[index] > timeout:
                            record(index, JobFailure(f"timed out after {timeout:g} s", 1))
                            start_worker()  # the stuck thread is abandoned; keep the pace
                continue
            if index in remaining:  # else: the late result of a job that timed out
                record(index, result)
    finally:
        stop.set()
    return results


def _run_ray(fn, jobs, address, max_retries, on_result, timeout) -> list[Any]:
    ray = import_ray()
    started_here = False
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        # Quiet by default: Ray's start-up warnings and info lines go to its log files.
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
        if address is None:
            options["include_dashboard"] = False
        ray.init(address=address, **options)
        started_here = True
    remote = ray.remote(max_retries=max_retries, retry_exceptions=True)(fn)
    # At most one task per CPU in flight, so that a task's time is counted from when
    # it can start (for the timeout) and a cancelled run leaves little to cancel.
    slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
    waiting = list(range(len(jobs)))
    refs: dict[Any, int] = {}
    submitted: dict[Any, float] = {}
    results: list[Any] = [None] * len(jobs)
    try:
        while waiting or refs:
            while waiting and len(refs) < slots:
                index = waiting.pop(0)
                ref = remote.remote(jobs[index])
                refs[ref] = index
                submitted[ref] = time.monotonic()
            done, _ = ray.wait(list(refs), num_returns=1, timeout=0.2)
            for ref in done:
                index = refs.pop(ref)
                submitted.pop(ref)
                try:
                    results[index] = ray.get(ref)
                except Exception as exc:
                    results[index] = JobFailure(_describe(exc), max_retries + 1)
                if on_result is not None:
                    on_result(index, results[index])
            if timeout is not None:
                now = time.monotonic()
                for ref in [r for r, t in submitted.items() if now - t > timeout]:
                    index = refs.pop(ref)
                    submitted.pop(ref)
                    ray.cancel(ref, force=True)
                    results[index] = JobFailure(f"timed out after {timeout:g} s", 1)
                    if on_result is not None:
                        on_result(index, results[index])
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
    return results
