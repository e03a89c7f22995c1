"""The ``nchain`` subcommands: each parses nothing, prints little, and calls the library."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nchain_agents.cli.render import (
    console,
    escape,
    print_q_table,
    print_sweep,
    print_tournament,
)


class UserError(Exception):
    """Bad input: reported as one line on stderr, exit code 2."""


MAX_HORIZON = 10**12
"""Longest horizon ``nchain solve`` takes (its return is extrapolated, not stepped)."""


# -- small helpers ----------------------------------------------------------------------


def _emit_json(data: Any, target: str) -> None:
    """Write JSON to stdout (``-``) or, atomically, to a file."""
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    if target == "-":
        sys.stdout.write(text)
        return
    from nchain_agents.archive import atomic_write

    atomic_write(target, lambda handle: handle.write(text.encode()))
    console(stderr=True).print(f"wrote {escape(target)}", soft_wrap=True)


def _short(text: str, limit: int = 60) -> str:
    return repr(text) if len(text) <= limit else repr(text[: limit - 3] + "...")


def _parse_value(raw: str) -> Any:
    """A command-line value: a JSON number, boolean, null, string or list, else the text.

    Only plain values come out: nested containers, and numbers too long to be a
    hyperparameter, are refused as bad input.
    """
    if len(raw) > 200:
        raise UserError(f"value {_short(raw)} is too long (at most 200 characters)")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return raw
    if isinstance(value, (dict, list)):
        raise UserError(
            f"value {_short(raw)} must be a number, true/false or text, not a container"
        )
    return value


def _parse_settings(pairs: list[str]) -> dict[str, Any]:
    settings = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set takes key=value, got {_short(pair)}")
        if key.strip() == "seed":
            raise UserError("set the seed with --seed, not --set seed=...")
        settings[key.strip()] = _parse_value(raw.strip())
    return settings


def _make_env(env_id: str, **kwargs: Any):
    import gymnasium as gym

    import nchain_gym  # noqa: F401  (registers NChain-v0)

    try:
        return gym.make(env_id, **kwargs)
    except (gym.error.Error, ImportError, AttributeError, TypeError, ValueError) as exc:
        known = [name for name in gym.registry if isinstance(name, str)]
        close = difflib.get_close_matches(env_id, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot make env {_short(env_id)}: {message}{hint}") from None


def _write_outputs(writers: list[tuple[str, Callable[[], Any]]]) -> int:
    """Run each output writer on its own, so that one failing never loses another.

    Returns:
        0 when all were written, else 1 (each failure is reported on stderr).
    """
    failed = 0
    for target, write in writers:
        try:
            write()
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            failed += 1
            print(f"nchain: could not write {target}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 1 if failed else 0


def _check_output(path: str | None, force: bool) -> None:
    """Refuse, before any work starts, an output that could not be written or would
    replace a file without ``--force``."""
    import errno
    import os

    if not path or path == "-":
        return
    target = Path(path)
    try:
        if target.is_dir():
            raise UserError(f"cannot write {path}: it is a directory")
        if target.exists():
            if not target.is_file():
                return  # a device or a pipe (/dev/stdout): written into as it is
            if not force:
                raise UserError(f"{path} exists; pass --force to replace it")
        parent = target.absolute().parent
        while not parent.exists():
            parent = parent.parent
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise UserError(f"cannot write {path}: the name is too long") from None
        raise UserError(f"cannot write {path}: {exc.strerror}") from None
    if not parent.is_dir():
        raise UserError(f"cannot write {path}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {path}: {parent} is not writable")
    try:
        name_max = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    # The temporary file beside it is named ".<name>.<pid>.<random>.tmp".
    if len(target.name.encode()) + 32 > name_max:
        raise UserError(f"cannot write {path}: the file name is too long")


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
        source = escape(f"{row.distribution or '?'} {row.version or ''}".strip())
        if row.ok:
            table.add_row(escape(row.name), escape(row.summary), source)
        else:
            table.add_row(
                f"[red]{escape(row.plugin)}[/]", f"[red]broken: {escape(str(row.error))}[/]", source
            )
    console().print(table)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from nchain_agents import load_agent
    from nchain_agents.progress import EpisodeProgress

    output = args.output or f"{args.agent}.zip"
    if not Path(output).suffix:  # what agent.save() will write
        output = str(Path(output).with_suffix(".zip"))
    for target in (output, args.json, args.plot):
        _check_output(target, args.force)
    agent = load_agent(args.agent, seed=args.seed, **_parse_settings(args.set))
    type(agent).prepare()  # a missing extra is reported before any progress bar
    env = _make_env(args.env)
    episodes = agent.default_episodes if args.episodes is None else args.episodes
    bar = EpisodeProgress(episodes, label=args.agent)
    try:
        agent.learn(env, episodes, callback=bar.update, loop=args.loop)
    finally:
        bar.close()
    gamma = float(getattr(agent, "gamma", 0.95))
    from nchain_gym import episode_optimum

    best = episode_optimum(env, gamma)
    solution = best.solution
    q = agent.q_values()
    curve = agent.history.mean_reward
    summary = {
        "agent": args.agent,
        "episodes": len(agent.history),
        "seed": args.seed,
        "saved": output,
        "hyperparameters": agent.get_hyperparameters(),
        "q_values": q.tolist(),
        "greedy_policy": q.argmax(axis=1).tolist(),
        "q_star": None if solution is None else solution.q.tolist(),
        "optimal_policy": None if solution is None else solution.policy.tolist(),
        "last_mean_reward_per_step": float(curve[-1]) if len(curve) else None,
    }
    saved: list[Path] = []
    writers: list[tuple[str, Callable[[], Any]]] = [
        (output, lambda: saved.append(agent.save(output)))
    ]
    if args.plot:
        from nchain_agents.experiments.plots import plot_training

        level = best.reward_per_step
        writers.append(
            (
                args.plot,
                lambda: plot_training(
                    agent.history, args.plot, title=f"{args.agent} on {args.env}",
                    optimal_level=level,
                ),
            )
        )  # fmt: skip
    if args.json:
        writers.append((args.json, lambda: _emit_json(summary, args.json)))
    status = _write_outputs(writers)
    if args.json == "-":
        return status
    print_q_table(q, solution)
    out = console()
    if saved:
        out.print(
            f"saved {escape(str(saved[0]))}" + (f"; plot {escape(args.plot)}" if args.plot else ""),
            soft_wrap=True,
        )
    return status


def cmd_evaluate(args: argparse.Namespace) -> int:
    from nchain_agents import evaluate, load

    agent = load(args.file)
    env = _make_env(args.env)
    result = evaluate(agent, env, n_episodes=args.episodes, seed=args.seed)
    low, high = result.confidence_interval()
    from nchain_gym import episode_optimum

    optimum = episode_optimum(env).expected_return
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
        f"{escape(args.file)}: mean return {result.mean:.1f} ± {result.std:.1f} (std) over "
        f"{args.episodes} episodes, 95 % CI [{low:.1f}, {high:.1f}]"
    )
    if optimum:
        line += f"; {100 * result.mean / optimum:.1f} % of the optimum {optimum:.1f}"
    console().print(line, soft_wrap=True)
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
    from nchain_agents.experiments.tournament import DEFAULT_AGENTS

    agents = args.agents or list(DEFAULT_AGENTS)
    for target in (args.json, args.plot):
        _check_output(target, args.force)
    progress = Progress(
        TextColumn("[bold]tournament"), BarColumn(), MofNCompleteColumn(), TextColumn("trials"),
        TimeRemainingColumn(), console=console(stderr=True), transient=True,
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
            timeout=args.timeout,
        )
    writers: list[tuple[str, Callable[[], Any]]] = []
    if args.plot:
        from nchain_agents.experiments.plots import plot_tournament

        writers.append((args.plot, lambda: plot_tournament(result, args.plot)))
    if args.json:
        writers.append((args.json, lambda: _emit_json(result.to_dict(), args.json)))
    status = _write_outputs(writers)
    if args.json != "-":
        print_tournament(result)
    return status


def _parse_grid(pairs: list[str], option: str) -> dict[str, list[Any]]:
    grid = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise UserError(f"{option} takes KEY=V1,V2,..., got {pair!r}")
        grid[key.strip()] = [_parse_value(v.strip()) for v in raw.split(",")]
    return grid


def _check_config(config: dict[str, Any], path: str) -> dict[str, Any]:
    """Refuse a sweep TOML whose values have the wrong types, before any work starts."""

    def bad(key: str, wanted: str) -> UserError:
        return UserError(f"{path}: {key} must be {wanted}, got {_short(repr(config[key]))}")

    def whole(value: Any, low: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= low

    plain = (str, int, float, bool)
    if "agents" in config and (
        not isinstance(config["agents"], list)
        or not config["agents"]
        or not all(isinstance(a, str) for a in config["agents"])
    ):
        raise bad("agents", "a non-empty list of agent names")
    if "seeds" in config and (
        not isinstance(config["seeds"], list)
        or not config["seeds"]
        or not all(whole(s, 0) for s in config["seeds"])
        or len(set(config["seeds"])) != len(config["seeds"])
    ):
        raise bad("seeds", "a non-empty list of distinct whole numbers >= 0")
    if "trials" in config and not whole(config["trials"], 1):
        raise bad("trials", "a whole number >= 1")
    if "episodes" in config and not whole(config["episodes"], 0):
        raise bad("episodes", "a whole number >= 0")
    if "env" in config and not isinstance(config["env"], str):
        raise bad("env", "a Gymnasium env id (text)")
    for key in ("grid", "env_grid"):
        if key not in config:
            continue
        table = config[key]
        if not isinstance(table, dict):
            raise bad(key, "a table of name = [values]")
        for name, values in table.items():
            values = values if isinstance(values, list) else [values]
            if not values or not all(isinstance(v, plain) for v in values):
                raise UserError(
                    f"{path}: {key}.{name} must be a value or a non-empty list of plain values"
                )
            table[name] = values
    return config


def _read_config(path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
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
    return _check_config(config, path)


def cmd_sweep(args: argparse.Namespace) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from nchain_agents import SweepRow, sweep

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
        console=console(stderr=True), transient=True,
    )  # fmt: skip

    def on_cell(done: int, total: int, row: SweepRow) -> None:
        nonlocal failures
        failures += not row.ok
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
            timeout=args.timeout,
        )
    writers: list[tuple[str, Callable[[], Any]]] = []
    if args.plot:
        from nchain_agents.experiments.plots import plot_sweep

        writers.append((args.plot, lambda: plot_sweep(result, args.plot)))
    if args.json:
        writers.append((args.json, lambda: _emit_json(result.to_dict(), args.json)))
    status = _write_outputs(writers)
    if args.json != "-":
        print_sweep(result)
    return 1 if result.failed or status else 0


def cmd_solve(args: argparse.Namespace) -> int:
    from nchain_gym import FORWARD, NChainEnv, policy_return, solve
    from nchain_gym.dynamics import ACTION_NAMES

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
    out = console()
    out.print(table)
    out.print(
        f"expected {args.horizon}-step return of the optimal policy from state 0: {optimum:.1f}",
        soft_wrap=True,
    )
    return 0


# -- parsing ----------------------------------------------------------------------------
