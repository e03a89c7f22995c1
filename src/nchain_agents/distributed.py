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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from nchain_agents.errors import MissingExtraError

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class JobFailure:
    """A job that still failed after its retries."""

    error: str
    attempts: int


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


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


def run_jobs(
    fn: Callable[[Any], Any],
    jobs: Sequence[Any],
    *,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    max_retries: int = 2,
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """``[fn(job) for job in jobs]`` on a backend; failures come back as ``JobFailure``.

    Args:
        fn: a module-level function (Ray pickles it by reference).
        jobs: picklable job descriptions.
        backend: ``"local"`` or ``"ray"``.
        workers: threads for the local backend.
        address: Ray cluster address; ``None`` uses ``RAY_ADDRESS`` or a local Ray.
        max_retries: extra attempts for a job that raises (or whose worker dies).
        on_result: called as ``on_result(index, result)`` in the caller's thread as
            each job finishes, in completion order.
    """
    from nchain_gym.env import is_whole_number

    check_backend(backend)
    if not is_whole_number(max_retries, 0):
        raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
    if backend == "ray":
        return _run_ray(fn, jobs, address, max_retries, on_result)
    return _run_local(fn, jobs, workers, max_retries, on_result)


def _attempt_locally(fn: Callable[[Any], Any], job: Any, max_retries: int) -> Any:
    for attempt in range(1, max_retries + 2):
        try:
            return fn(job)
        except Exception as exc:
            if attempt > max_retries:
                return JobFailure(_describe(exc), attempt)
    raise AssertionError("unreachable")


def _run_local(fn, jobs, workers, max_retries, on_result) -> list[Any]:
    results: list[Any] = [None] * len(jobs)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            pool.submit(_attempt_locally, fn, job, max_retries): i for i, job in enumerate(jobs)
        }
        try:
            for future in as_completed(futures):
                index = futures[future]
                results[index] = future.result()
                if on_result is not None:
                    on_result(index, results[index])
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results


def _run_ray(fn, jobs, address, max_retries, on_result) -> list[Any]:
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
    refs = {remote.remote(job): i for i, job in enumerate(jobs)}
    results: list[Any] = [None] * len(jobs)
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                index = refs[ref]
                try:
                    results[index] = ray.get(ref)
                except Exception as exc:
                    results[index] = JobFailure(_describe(exc), max_retries + 1)
                if on_result is not None:
                    on_result(index, results[index])
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()
            started_here = False
        raise
    finally:
        if started_here:
            ray.shutdown()
    return results
