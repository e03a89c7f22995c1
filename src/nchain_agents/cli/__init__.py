"""``nchain``: the command line. Parsing and presentation only; the work is library calls."""

from __future__ import annotations

import contextlib
import sys

from nchain_agents.cli.options import UserError
from nchain_agents.cli.parser import build_parser

__all__ = ["build_parser", "main"]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= 500 else line[:497] + "..."


def _silence_stdout() -> None:
    """After stdout failed (closed pipe, full disk), keep Python's exit-time flush quiet."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, AttributeError, ValueError):
        pass


def _exit_now_if_workers_run(code: int) -> None:
    """Leave at once if abandoned worker threads still run a job.

    They are daemons and take no new job, but one may be deep in compiled code holding a
    library lock (Numba's compiler, say) that the interpreter's own shutdown would wait
    for: the work is being thrown away anyway, and every output is either complete or
    not there, so the process ends here.
    """
    import os
    import threading

    if any(t.name == "nchain-worker" and t.is_alive() for t in threading.enumerate()):
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()
        os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nchain`` command; returns the exit code.

    Exit status: 0 done; 1 the work ran but something failed (a sweep cell, an output
    that could not be written); 2 bad input (one line on stderr); 130 interrupted.
    Anything else is a bug and shows its traceback.
    """
    from nchain_agents.errors import JobsFailedError, NChainAgentsError

    parser = build_parser()
    args = parser.parse_args(argv)
    if sys.stdout is None:
        print(f"nchain {args.command}: error: standard output is closed", file=sys.stderr)
        return 2
    try:
        code = args.func(args)
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        print("nchain: interrupted; no output file was left half-written", file=sys.stderr)
        _exit_now_if_workers_run(130)
        return 130
    except JobsFailedError as exc:  # the input was fine; the work failed
        print(f"nchain {args.command}: failed: {_one_line(exc)}", file=sys.stderr)
        return 1
    except (UserError, NChainAgentsError) as exc:
        print(f"nchain {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # stdout closed or full, an unwritable output, ...
        _silence_stdout()
        print(f"nchain {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
