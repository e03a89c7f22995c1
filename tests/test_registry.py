"""The pluggy registry: discovery through entry points, isolation of broken plugins."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import pytest

import nchain_agents
from helpers import write_distribution
from nchain_agents import Agent, Registry, UnknownAgentError, hookimpl, list_agents, load_agent
from nchain_agents.registry import PLUGINS_ENV_VAR, PluginWarning

GOOD_PLUGIN = """
from dataclasses import dataclass
import nchain_agents
from nchain_agents.default_plugins.random_agent import RandomAgent

@dataclass(kw_only=True, eq=False)
class {cls}(RandomAgent):
    '''A test agent from {dist}.'''

@nchain_agents.hookimpl
def register_agents(register):
    register("{agent}", {cls})
"""


def good_module(agent, cls, dist):
    return GOOD_PLUGIN.format(agent=agent, cls=cls, dist=dist)


def fresh_registry():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = Registry()
        rows = registry.rows()
    return registry, rows, [w for w in caught if issubclass(w.category, PluginWarning)]


def test_builtins_come_through_the_hook():
    registry = Registry(entry_points=False)
    info = registry.get("random")
    assert info.distribution == "nchain-rl"
    assert info.plugin == "nchain_agents.default_plugins.random_agent"
    assert registry.plugin_manager.get_plugin(info.plugin) is not None
    assert info.summary.startswith("Uniform-random actions")


def test_discovers_real_entry_points(fake_site):
    write_distribution(
        fake_site,
        "nchain-fake",
        "1.2.3",
        {"fake": "nchain_fake_plugin"},
        {"nchain_fake_plugin.py": good_module("fake-agent", "FakeAgent", "nchain-fake")},
    )
    registry, _rows, caught = fresh_registry()
    assert caught == []
    info = registry.get("fake-agent")
    assert (info.distribution, info.version) == ("nchain-fake", "1.2.3")
    assert info.summary == "A test agent from nchain-fake."
    assert "random" in registry.names()


def test_broken_plugins_are_isolated_and_reported(fake_site):
    write_distribution(
        fake_site,
        "nchain-mixed",
        "0.1",
        {
            "good": "nchain_good_plugin",
            "missing": "nchain_no_such_module",
            "raises": "nchain_raising_plugin",
            "duplicate": "nchain_duplicate_plugin",
            "misspelled": "nchain_misspelled_plugin",
            "wrongargs": "nchain_wrongargs_plugin",
            "badname": "nchain_badname_plugin",
        },
        {
            "nchain_good_plugin.py": good_module("good-agent", "GoodAgent", "nchain-mixed"),
            "nchain_raising_plugin.py": """
                import nchain_agents
                @nchain_agents.hookimpl
                def register_agents(register):
                    raise RuntimeError("boom in the hook")
            """,
            "nchain_duplicate_plugin.py": good_module("random", "Impostor", "nchain-mixed"),
            "nchain_misspelled_plugin.py": """
                import nchain_agents
                @nchain_agents.hookimpl
                def register_agent(register):
                    pass
            """,
            "nchain_wrongargs_plugin.py": """
                import nchain_agents
                @nchain_agents.hookimpl
                def register_agents(registrar):
                    pass
            """,
            "nchain_badname_plugin.py": good_module("Bad_Name", "BadName", "nchain-mixed"),
        },
    )
    registry, rows, caught = fresh_registry()
    broken = {row.plugin.split()[0]: row.error for row in rows if not row.ok}
    assert set(broken) == {"missing", "raises", "duplicate", "misspelled", "wrongargs", "badname"}
    assert "ModuleNotFoundError" in broken["missing"]
    assert "boom in the hook" in broken["raises"]
    assert "'random' is already taken" in broken["duplicate"]
    assert "register_agent" in broken["misspelled"]
    assert "registrar" in broken["wrongargs"]
    assert "kebab-case" in broken["badname"]
    assert len(caught) == 6
    assert all("nchain-mixed 0.1" in str(w.message) for w in caught)
    # The rest keep working: the good plugin and every built-in.
    assert registry.get("good-agent").distribution == "nchain-mixed"
    assert registry.get("random").distribution == "nchain-rl"
    assert not any(row.name == "Bad_Name" for row in rows)


def test_env_var_limits_outside_plugins(fake_site, monkeypatch):
    write_distribution(
        fake_site,
        "nchain-two",
        "1.0",
        {"first": "nchain_first_plugin", "second": "nchain_second_plugin"},
        {
            "nchain_first_plugin.py": good_module("first-agent", "First", "nchain-two"),
            "nchain_second_plugin.py": good_module("second-agent", "Second", "nchain-two"),
        },
    )
    builtins = set(Registry(entry_points=False).names())
    monkeypatch.setenv(PLUGINS_ENV_VAR, "second")
    assert set(Registry().names()) == builtins | {"second-agent"}
    monkeypatch.setenv(PLUGINS_ENV_VAR, "")
    assert set(Registry().names()) == builtins
    monkeypatch.setenv(PLUGINS_ENV_VAR, "nchain-two")
    assert set(Registry().names()) == builtins | {"first-agent", "second-agent"}


def test_temporary_plugin_fixture_adds_and_removes(temporary_plugin):
    class Plugin:
        @hookimpl
        def register_agents(self, register):
            from dataclasses import dataclass

            from nchain_agents.default_plugins.random_agent import RandomAgent

            @dataclass(kw_only=True, eq=False)
            class Temp(RandomAgent):
                """A temporary agent."""

            register("temp-agent", Temp)

    assert temporary_plugin(Plugin(), "temp-plugin") == ["temp-agent"]
    assert load_agent("temp-agent").summary() == "A temporary agent."


def test_no_leak_from_previous_test():
    assert "temp-agent" not in [row.name for row in list_agents()]


def test_unknown_agent_lists_and_suggests():
    with pytest.raises(UnknownAgentError) as info:
        load_agent("rnadom")
    message = str(info.value)
    assert "unknown agent 'rnadom'; did you mean 'random'?" in message
    assert "Available: " in message
    assert isinstance(info.value, KeyError)


def test_unknown_and_bad_hyperparameters():
    with pytest.raises(nchain_agents.HyperparameterError, match=r"'sed'.*did you mean 'seed'"):
        load_agent("random", sed=3)
    with pytest.raises(nchain_agents.HyperparameterError, match="seed must be int or None"):
        load_agent("random", seed="x")


def test_register_rejects_non_agents(temporary_plugin):
    class Plugin:
        @hookimpl
        def register_agents(self, register):
            register("not-an-agent", dict)

    with pytest.warns(PluginWarning, match="not an nchain_agents.Agent"):
        assert temporary_plugin(Plugin(), "bad-class-plugin") == []
    assert issubclass(load_agent("random").__class__, Agent)


def test_listing_does_not_import_tensorflow():
    code = (
        "import sys, nchain_agents\n"
        "rows = nchain_agents.list_agents()\n"
        "print(len(rows) > 0, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "False"]


MISBEHAVING = {
    "nchain_blank_doc.py": """
        from dataclasses import dataclass
        import nchain_agents
        from nchain_agents.default_plugins.random_agent import RandomAgent

        @dataclass(kw_only=True, eq=False)
        class BlankDoc(RandomAgent):
            '''   '''

        @dataclass(kw_only=True, eq=False)
        class NumberDoc(RandomAgent):
            pass
        NumberDoc.__doc__ = 42

        @dataclass(kw_only=True, eq=False)
        class MarkupDoc(RandomAgent):
            '''Breaks [/] rich [bold red]markup.'''

        @nchain_agents.hookimpl
        def register_agents(register):
            register("blank-doc", BlankDoc)
            register("number-doc", NumberDoc)
            register("markup-doc", MarkupDoc)
    """,
    "nchain_exits_at_import.py": "import sys\nsys.exit(3)\n",
    "nchain_interrupts_at_import.py": "raise KeyboardInterrupt\n",
    "nchain_exits_in_hook.py": """
        import sys
        import nchain_agents
        @nchain_agents.hookimpl
        def register_agents(register):
            sys.exit("bye")
    """,
    "nchain_prints_at_import.py": """
        print("hello from a chatty plugin")
        from dataclasses import dataclass
        import nchain_agents
        from nchain_agents.default_plugins.random_agent import RandomAgent
        @dataclass(kw_only=True, eq=False)
        class Chatty(RandomAgent):
            '''Talks at import.'''
        @nchain_agents.hookimpl
        def register_agents(register):
            print("and in its hook")
            register("chatty", Chatty)
    """,
    "nchain_lists_at_import.py": """
        import nchain_agents
        seen = [row.name for row in nchain_agents.list_agents()]
        from dataclasses import dataclass
        from nchain_agents.default_plugins.random_agent import RandomAgent
        @dataclass(kw_only=True, eq=False)
        class Curious(RandomAgent):
            '''Lists agents while being loaded.'''
        @nchain_agents.hookimpl
        def register_agents(register):
            register("curious", Curious)
    """,
}


@pytest.fixture
def misbehaving_site(fake_site, monkeypatch):
    from nchain_agents import registry as registry_module

    write_distribution(
        fake_site,
        "nchain-misbehaving",
        "0.1",
        {
            name.removesuffix(".py").removeprefix("nchain_"): name.removesuffix(".py")
            for name in MISBEHAVING
        },
        MISBEHAVING,
    )
    monkeypatch.setattr(registry_module, "_default", None)
    yield fake_site
    registry_module._default = None


def test_misbehaving_plugins_are_isolated(misbehaving_site):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        rows = list_agents()
    by_name = {row.name: row for row in rows if row.ok}
    broken = {row.plugin.split()[0]: row.error for row in rows if not row.ok}
    assert by_name["blank-doc"].summary == "BlankDoc"
    assert by_name["number-doc"].summary == "NumberDoc"
    assert by_name["markup-doc"].summary == "Breaks [/] rich [bold red]markup."
    assert {"chatty", "curious", "q-table", "keras-dqn", "random"} <= set(by_name)
    assert "SystemExit" in broken["exits_at_import"]
    assert "KeyboardInterrupt" in broken["interrupts_at_import"]
    assert "SystemExit" in broken["exits_in_hook"]
    assert load_agent("q-table").summary().startswith("Greedy Q-learning")


def test_cli_survives_misbehaving_plugins(misbehaving_site, capsys):
    from nchain_agents.cli import main

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        assert main(["agents"]) == 0
        out, err = capsys.readouterr()
        # Shown as written (an unescaped "[/]" made rich raise): the words, brackets and all.
        assert "Breaks" in out and "red]markup." in out
        assert "hello from a chatty plugin" in err
        assert main(["agents", "--json"]) == 0
    out, _ = capsys.readouterr()
    rows = json.loads(out)  # nothing the plugins printed ended up in the JSON
    assert {"chatty", "curious", "q-table"} <= {row["name"] for row in rows}


def test_interrupted_first_listing_recovers(fake_site, monkeypatch):
    write_distribution(
        fake_site,
        "nchain-fake",
        "1.0",
        {"fake": "nchain_fake_plugin"},
        {"nchain_fake_plugin.py": good_module("fake-agent", "FakeAgent", "nchain-fake")},
    )
    calls = {"n": 0}
    real = Registry._load_entry_point

    def interrupted(self, entry_point):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return real(self, entry_point)

    registry = Registry()
    monkeypatch.setattr(Registry, "_load_entry_point", interrupted)
    with pytest.raises(KeyboardInterrupt):
        registry.rows()
    rows = registry.rows()  # the next call starts again: built-ins are not "taken"
    assert all(row.ok for row in rows if row.distribution == "nchain-rl")
    assert {"q-table", "fake-agent"} <= set(registry.names())


def test_distribution_without_a_name(fake_site, monkeypatch):
    info = fake_site / "nameless-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[nchain_agents]\nnameless = nchain_nameless\n")
    (fake_site / "nchain_nameless.py").write_text(
        good_module("nameless-agent", "Nameless", "a nameless distribution")
    )
    monkeypatch.setenv(PLUGINS_ENV_VAR, "nameless")
    registry, _rows, _caught = fresh_registry()
    assert "nameless-agent" in registry.names()
    monkeypatch.setenv(PLUGINS_ENV_VAR, "someone-else")
    registry, _rows, _caught = fresh_registry()
    assert "nameless-agent" not in registry.names() and "q-table" in registry.names()


def test_slow_plugin_is_named(fake_site, monkeypatch, capfd):
    from nchain_agents import registry as registry_module

    write_distribution(
        fake_site,
        "nchain-slow",
        "1.0",
        {"slow": "nchain_slow_plugin"},
        {
            "nchain_slow_plugin.py": "import time\ntime.sleep(0.6)\n"
            + textwrap.dedent(good_module("slow-agent", "Slow", "nchain-slow"))
        },
    )
    monkeypatch.setattr(registry_module, "SLOW_PLUGIN_SECONDS", 0.2)
    registry, _rows, _caught = fresh_registry()
    assert "slow-agent" in registry.names()
    assert "still loading plugin 'slow (nchain_slow_plugin)'" in capfd.readouterr().err
