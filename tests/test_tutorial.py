"""``nchain tutorial``: one offline page, its sections, images and numbers from the run."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pytest

from nchain_agents import tournament
from nchain_agents.cli import main
from nchain_agents.experiments.tournament import DEFAULT_AGENTS
from nchain_agents.tutorial import ARTICLE_KERAS_Q, ARTICLE_WINS, QUICK
from nchain_gym import solve

SECTIONS = ["environment", "naive", "q-table", "eps-greedy", "tournament", "keras", "four", "rerun"]


class Page(HTMLParser):
    """The parts of the page the tests look at."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.external: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self.sections.append(attrs["id"])
        if tag == "img":
            self.images.append(attrs["src"])
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            if tag != "a" and value and not value.startswith(("data:", "#")):
                self.external.append(value)


@pytest.fixture(scope="module")
def quick_page(tmp_path_factory):
    path = tmp_path_factory.mktemp("tutorial") / "page.html"
    assert main(["tutorial", "--quick", "--seed", "3", "-o", str(path)]) == 0
    text = path.read_text(encoding="utf-8")
    page = Page()
    page.feed(text)
    return text, page


def test_the_page_has_every_section_in_the_articles_order(quick_page):
    text, page = quick_page
    assert page.sections == SECTIONS
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")


def test_the_page_opens_offline(quick_page):
    """Images are embedded PNGs; no scripts, stylesheets or images are fetched."""
    _, page = quick_page
    assert page.external == []
    assert "script" not in page.tags and "link" not in page.tags
    assert len(page.images) == 3  # tournament, training curve, four learners
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_numbers_come_from_the_run(quick_page):
    """Q*, the article's references, and the tournament of this seed and budget."""
    text, _ = quick_page
    for value in solve().q.ravel():
        assert f"<td>{value:.2f}</td>" in text
    assert f"wins {list(ARTICLE_WINS)}" in text
    for forward, backward in ARTICLE_KERAS_Q:
        assert f"<td>{forward:.2f}</td><td>{backward:.2f}</td>" in text
    result = tournament(DEFAULT_AGENTS, QUICK.trials, QUICK.episodes, seed=3, workers=2)
    for name, wins, share in zip(result.agents, result.wins, result.shares, strict=True):
        assert f'<td class="name">{name}</td><td>{wins}</td><td>{100 * share:.1f} %</td>' in text
    assert "nchain tutorial --seed 3 --quick -o tutorial.html" in text
    assert re.search(r"\(seed 3, \d+ s, nchain-rl ", text)


def test_the_quick_page_is_reproducible(quick_page, tmp_path):
    """Same seed, same page, number for number (only the run time may differ)."""
    text, _ = quick_page
    path = tmp_path / "again.html"
    assert main(["tutorial", "--quick", "--seed", "3", "-o", str(path)]) == 0
    again = path.read_text(encoding="utf-8")

    def strip(page):
        return re.sub(r"seed 3, \d+ s,", "seed 3, _ s,", page)

    assert strip(again) == strip(text)


def test_the_tutorial_command_refuses_to_overwrite(capsys, tmp_path):
    page = tmp_path / "mine.html"
    page.write_text("precious")
    assert main(["tutorial", "--quick", "-o", str(page)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert page.read_text() == "precious"
