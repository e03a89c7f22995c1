"""Rich tables for the command line."""

from __future__ import annotations

from typing import Any


def console(stderr: bool = False, width: int | None = None):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, width=width)


def escape(text: str) -> str:
    """User or plugin text made safe to print through rich (no markup is read in it)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def print_q_table(q, solution) -> None:
    from rich.table import Table

    from nchain_gym.dynamics import ACTION_NAMES

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
    console().print(table)


def print_tournament(result) -> None:
    """One row per agent; fits 80 columns with the four built-in learners' names."""
    from rich import box
    from rich.table import Table

    title = f"tournament: {result.trials} trials, seed {result.seed}"
    if result.optimum is not None:
        title += f", optimum {result.optimum:.1f}"
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 0))
    table.add_column("agent", no_wrap=True)
    for column in (
        "wins",
        "share\n[95 % CI]",
        "mean total\n[95 % CI]",
        "of\noptimum",
        "optimal\npolicy",
    ):
        table.add_column(column, justify="right", no_wrap=True)
    share_ci, total_ci = result.share_intervals(), result.total_intervals()
    fractions, optimal = result.fractions_of_optimum, result.optimal_policy_shares
    for i, name in enumerate(result.agents):
        table.add_row(
            escape(name),
            str(result.wins[i]),
            f"{100 * result.shares[i]:.0f} % [{100 * share_ci[i, 0]:.0f}, {100 * share_ci[i, 1]:.0f}]",
            f"{result.mean_totals[i]:.0f} [{total_ci[i, 0]:.0f}, {total_ci[i, 1]:.0f}]",
            "-" if fractions is None else f"{100 * fractions[i]:.1f} %",
            "-" if optimal is None else f"{100 * optimal[i]:.0f} %",
        )
    console().print(table)
    if optimal is not None:
        console().print(
            "optimal policy: share of trials whose trained greedy policy earns the optimum",
            style="dim",
        )


def _setting_keys(rows: list[Any]) -> list[str]:
    """The hyperparameter and env keys that appear in any row, in first-seen order."""
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row.settings))
    return list(keys)


def print_sweep(result, width: int | None = None) -> None:
    """One row per cell; every swept setting gets its own column so that rows stay
    distinguishable on a narrow terminal (cells fold, they are never cut)."""
    from rich.table import Table

    rows = result.rows
    keys = _setting_keys(rows)
    table = Table(title=f"sweep: {len(rows)} cells, {len(result.failed)} failed")
    table.add_column("agent", overflow="fold")
    for key in keys:
        table.add_column(key, overflow="fold")
    table.add_column("seed", justify="right", overflow="fold")
    table.add_column("mean game total (95 % CI)", justify="right", overflow="fold")
    table.add_column("of optimum", justify="right", overflow="fold")
    for row in rows:
        settings = row.settings
        cells = [escape(str(row.agent))]
        cells += [escape(str(settings[k])) if k in settings else "-" for k in keys]
        cells.append(str(row.seed))
        if row.stats is None:
            cells += [f"[red]failed: {escape(str(row.error))}[/]", "-"]
        else:
            low, high = row.stats.mean_total_ci95
            share = row.stats.fraction_of_optimum
            cells += [
                f"{row.stats.mean_total:.1f} [{low:.1f}, {high:.1f}]",
                "-" if share is None else f"{100 * share:.0f} %",
            ]
        table.add_row(*cells)
    console(width=width).print(table)
