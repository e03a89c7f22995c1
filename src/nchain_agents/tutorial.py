"""``nchain tutorial``: the whole Q-learning tutorial reproduced as one offline HTML page.

:func:`reproduce` runs every experiment of the article (seeded), :func:`render_html`
turns the numbers into one self-contained page (figures embedded as PNG data, no
scripts, no external files), and :func:`write_tutorial` does both and writes the page
atomically. Every number on the page comes from the run.
"""

from __future__ import annotations

import base64
import html
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ARTICLE_URL = (
    "https://adventuresinmachinelearning.com/reinforcement-learning-tutorial-python-keras/"
)
ARTICLE_WINS = (13, 22, 65)
"""The article's published tournament: wins of naive, q-table and eps-greedy in 100 trials."""
ARTICLE_KERAS_Q = ((62.7, 61.4), (66.3, 62.3), (70.8, 63.3), (76.6, 64.8), (84.5, 66.5))
"""The keras-dqn Q table the article printed after its 1000 episodes."""
REFERENCE_SHARES = (14.5, 16.5, 69.1)
"""Win shares (%) over 8,400 trials pooled from three independent implementations."""


@dataclass(frozen=True)
class Budget:
    """How much the page runs: table episodes (``None``: the agents' defaults), keras-dqn
    episodes, and the trials of the article's tournament, of the reference run, and of
    the four-learner tournament."""

    episodes: int | None
    keras_episodes: int | None
    trials: int
    reference_trials: int
    four_trials: int


FULL = Budget(None, None, 100, 500, 50)
QUICK = Budget(20, 5, 4, 6, 2)


@dataclass
class Report:
    """Everything the page shows (numbers, tables and PNG figures)."""

    seed: int
    quick: bool
    budget: Budget
    sections: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, bytes] = field(default_factory=dict)
    seconds: float = 0.0


def reproduce(seed: int = 0, quick: bool = False, progress=None) -> Report:
    """Run the article's experiments; ``progress(text)`` is told what runs next."""
    import gymnasium as gym

    from nchain_agents import load_agent, tournament
    from nchain_agents.experiments.plots import png_bytes, tournament_figure, training_figure
    from nchain_agents.experiments.tournament import DEFAULT_AGENTS, LEARNERS
    from nchain_gym import episode_optimum

    start = time.perf_counter()
    budget = QUICK if quick else FULL
    report = Report(seed, quick, budget)
    say = progress or (lambda text: None)

    def env():
        return gym.make("NChain-v0")

    say("the environment, solved exactly")
    best = episode_optimum(env())
    assert best.solution is not None and best.expected_return is not None
    base = env().unwrapped
    report.sections["environment"] = {
        "n": base.n, "slip": base.slip, "small": base.small, "large": base.large,
        "horizon": best.horizon, "q_star": best.solution.q, "policy": best.solution.policy,
        "optimum": best.expected_return, "per_step": best.reward_per_step,
    }  # fmt: skip

    def trained(name: str, **kwargs: Any):
        agent = load_agent(name, seed=seed, **kwargs).learn(env(), budget.episodes)
        return agent, agent.predict(np.arange(base.n), deterministic=True)[0]

    say("the naive summed-reward table")
    naive, naive_policy = trained("naive-sum")
    report.sections["naive"] = {"table": naive.q_values(), "policy": naive_policy}

    say("the Q-table under both update rules")
    standard, standard_policy = trained("q-table")
    printed, printed_policy = trained("q-table", update_rule="tutorial")
    lr = standard.learning_rate
    report.sections["q_table"] = {
        "standard": standard.q_values(), "tutorial": printed.q_values(), "lr": lr,
        "policy": standard_policy, "same_policy": bool(np.array_equal(standard_policy, printed_policy)),
        "deviation": float(np.abs(printed.q_values() * lr - standard.q_values()).max()),
    }  # fmt: skip

    say("epsilon-greedy Q-learning")
    greedy, greedy_policy = trained("eps-greedy-q-table")
    report.sections["eps_greedy"] = {
        "table": greedy.q_values(), "policy": greedy_policy, "epsilon": greedy.current_epsilon,
        "curve": greedy.history.mean_reward,
    }  # fmt: skip

    say(f"the article's tournament ({budget.trials} trials)")
    article = tournament(DEFAULT_AGENTS, budget.trials, budget.episodes, seed=seed, workers=2)
    say(f"the reference tournament ({budget.reference_trials} trials)")
    reference = tournament(
        DEFAULT_AGENTS, budget.reference_trials, budget.episodes, seed=seed + 1, workers=2
    )
    report.sections["tournament"] = {"article": article, "reference": reference}
    report.figures["tournament"] = png_bytes(tournament_figure(article))

    say("the Keras DQN")
    dqn = load_agent("keras-dqn", seed=seed).learn(env(), budget.keras_episodes)
    report.sections["keras"] = {
        "q": dqn.q_values(), "policy": dqn.predict(np.arange(base.n), deterministic=True)[0],
        "episodes": len(dqn.history), "last_per_step": float(dqn.history.mean_reward[-1]),
        "epsilon": dqn.current_epsilon,
    }  # fmt: skip
    curve = training_figure(
        dqn.history, title="keras-dqn: mean reward per step", optimal_level=best.reward_per_step
    )
    report.figures["keras"] = png_bytes(curve)

    say(f"all four learners ({budget.four_trials} trials)")
    episodes = budget.keras_episodes if quick else None
    four = tournament(LEARNERS, budget.four_trials, episodes, seed=seed, workers=2)
    report.sections["four"] = four
    report.figures["four"] = png_bytes(tournament_figure(four))
    report.seconds = time.perf_counter() - start
    return report


