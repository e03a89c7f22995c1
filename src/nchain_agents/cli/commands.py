"""The ``nchain`` subcommands: turn parsed options into library calls and present the results."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nchain_agents.cli.options import (
    UserError,
    check_output,
    parse_grid,
    parse_settings,
    read_config,
)
from nchain_agents.cli.render import (
    console,
    escape,
    print_q_table,
    print_sweep,
    print_tournament,
)
from nchain_agents.experiments.trials import make_env

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
    from nchain_agents.progress import ProgressBar

    output = args.output or f"{args.agent}.zip"
    if not Path(output).suffix:  # what agent.save() will write
        output = str(Path(output).with_suffix(".zip"))
    for target in (output, args.json, args.plot):
        check_output(target, args.force)
    agent = load_agent(args.agent, seed=args.seed, **parse_settings(args.set))
    type(agent).prepare()  # a missing extra is reported before any progress bar
    env = make_env(args.env, {})
    episodes = agent.default_episodes if args.episodes is None else args.episodes
    with ProgressBar(args.agent, episodes, "episodes") as bar:
        agent.learn(env, episodes, callback=bar.episode, loop=args.loop)
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
    env = make_env(args.env, {})
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
    from nchain_agents import tournament
    from nchain_agents.experiments.tournament import DEFAULT_AGENTS, LEARNERS
    from nchain_agents.progress import ProgressBar

    if args.all and args.agents:
        raise UserError("give agent names or --all, not both")
    agents = list(LEARNERS) if args.all else args.agents or list(DEFAULT_AGENTS)
    for target in (args.json, args.plot):
        check_output(target, args.force)
    with ProgressBar("tournament", args.trials, "trials", transient=True) as bar:
        batched = [name for name in agents if _trains_in_batches(name)]
        # A batch reports when all of its trials are done: say so while the count waits.
        note = f"({', '.join(batched)}: counted per batch)" if batched else ""
        bar.update(0, text=note)
        result = tournament(
            agents,
            trials=args.trials,
            episodes=args.episodes,
            seed=args.seed,
            workers=args.jobs,
            env_id=args.env,
            progress=lambda done, total: bar.update(done, text=note),
            backend=args.backend,
            address=args.address,
            timeout=args.timeout,
            batch_size=args.batch_size,
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


def cmd_sweep(args: argparse.Namespace) -> int:
    from nchain_agents import SweepRow, sweep
    from nchain_agents.progress import ProgressBar

    config = read_config(args.config) if args.config else {}
    agents = args.agents or config.get("agents") or []
    if not agents:
        raise UserError("name at least one agent (arguments or `agents` in --config)")
    grid = {**config.get("grid", {}), **parse_grid(args.grid, "--grid")}
    env_grid = {**config.get("env_grid", {}), **parse_grid(args.env_grid, "--env-grid")}
    for target in (args.json, args.plot):
        check_output(target, args.force)
    failures = 0
    bar = ProgressBar("sweep", None, "cells", transient=True)

    def on_cell(done: int, total: int, row: SweepRow) -> None:
        nonlocal failures
        failures += not row.ok
        bar.update(done, total=total, text=f"{failures} failed" if failures else "")

    with bar:
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


def _trains_in_batches(name: str) -> bool:
    from nchain_agents.errors import NChainAgentsError
    from nchain_agents.fused import trains_in_batches
    from nchain_agents.registry import default_registry

    try:
        return trains_in_batches(default_registry().agent_class(name))
    except NChainAgentsError:
        return False  # the tournament names the problem


def cmd_tutorial(args: argparse.Namespace) -> int:
    from nchain_agents.progress import ProgressBar
    from nchain_agents.tutorial import write_tutorial

    check_output(args.output, args.force)
    steps = 8  # the sections reproduce() announces
    done = 0
    with ProgressBar("tutorial", steps, "sections", transient=True) as bar:

        def progress(text: str) -> None:
            nonlocal done
            bar.update(done, text=text)
            done += 1

        path = write_tutorial(args.output, seed=args.seed, quick=args.quick, progress=progress)
    print(f"wrote {path}: open it in any browser (it needs no network)")
    return 0
