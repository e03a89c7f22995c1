"""``nchain``: the command line. Parsing and presentation only; the work is library calls."""

from __future__ import annotations

import sys

from nchain_agents.cli.commands import UserError
from nchain_agents.cli.parser import build_parser

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nchain`` command; returns the exit code."""
    from nchain_agents.errors import NChainAgentsError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("nchain: interrupted; no output file was left half-written", file=sys.stderr)
        return 130
    except (UserError, NChainAgentsError, ValueError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"nchain {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