# -- the page -------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.5; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ccc; margin-top: 2.5rem; }
table { border-collapse: collapse; margin: 0.8rem 0; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.6rem; text-align: right; }
th { background: #f3f3f3; } td.name, th.name { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
code { background: #f3f3f3; padding: 0 0.2rem; }
.note { color: #555; font-size: 0.92rem; }
nav a { margin-right: 0.8rem; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(header: list[str], rows: list[list[Any]], names: int = 1) -> str:
    head = "".join(
        f'<th class="name">{_e(h)}</th>' if i < names else f"<th>{_e(h)}</th>"
        for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="name">{_e(c)}</td>' if i < names else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{encoded}">'


def _policy(policy: Any) -> str:
    from nchain_gym.dynamics import ACTION_NAMES

    return ", ".join(f"{s}: {ACTION_NAMES[int(a)].lower()}" for s, a in enumerate(policy))


def _q_rows(*tables: Any) -> list[list[Any]]:
    """One row per state: each table's two values (whole numbers once they are large)."""
    rows = []
    for s in range(len(tables[0])):
        row: list[Any] = [s]
        for table in tables:
            digits = 0 if np.abs(np.asarray(table)).max() >= 1000 else 2
            row += [f"{table[s][0]:.{digits}f}", f"{table[s][1]:.{digits}f}"]
        rows.append(row)
    return rows


def _shares_rows(result: Any, reference: Any = None) -> list[list[Any]]:
    rows = []
    ci = result.share_intervals()
    for i, name in enumerate(result.agents):
        row = [
            name, int(result.wins[i]), f"{100 * result.shares[i]:.1f} %",
            f"[{100 * ci[i, 0]:.1f}, {100 * ci[i, 1]:.1f}]", f"{result.mean_totals[i]:.0f}",
        ]  # fmt: skip
        if reference is not None:
            row.append(reference[i])
        rows.append(row)
    return rows


def render_html(report: Report) -> str:
    """The page for ``report``: one self-contained HTML document."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("nchain-rl")
    except PackageNotFoundError:  # running from a source tree
        release = "(not installed)"

    env = report.sections["environment"]
    naive, qt = report.sections["naive"], report.sections["q_table"]
    eps, games = report.sections["eps_greedy"], report.sections["tournament"]
    keras, four = report.sections["keras"], report.sections["four"]
    article, reference = games["article"], games["reference"]
    budget = report.budget
    episodes = "the tutorial's 500" if budget.episodes is None else str(budget.episodes)
    keras_episodes = "1000" if budget.keras_episodes is None else str(budget.keras_episodes)
    rerun = f"nchain tutorial --seed {report.seed}" + (" --quick" if report.quick else "")
    star = env["q_star"]
    parts: list[str] = []
    add = parts.append
    add("<!DOCTYPE html>")
    add('<html lang="en"><head><meta charset="utf-8">')
    add('<meta name="viewport" content="width=device-width, initial-scale=1">')
    add("<title>The Q-learning tutorial, reproduced</title>")
    add(f"<style>{_STYLE}</style></head><body>")
    add("<h1>The Q-learning tutorial, reproduced</h1>")
    add(
        f'<p>Every experiment of <a href="{_e(ARTICLE_URL)}">the NChain reinforcement-learning '
        "tutorial</a> (Python and Keras, 2018), run again on NChain-v0 for Gymnasium, with the "
        "exact answer beside each result. Every number on this page comes from one seeded run "
        f"(seed {report.seed}, {report.seconds:.0f} s, nchain-rl {_e(release)})"
        + (", in the <b>quick</b> version: small budgets, for a test" if report.quick else "")
        + ".</p>"
    )
    add(
        '<nav><a href="#environment">environment</a><a href="#naive">naive table</a>'
        '<a href="#q-table">Q-table</a><a href="#eps-greedy">eps-greedy</a>'
        '<a href="#tournament">tournament</a><a href="#keras">Keras DQN</a>'
        '<a href="#four">all four</a><a href="#rerun">rerun</a></nav>'
    )

    add('<section id="environment"><h2>The environment</h2>')
    add(
        f"<p>A chain of {env['n']} states. Action 0 (forward) moves one state on and pays "
        f"nothing, except at the last state, where it stays and pays {env['large']:g}; action 1 "
        f"(backward) pays {env['small']:g} at once and returns to state 0. Every action slips "
        f"(is swapped for the other) with probability {env['slip']:g}. A game is "
        f"{env['horizon']} steps.</p>"
    )
    add(
        "<p>Solved exactly (value iteration to 1e-12, discount 0.95), the optimal policy is "
        f"<b>{_e(_policy(env['policy']))}</b>; it earns {env['optimum']:.1f} per game on "
        f"average ({env['per_step']:.3f} per step). Q*:</p>"
    )
    add(_table(["state", "Q* forward", "Q* backward"], _q_rows(star)))
    add("</section>")

    add('<section id="naive"><h2>The naive table, and why it locks in</h2>')
    add(
        f"<p>Summing raw rewards ({episodes} episodes): the first time state 0 tries "
        f"backward it earns {env['small']:g} at once, while forward earns nothing until the "
        "end of the chain. From then on that row has a positive sum, its argmax is backward, "
        "and nothing ever makes it explore again. Learned table:</p>"
    )
    add(_table(["state", "forward", "backward"], _q_rows(naive["table"])))
    add(f"<p>Greedy policy: <b>{_e(_policy(naive['policy']))}</b>.</p></section>")

    add('<section id="q-table"><h2>The Q-table, under both update rules</h2>')
    add(
        "<p>The article's text gives the standard rule <code>Q += lr (r + γ max Q' − Q)</code>; "
        "its code runs <code>Q += r + lr (γ max Q' − Q)</code>. From zeros, the code's table is "
        f"the standard one divided by lr = {qt['lr']:g} at every step, so both make the same "
        f"decisions (here: the largest |lr · code − standard| is {qt['deviation']:.2e}; same "
        f"greedy policy: {'yes' if qt['same_policy'] else 'no'}).</p>"
    )
    add(
        _table(
            ["state", "standard fwd", "standard back", "code fwd", "code back"],
            _q_rows(qt["standard"], qt["tutorial"]),
        )
    )
    add(
        f"<p>Greedy policy: <b>{_e(_policy(qt['policy']))}</b>. With no exploration beyond "
        "an all-zero row, it too can settle on backward early.</p></section>"
    )

    add('<section id="eps-greedy"><h2>Epsilon-greedy Q-learning</h2>')
    add(
        f"<p>Exploring with ε = 0.5, decayed by 0.999 per episode (ε = {eps['epsilon']:.3f} at "
        "the end):</p>"
    )
    add(_table(["state", "forward", "backward"], _q_rows(eps["table"])))
    add(f"<p>Greedy policy: <b>{_e(_policy(eps['policy']))}</b>.</p></section>")

    add('<section id="tournament"><h2>The tournament</h2>')
    add(
        f"<p>Each trial trains the three tables from scratch ({episodes} episodes) and plays "
        "one greedy game with each, one after another on one env; the highest total wins. "
        f"The article's run of 100 trials gave wins {list(ARTICLE_WINS)}. This run, "
        f"{article.trials} trials (Wilson 95 % intervals):</p>"
    )
    add(
        _table(
            ["agent", "wins", "share", "95 % CI", "mean total", "article's wins"],
            _shares_rows(article, list(ARTICLE_WINS)),
        )
    )
    add(
        f"<p>One run of 100 trials scatters by about ±4.5 points. Over {reference.trials} "
        f"more trials (seed {report.seed + 1}) the shares are:</p>"
    )
    add(
        _table(
            ["agent", "wins", "share", "95 % CI", "mean total", "reference share"],
            _shares_rows(reference, [f"{x} %" for x in REFERENCE_SHARES]),
        )
    )
    add(
        '<p class="note">Reference: 8,400 trials pooled from three independent '
        f"implementations of the tutorial. The optimum is {env['optimum']:.1f} per game.</p>"
    )
    add(_image(report.figures["tournament"], "tournament: win shares and mean game totals"))
    add("</section>")

    kq = keras["q"]
    add('<section id="keras"><h2>The Keras DQN</h2>')
    add(
        "<p>One-hot state → Dense(10, sigmoid) → Dense(2, linear), trained online after every "
        f"step with Adam towards r + 0.95 max Q(s'), for {keras_episodes} episodes. The "
        "training curve is the mean reward per step of each episode, as the article plots it "
        f"(last episode: {keras['last_per_step']:.3f}, still exploring with ε = "
        f"{keras['epsilon']:.3f}; the optimal policy earns {env['per_step']:.3f}).</p>"
    )
    add(_image(report.figures["keras"], "keras-dqn training curve"))
    add("<p>Its Q table beside Q* and beside the table the article printed:</p>")
    add(
        _table(
            [
                "state",
                "learned fwd",
                "learned back",
                "Q* fwd",
                "Q* back",
                "article fwd",
                "article back",
            ],
            _q_rows(kq, star, ARTICLE_KERAS_Q),
        )
    )
    add(f"<p>Greedy policy: <b>{_e(_policy(keras['policy']))}</b>.</p></section>")

    add('<section id="four"><h2>Beyond the article: all four learners</h2>')
    budgets = "the quick page's short budgets" if report.quick else "its default budget"
    add(
        "<p>The article never lets its network into the tournament. Here it plays: "
        f"{four.trials} trials, every agent at {budgets}.</p>"
    )
    rows = _shares_rows(four)
    optimal = four.optimal_policy_shares
    for i, row in enumerate(rows):
        row.append(f"{100 * four.fractions_of_optimum[i]:.1f} %")
        row.append("-" if optimal is None else f"{100 * optimal[i]:.0f} %")
    add(
        _table(
            ["agent", "wins", "share", "95 % CI", "mean total", "of optimum", "optimal policy"],
            rows,
        )
    )
    add(
        '<p class="note">Of optimum: mean game total over the optimal expected total. '
        "Optimal policy: the share of trials whose trained greedy policy earns the "
        "optimum.</p>"
    )
    add(_image(report.figures["four"], "four-learner tournament"))
    add("</section>")

    add('<section id="rerun"><h2>Run it again</h2>')
    add(
        f"<p><code>{_e(rerun)} -o tutorial.html</code> writes this page again, number for "
        "number (it needs the <code>keras</code> and <code>plot</code> extras). "
        "The article's own code runs unchanged on Gymnasium through "
        "<code>import nchain_gym.legacy as gym</code>.</p></section>"
    )
    add("</body></html>")
    return "\n".join(parts) + "\n"


def write_tutorial(path: str | Path, seed: int = 0, quick: bool = False, progress=None) -> Path:
    """Run :func:`reproduce` and write the page to ``path`` (atomically)."""
    from nchain_agents.archive import atomic_write

    page = render_html(reproduce(seed, quick, progress)).encode("utf-8")
    return atomic_write(path, lambda handle: handle.write(page))
