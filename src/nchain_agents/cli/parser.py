"""The ``nchain`` argument parser."""

from __future__ import annotations

import argparse
from typing import NoReturn

from nchain_agents.cli.commands import (
    cmd_agents,
    cmd_compare,
    cmd_evaluate,
    cmd_solve,
    cmd_sweep,
    cmd_train,
    cmd_tutorial,
)
from nchain_agents.cli.options import MAX_HORIZON, at_least, seconds
from nchain_agents.experiments.jobs import MAX_WORKERS

_positive = at_least(1)
_non_negative = at_least(0)
_seed = at_least(0, 2**128 - 1)
_jobs = at_least(1, MAX_WORKERS)
_horizon = at_least(0, MAX_HORIZON)

EPILOG = """examples:
  nchain agents
  nchain train eps-greedy-q-table --seed 0 -o eps.zip --plot curve.png
  nchain train keras-dqn --episodes 300 --set learning_rate=0.002
  nchain evaluate eps.zip --episodes 20
  nchain compare                       # the tutorial's tournament, 100 trials
  nchain compare q-table keras-dqn --trials 10 --json result.json --plot result.png
  nchain solve --slip 0.1 --gamma 0.9
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _backend_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="where trials run (default local)",
    )
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)")
    p.add_argument(
        "--timeout",
        type=seconds,
        metavar="SECONDS",
        help="stop waiting for a job (a batch of trials, a sweep cell) after this long",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nchain",
        description="NChain-v0 and its agents: train, evaluate, run the tutorial's tournament, solve.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, help_text: str, examples: str):
        p = sub.add_parser(
            name, help=help_text, description=help_text, epilog="examples:\n" + examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        p.add_argument(
            "--json",
            nargs="?",
            const="-",
            metavar="FILE",
            help="JSON output to FILE (or stdout with no FILE)",
        )
        return p

    p = command(
        "agents", "list the registered agents and any broken plugins", "  nchain agents --json\n"
    )
    p.set_defaults(func=cmd_agents)

    p = command(
        "train", "train an agent, save it and show its Q-table beside the exact Q*",
        "  nchain train q-table --seed 1\n  nchain train keras-dqn --episodes 200 -o dqn.zip --plot dqn.png\n",
    )  # fmt: skip
    p.add_argument("agent", help="registry name (see `nchain agents`)")
    p.add_argument("--env", default="NChain-v0", help="Gymnasium env id (default NChain-v0)")
    p.add_argument(
        "--episodes", type=_non_negative, help="training episodes (default: the agent's)"
    )
    p.add_argument("--seed", type=_seed, default=0, help="seed (default 0)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a hyperparameter, repeatable",
    )
    p.add_argument(
        "--loop",
        choices=("auto", "env", "fused"),
        default="auto",
        help="training loop: a real env, NChain fused into compiled code, or auto (default)",
    )
    p.add_argument("-o", "--output", help="agent file to write (default AGENT.zip)")
    p.add_argument("--plot", metavar="FILE.png", help="write the training curve")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(func=cmd_train)

    p = command(
        "evaluate",
        "play a saved agent greedily and report its returns",
        "  nchain evaluate q-table.zip --episodes 20\n",
    )
    p.add_argument("file", help="a file written by `nchain train` or agent.save()")
    p.add_argument("--env", default="NChain-v0", help="Gymnasium env id (default NChain-v0)")
    p.add_argument("--episodes", type=_positive, default=10, help="episodes (default 10)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the first reset (default 0)")
    p.set_defaults(func=cmd_evaluate)

    p = command(
        "compare", "the tutorial's tournament: train each agent per trial, one greedy game each",
        "  nchain compare\n  nchain compare --all\n"
        "  nchain compare naive-sum eps-greedy-q-table --trials 300 --jobs 2 --plot t.png\n",
    )  # fmt: skip
    p.add_argument("agents", nargs="*", help="registry names (default: the three tabular agents)")
    p.add_argument(
        "--all",
        action="store_true",
        help="every built-in learner: naive-sum q-table eps-greedy-q-table keras-dqn",
    )
    p.add_argument("--trials", type=_positive, default=100, help="trials (default 100)")
    p.add_argument(
        "--episodes", type=_non_negative, help="training episodes per agent (default: each agent's)"
    )
    p.add_argument("--seed", type=_seed, default=0, help="seed (default 0)")
    p.add_argument(
        "--jobs", type=_jobs, default=2, help=f"worker threads, at most {MAX_WORKERS} (default 2)"
    )
    p.add_argument("--env", default="NChain-v0", help="Gymnasium env id (default NChain-v0)")
    p.add_argument(
        "--batch-size",
        type=_positive,
        help="most agents of one kind trained at once in a batched loop "
        "(default: chosen from the trials and the memory available)",
    )
    p.add_argument("--plot", metavar="FILE.png", help="write wins and game totals with CIs")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    _backend_arguments(p)
    p.set_defaults(func=cmd_compare)

    p = command(
        "sweep", "agents x hyperparameter grid x env parameters x seeds, locally or on Ray",
        "  nchain sweep q-table eps-greedy-q-table --grid learning_rate=0.5,0.8 \\\n"
        "      --env-grid slip=0.1,0.2 --seeds 0 1 2 --trials 20 --backend ray\n"
        "  nchain sweep --config sweep.toml --json sweep.json --plot sweep.png\n",
    )  # fmt: skip
    p.add_argument("agents", nargs="*", help="registry names (or `agents` in --config)")
    p.add_argument(
        "--config", metavar="FILE.toml", help="agents, grid, env_grid, seeds, trials, episodes"
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="hyperparameter values, repeatable",
    )
    p.add_argument(
        "--env-grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="env keyword values, repeatable",
    )
    p.add_argument("--seeds", type=_seed, nargs="+", help="one cell per seed (default 0)")
    p.add_argument("--trials", type=_positive, help="trials per cell (default 10)")
    p.add_argument(
        "--episodes", type=_non_negative, help="training episodes (default: each agent's)"
    )
    p.add_argument("--env", default="NChain-v0", help="Gymnasium env id (default NChain-v0)")
    p.add_argument(
        "--jobs", type=_jobs, default=2, help="worker threads for the local backend (default 2)"
    )
    p.add_argument(
        "--retries",
        type=_non_negative,
        default=2,
        help="extra attempts for a failing cell (default 2)",
    )
    p.add_argument("--plot", metavar="FILE.png", help="write mean game totals per cell")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    _backend_arguments(p)
    p.set_defaults(func=cmd_sweep)

    p = command(
        "tutorial",
        "reproduce the whole Q-learning tutorial as one offline HTML page (about a minute)",
        "  nchain tutorial -o tutorial.html\n  nchain tutorial --quick -o quick.html\n",
    )
    p.add_argument(
        "-o", "--output", default="tutorial.html", help="the page to write (default tutorial.html)"
    )
    p.add_argument("--seed", type=_seed, default=0, help="seed of every experiment (default 0)")
    p.add_argument("--quick", action="store_true", help="small budgets: a page in seconds")
    p.add_argument("--force", action="store_true", help="replace an existing page")
    p.set_defaults(func=cmd_tutorial)

    p = command(
        "solve",
        "exact Q*, V*, optimal policy and expected return by value iteration",
        "  nchain solve --n 10 --slip 0.1\n",
    )
    p.add_argument("--n", type=at_least(2, 10_000_000), default=5, help="chain length (default 5)")
    p.add_argument("--slip", type=float, default=0.2, help="slip probability (default 0.2)")
    p.add_argument("--small", type=float, default=2.0, help="BACKWARD reward (default 2)")
    p.add_argument("--large", type=float, default=10.0, help="reward at the end (default 10)")
    p.add_argument("--gamma", type=float, default=0.95, help="discount (default 0.95)")
    p.add_argument(
        "--horizon",
        type=_horizon,
        default=1000,
        help="steps for the expected return (default 1000)",
    )
    p.add_argument(
        "--seed", type=_seed, default=0, help="accepted for uniformity; solving is exact"
    )
    p.set_defaults(func=cmd_solve)
    return parser
