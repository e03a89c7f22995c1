"""``nchain``: the command line. Parsing and presentation only; the work is library calls."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

EPILOG = """examples:
  nchain agents
  nchain train eps-greedy-q-table --seed 0 -o eps.zip --plot curve.png
  nchain train keras-dqn --episodes 300 --set learning_rate=0.002
  nchain evaluate eps.zip --episodes 20
  nchain compare                       # the tutorial's tournament, 100 trials
  nchain compare q-table keras-dqn --trials 10 --json result.json --plot result.png
  nchain solve --slip 0.1 --gamma 0.9
"""


class UserError(Exception):
    """Bad input: reported as one line on stderr, exit code 2."""


# -- small helpers ----------------------------------------------------------------------


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _emit_json(data: Any, target: str) -> None:
    """Write JSON to stdout (``-``) or, atomically, to a file."""
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    if target == "-":
        sys.stdout.write(text)
        return
    from nchain_agents.files import atomic_write

    atomic_write(target, lambda handle: handle.write(text.encode()))
    _console(stderr=True).print(f"wrote {target}")


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _parse_settings(pairs: list[str]) -> dict[str, Any]:
    settings = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set takes key=value, got {pair!r}")
        settings[key.strip()] = _parse_value(raw.strip())
    return settings


def _make_env(env_id: str, **kwargs: Any):
    import gymnasium as gym

    import nchain_gym  # noqa: F401  (registers NChain-v0)

    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as exc:
        known = [name for name in gym.registry if isinstance(name, str)]
        close = difflib.get_close_matches(env_id, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UserError(f"cannot make env {env_id!r}: {exc}{hint}") from None


def _optimal(env, gamma: float = 0.95) -> tuple[Any, float | None, int | None]:
    """``(Q*, optimal expected episode return, horizon)`` if the env has a model."""
    from nchain_gym import policy_return, solve

    horizon = env.spec.max_episode_steps if env.spec is not None else None
    if horizon is None or not isinstance(getattr(env.unwrapped, "P", None), dict):
        return None, None, horizon
    try:
        solution = solve(env, gamma=gamma)
        return solution, policy_return(env, solution.policy, horizon=horizon), horizon
    except (ValueError, TypeError):
        return None, None, horizon


def _check_output(path: str | None, force: bool) -> None:
    if path and path != "-" and Path(path).exists() and not force:
        raise UserError(f"{path} exists; pass --force to replace it")


# -- commands ---------------------------------------------------------------------------


def cmd_agents(args: argparse.Namespace) -> int:
    from nchain_agents import list_agents

    rows = list_agents()
    if args.json:
        data = [
            {
                "name": row.name,
                "summary": row.summary,
                "distribution": row.distribution,
                "version": row.version,
                "plugin": row.plugin,
                "error": row.error,
            }
            for row in rows
        ]
        _emit_json(data, args.json)
        return 0
    from rich.table import Table

    table = Table(title="nchain agents")
    for column in ("name", "summary", "provided by"):
        table.add_column(column)
    for row in rows:
        source = f"{row.distribution or '?'} {row.version or ''}".strip()
        if row.ok:
            table.add_row(row.name, row.summary, source)
        else:
            table.add_row(f"[red]{row.plugin}[/]", f"[red]broken: {row.error}[/]", source)
    _console().print(table)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from nchain_agents import load_agent
    from nchain_agents.progress import EpisodeProgress

    output = args.output or f"{args.agent}.zip"
    _check_output(output, args.force)
    agent = load_agent(args.agent, seed=args.seed, **_parse_settings(args.set))
    env = _make_env(args.env)
    episodes = agent.default_episodes if args.episodes is None else args.episodes
    bar = EpisodeProgress(episodes, label=args.agent)
    try:
        agent.learn(env, episodes, callback=bar.update, backend=args.backend)
    finally:
        bar.close()
    saved = agent.save(output)

    gamma = float(getattr(agent, "gamma", 0.95))
    solution, optimum, horizon = _optimal(env, gamma)
    q = agent.q_values()
    curve = agent.history.mean_reward
    summary = {
        "agent": args.agent,
        "episodes": len(agent.history),
        "seed": args.seed,
        "saved": str(saved),
        "hyperparameters": agent.get_hyperparameters(),
        "q_values": q.tolist(),
        "greedy_policy": q.argmax(axis=1).tolist(),
        "q_star": None if solution is None else solution.q.tolist(),
        "optimal_policy": None if solution is None else solution.policy.tolist(),
        "last_mean_reward_per_step": float(curve[-1]) if len(curve) else None,
    }
    if args.plot:
        from nchain_agents.plots import plot_training

        level = optimum / horizon if optimum is not None and horizon else None
        plot_training(
            agent.history, args.plot, title=f"{args.agent} on {args.env}", optimal_level=level
        )
    if args.json:
        _emit_json(summary, args.json)
        return 0
    _print_q_table(q, solution)
    console = _console()
    console.print(f"saved {saved}" + (f"; plot {args.plot}" if args.plot else ""), soft_wrap=True)
    return 0


def _print_q_table(q, solution) -> None:
    from rich.table import Table

    from nchain_gym.env import ACTION_NAMES

    names = ACTION_NAMES if q.shape[1] == 2 else tuple(str(a) for a in range(q.shape[1]))
    table = Table(title="learned Q" + (" beside exact Q*" if solution is not None else ""))
    table.add_column("state", justify="right")
    for name in names:
        table.add_column(f"Q {name}", justify="right")
    if solution is not None:
        for name in names:
            table.add_column(f"Q* {name}", justify="right")
    table.add_column("greedy")
    if solution is not None:
        table.add_column("optimal")
    for s, row in enumerate(q):
        cells = [str(s), *(f"{x:.3f}" for x in row)]
        if solution is not None:
            cells += [f"{x:.3f}" for x in solution.q[s]]
        greedy = int(row.argmax())
        cells.append(names[greedy])
        if solution is not None:
            best = int(solution.policy[s])
            cells[-1] = names[greedy] if greedy == best else f"[yellow]{names[greedy]}[/]"
            cells.append(names[best])
        table.add_row(*cells)
    _console().print(table)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from nchain_agents import evaluate, load

    agent = load(args.file)
    env = _make_env(args.env)
    result = evaluate(agent, env, n_episodes=args.episodes, seed=args.seed)
    low, high = result.confidence_interval()
    _, optimum, _ = _optimal(env)
    data = {
        "file": args.file,
        "env": args.env,
        "episodes": args.episodes,
        "seed": args.seed,
        "mean": result.mean,
        "std": result.std,
        "ci95": [low, high],
        "optimal_expected_return": optimum,
        "fraction_of_optimal": None if not optimum else result.mean / optimum,
        "returns": result.returns.tolist(),
    }
    if args.json:
        _emit_json(data, args.json)
        return 0
    line = (
        f"{args.file}: mean return {result.mean:.1f} ± {result.std:.1f} (std) over "
        f"{args.episodes} episodes, 95 % CI [{low:.1f}, {high:.1f}]"
    )
    if optimum:
        line += f"; {100 * result.mean / optimum:.1f} % of the optimum {optimum:.1f}"
    _console().print(line, soft_wrap=True)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from nchain_agents import tournament
    from nchain_agents.tournament import DEFAULT_AGENTS

    agents = args.agents or list(DEFAULT_AGENTS)
    for target in (args.json, args.plot):
        _check_output(target, args.force)
    progress = Progress(
        TextColumn("[bold]tournament"), BarColumn(), MofNCompleteColumn(), TextColumn("trials"),
        TimeRemainingColumn(), console=_console(stderr=True), transient=True,
    )  # fmt: skip
    with progress:
        task = progress.add_task("trials", total=args.trials)
        result = tournament(
            agents,
            trials=args.trials,
            episodes=args.episodes,
            seed=args.seed,
            workers=args.jobs,
            env_id=args.env,
            progress=lambda done, total: progress.update(task, completed=done),
            backend=args.backend,
            address=args.address,
        )
    if args.plot:
        from nchain_agents.plots import plot_tournament

        plot_tournament(result, args.plot)
    if args.json:
        _emit_json(result.to_dict(), args.json)
        if args.json == "-":
            return 0
    _print_tournament(result)
    return 0


def _print_tournament(result) -> None:
    from rich.table import Table

    title = f"tournament: {result.trials} trials, seed {result.seed}"
    if result.optimum is not None:
        title += f", optimum {result.optimum:.1f}"
    table = Table(title=title)
    for column in ("agent", "wins", "share (95 % CI)", "mean game total (95 % CI)", "regret"):
        table.add_column(column, justify="right" if column != "agent" else "left")
    share_ci, total_ci = result.share_intervals(), result.total_intervals()
    regrets = result.regrets
    for i, name in enumerate(result.agents):
        table.add_row(
            name,
            str(result.wins[i]),
            f"{100 * result.shares[i]:.0f} % [{100 * share_ci[i, 0]:.0f}, {100 * share_ci[i, 1]:.0f}]",
            f"{result.mean_totals[i]:.1f} [{total_ci[i, 0]:.1f}, {total_ci[i, 1]:.1f}]",
            "-" if regrets is None else f"{regrets[i]:.1f}",
        )
    _console().print(table)


def _parse_grid(pairs: list[str], option: str) -> dict[str, list[Any]]:
    grid = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise UserError(f"{option} takes KEY=V1,V2,..., got {pair!r}")
        grid[key.strip()] = [_parse_value(v.strip()) for v in raw.split(",")]
    return grid


def _read_config(path: str) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            config = tomllib.load(handle)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML: {exc}") from None
    known = {"agents", "grid", "env_grid", "seeds", "trials", "episodes", "env"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise UserError(f"{path}: unknown key(s) {unknown}; allowed: {', '.join(sorted(known))}")
    return config


def cmd_sweep(args: argparse.Namespace) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from nchain_agents import sweep

    config = _read_config(args.config) if args.config else {}
    agents = args.agents or config.get("agents") or []
    if not agents:
        raise UserError("name at least one agent (arguments or `agents` in --config)")
    grid = {**config.get("grid", {}), **_parse_grid(args.grid, "--grid")}
    env_grid = {**config.get("env_grid", {}), **_parse_grid(args.env_grid, "--env-grid")}
    for target in (args.json, args.plot):
        _check_output(target, args.force)
    failures = 0
    progress = Progress(
        TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("cells"),
        TextColumn("{task.fields[failed]}"), TimeRemainingColumn(),
        console=_console(stderr=True), transient=True,
    )  # fmt: skip

    def on_cell(done: int, total: int, row: dict[str, Any]) -> None:
        nonlocal failures
        failures += row["status"] != "ok"
        progress.update(
            task, completed=done, total=total, failed=f"{failures} failed" if failures else ""
        )

    with progress:
        task = progress.add_task("cells", total=None, failed="")
        result = sweep(
            agents,
            grid=grid,
            env_grid=env_grid,
            seeds=args.seeds or config.get("seeds") or [0],
            trials=args.trials or config.get("trials", 10),
            episodes=args.episodes if args.episodes is not None else config.get("episodes"),
            env_id=config.get("env", args.env),
            backend=args.backend,
            address=args.address,
            workers=args.jobs,
            max_retries=args.retries,
            progress=on_cell,
        )
    if args.plot:
        from nchain_agents.plots import plot_sweep

        plot_sweep(result, args.plot)
    if args.json:
        _emit_json(result.to_dict(), args.json)
    if args.json != "-":
        _print_sweep(result)
    return 1 if result.failed else 0


def _cell_label(row: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in {**row["hyperparameters"], **row["env_kwargs"]}.items()]
    return " ".join(parts) or "defaults"


def _print_sweep(result) -> None:
    from rich.table import Table

    table = Table(title=f"sweep: {len(result.rows)} cells, {len(result.failed)} failed")
    for column in ("agent", "setting", "seed", "mean game total (95 % CI)", "of optimum"):
        table.add_column(column, justify="left" if column in ("agent", "setting") else "right")
    for row in result.rows:
        if row["status"] != "ok":
            table.add_row(
                row["agent"],
                _cell_label(row),
                str(row["seed"]),
                f"[red]failed: {row['error']}[/]",
                "-",
            )
            continue
        low, high = row["mean_total_ci95"]
        share = row["fraction_of_optimum"]
        table.add_row(
            row["agent"], _cell_label(row), str(row["seed"]),
            f"{row['mean_total']:.1f} [{low:.1f}, {high:.1f}]",
            "-" if share is None else f"{100 * share:.0f} %",
        )  # fmt: skip
    _console().print(table)


def cmd_solve(args: argparse.Namespace) -> int:
    from nchain_gym import FORWARD, NChainEnv, policy_return, solve
    from nchain_gym.env import ACTION_NAMES

    try:
        env = NChainEnv(n=args.n, slip=args.slip, small=args.small, large=args.large)
        solution = solve(env, gamma=args.gamma)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.horizon < 0:
        raise UserError(f"--horizon must be >= 0, got {args.horizon}")
    optimum = policy_return(env, solution.policy, horizon=args.horizon)
    forward = policy_return(env, [FORWARD] * env.n, horizon=args.horizon)
    data = {
        "n": env.n,
        "slip": env.slip,
        "small": env.small,
        "large": env.large,
        "gamma": args.gamma,
        "horizon": args.horizon,
        "q_star": solution.q.tolist(),
        "v_star": solution.v.tolist(),
        "policy": [ACTION_NAMES[a] for a in solution.policy],
        "optimal_expected_return": optimum,
        "always_forward_expected_return": forward,
    }
    if args.json:
        _emit_json(data, args.json)
        return 0
    from rich.table import Table

    table = Table(
        title=f"NChain n={env.n} slip={env.slip} small={env.small} large={env.large}, gamma={args.gamma}"
    )
    for column in ("state", "Q* FORWARD", "Q* BACKWARD", "V*", "optimal"):
        table.add_column(column, justify="right")
    for s in range(env.n):
        table.add_row(
            str(s), f"{solution.q[s, 0]:.3f}", f"{solution.q[s, 1]:.3f}", f"{solution.v[s]:.3f}",
            ACTION_NAMES[solution.policy[s]],
        )  # fmt: skip
    console = _console()
    console.print(table)
    console.print(
        f"expected {args.horizon}-step return of the optimal policy from state 0: {optimum:.1f}",
        soft_wrap=True,
    )
    return 0


# -- parsing ----------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _at_least(low: int):
    """An argparse type: a whole number >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a number >= {low}, got {value}")
        return value

    return parse


