"""Shared fixtures: fake installed distributions and temporary plugins."""

from __future__ import annotations

import sys

import pytest

from nchain_agents.registry import default_registry


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    """A directory on sys.path for fake distributions; their modules are unloaded after."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = set(sys.modules)
    yield site
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        if module is not None and str(getattr(module, "__file__", "") or "").startswith(str(site)):
            del sys.modules[name]


@pytest.fixture
def temporary_plugin():
    """Add plugin objects to the default registry for one test, then remove them."""
    registry = default_registry()
    added: list[str] = []

    def add(plugin, name):
        names = registry.add_plugin(plugin, name=name, distribution="tests", version="0")
        added.append(name)
        return names

    yield add
    for name in added:
        registry.remove_plugin(name)