_positive = _at_least(1)
_non_negative = _at_least(0)


def _backend_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="where trials run (default local)",
    )
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)")


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
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a hyperparameter, repeatable",
    )
    p.add_argument(
        "--backend",
        choices=("auto", "env", "fused"),
        default="auto",
        help="training path (default auto)",
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
    p.add_argument("--seed", type=int, default=0, help="seed of the first reset (default 0)")
    p.set_defaults(func=cmd_evaluate)

    p = command(
        "compare", "the tutorial's tournament: train each agent per trial, one greedy game each",
        "  nchain compare\n  nchain compare naive-sum eps-greedy-q-table --trials 300 --jobs 2 --plot t.png\n",
    )  # fmt: skip
    p.add_argument("agents", nargs="*", help="registry names (default: the three tabular agents)")
    p.add_argument("--trials", type=_positive, default=100, help="trials (default 100)")
    p.add_argument(
        "--episodes", type=_non_negative, help="training episodes per agent (default: each agent's)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--jobs", type=_positive, default=2, help="worker threads (default 2)")
    p.add_argument("--env", default="NChain-v0", help="Gymnasium env id (default NChain-v0)")
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
    p.add_argument("--seeds", type=int, nargs="+", help="one cell per seed (default 0)")
    p.add_argument("--trials", type=_positive, help="trials per cell (default 10)")
    p.add_argument(
        "--episodes", type=_non_negative, help="training episodes (default: each agent's)"
    )
    p.add_argument("--env", default="NChain-v0", help="Gymnasium env id (default NChain-v0)")
    p.add_argument(
        "--jobs", type=_positive, default=2, help="worker threads for the local backend (default 2)"
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
        "solve",
        "exact Q*, V*, optimal policy and expected return by value iteration",
        "  nchain solve --n 10 --slip 0.1\n",
    )
    p.add_argument("--n", type=int, default=5, help="chain length (default 5)")
    p.add_argument("--slip", type=float, default=0.2, help="slip probability (default 0.2)")
    p.add_argument("--small", type=float, default=2.0, help="BACKWARD reward (default 2)")
    p.add_argument("--large", type=float, default=10.0, help="reward at the end (default 10)")
    p.add_argument("--gamma", type=float, default=0.95, help="discount (default 0.95)")
    p.add_argument(
        "--horizon", type=int, default=1000, help="steps for the expected return (default 1000)"
    )
    p.add_argument("--seed", type=int, default=0, help="accepted for uniformity; solving is exact")
    p.set_defaults(func=cmd_solve)
    return parser


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
