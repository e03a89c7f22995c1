"""Finding agents: built-in plugins and installed ``nchain_agents`` entry points, via pluggy.

Plugins load lazily, once, on the first call that needs the list. Each is loaded and
called on its own: one that fails to import, raises in its hook, implements a hook
that does not exist, or registers a name another plugin took is skipped with a
warning and listed as broken; the rest keep working.

``NCHAIN_AGENTS_PLUGINS`` limits the outside plugins that load: unset loads all,
an empty value or ``none`` loads none, and a comma-separated list loads those
whose entry-point name or distribution name is listed. Built-ins always load.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import os
import re
import sys
import threading
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy

from nchain_agents import archive, hookspecs
from nchain_agents.base import Agent
from nchain_agents.errors import AgentFileError, PluginWarning, UnknownAgentError, short_repr

ENTRY_POINT_GROUP = "nchain_agents"
PLUGINS_ENV_VAR = "NCHAIN_AGENTS_PLUGINS"
BUILTIN_DISTRIBUTION = "nchain-rl"
BUILTIN_PLUGINS = (
    "nchain_agents.default_plugins.naive_sum",
    "nchain_agents.default_plugins.q_table",
    "nchain_agents.default_plugins.eps_greedy_q_table",
    "nchain_agents.default_plugins.keras_dqn",
    "nchain_agents.default_plugins.random_agent",
)
_AGENT_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class AgentInfo:
    """One row of :func:`list_agents`: a registered agent, or a plugin that broke.

    Attributes:
        name: the registry name (for a broken plugin: the plugin's name).
        agent_class: the class, or ``None`` for a broken plugin.
        plugin: the plugin (entry point or module) that registered it.
        distribution, version: the installed distribution that provides it.
        summary: the first line of the class docstring.
        error: why the plugin was skipped, or ``None``.
    """

    name: str
    agent_class: type[Agent] | None
    plugin: str
    distribution: str | None
    version: str | None
    summary: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _builtin_version() -> str | None:
    try:
        return metadata.version(BUILTIN_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def _allowed(entry_point: metadata.EntryPoint) -> bool:
    setting = os.environ.get(PLUGINS_ENV_VAR)
    if setting is None:
        return True
    wanted = {part.strip().lower() for part in setting.split(",") if part.strip()}
    if not wanted or wanted == {"none"}:
        return False
    names = {entry_point.name.lower()}
    dist_name = _distribution_name(entry_point)
    if dist_name is not None:
        names.add(dist_name.lower())
    return bool(names & wanted)


def _distribution_name(entry_point: metadata.EntryPoint) -> str | None:
    """The distribution's name, or ``None`` (also when its metadata has no Name)."""
    dist = getattr(entry_point, "dist", None)
    try:
        name = None if dist is None else dist.metadata["Name"]
    except Exception:
        return None
    return name if isinstance(name, str) and name.strip() else None


def _distribution_version(entry_point: metadata.EntryPoint) -> str | None:
    dist = getattr(entry_point, "dist", None)
    try:
        version = None if dist is None else dist.version
    except Exception:
        return None
    return version if isinstance(version, str) else None


SLOW_PLUGIN_SECONDS = 2.0
"""A plugin still loading after this long is named on stderr (once)."""


@contextlib.contextmanager
def _plugin_code(plugin: str):
    """Around a plugin's own code: its prints go to stderr (never into ``--json -``
    output), and if it takes long, stderr says which plugin is loading."""

    def say_slow() -> None:
        print(f"nchain_agents: still loading plugin {plugin!r}...", file=sys.__stderr__)

    timer = threading.Timer(SLOW_PLUGIN_SECONDS, say_slow)
    timer.daemon = True
    timer.start()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        timer.cancel()


class Registry:
    """A pluggy plugin manager plus the agents its plugins registered.

    Most code uses the process-wide :func:`default_registry`; tests build their own.
    """

    def __init__(self, *, builtins: tuple[str, ...] = BUILTIN_PLUGINS, entry_points: bool = True):
        self._builtins = builtins
        self._use_entry_points = entry_points
        self._lock = threading.RLock()
        self._loaded = False
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs)
        self._loading = False
        self._agents: dict[str, AgentInfo] = {}
        self._broken: list[AgentInfo] = []
        self._excluded: set[str] = set()

    # -- loading ----------------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded or self._loading:
                # _loading: a plugin asked for the list while being loaded (same thread,
                # the lock is re-entrant); it sees what has loaded so far.
                return
            self._loading = True
            try:
                self._load_all()
                self._loaded = True
            except BaseException:
                # Interrupted (Ctrl-C) half-way: forget the partial state, so that the
                # next call starts again instead of finding the built-ins "taken".
                self._reset()
                raise
            finally:
                self._loading = False

    def _reset(self) -> None:
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs)
        self._agents = {}
        self._broken = []
        self._excluded = set()

    def _load_all(self) -> None:
        version = _builtin_version()
        for module_name in self._builtins:
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                self._mark_broken(module_name, BUILTIN_DISTRIBUTION, version, exc)
                continue
            self._add_plugin(module, module_name, BUILTIN_DISTRIBUTION, version)
        if self._use_entry_points:
            for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
                if _allowed(entry_point):
                    self._load_entry_point(entry_point)
                else:
                    self._excluded.add(_distribution_name(entry_point) or entry_point.name)

    def _load_entry_point(self, entry_point: metadata.EntryPoint) -> None:
        dist_name = _distribution_name(entry_point)
        dist_version = _distribution_version(entry_point)
        plugin_name = f"{entry_point.name} ({entry_point.value})"
        try:
            with _plugin_code(plugin_name):
                plugin = entry_point.load()
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            # A plugin's sys.exit() or KeyboardInterrupt is its failure, not the user's.
            self._mark_broken(plugin_name, dist_name, dist_version, exc)
            return
        self._add_plugin(plugin, plugin_name, dist_name, dist_version)

    def _mark_broken(
        self, plugin: str, distribution: str | None, version: str | None, error: BaseException | str
    ) -> None:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        where = f"{distribution} {version}" if distribution else "an unknown distribution"
        warnings.warn(
            f"nchain_agents plugin {plugin!r} from {where} was skipped: {text}",
            PluginWarning,
            stacklevel=4,
        )
        self._broken.append(AgentInfo(plugin, None, plugin, distribution, version, "", text))

    def add_plugin(
        self,
        plugin: Any,
        *,
        name: str | None = None,
        distribution: str | None = None,
        version: str | None = None,
    ) -> list[str]:
        """Register one plugin object and the agents its hook registers, in isolation.

        Returns:
            The agent names it added (empty if it was skipped as broken).
        """
        self._ensure_loaded()
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        return self._add_plugin(plugin, name, distribution, version)

    def _add_plugin(
        self, plugin: Any, name: str, distribution: str | None, version: str | None
    ) -> list[str]:
        pm = self.plugin_manager
        with self._lock:
            try:
                pm.register(plugin, name=name)
                pm.check_pending()
            except Exception as exc:
                if pm.get_plugin(name) is not None:
                    pm.unregister(name=name)
                self._mark_broken(name, distribution, version, exc)
                return []
            found: dict[str, type[Agent]] = {}
            problems: list[str] = []

            def register(agent_name: str, agent_class: type[Agent]) -> None:
                if not isinstance(agent_name, str) or not _AGENT_NAME.match(agent_name):
                    problems.append(
                        f"agent name {agent_name!r} is not kebab-case (e.g. 'my-agent')"
                    )
                elif not (isinstance(agent_class, type) and issubclass(agent_class, Agent)):
                    problems.append(
                        f"{agent_name!r} registers {agent_class!r}, not an nchain_agents.Agent"
                    )
                elif (problem := class_problem(agent_class)) is not None:
                    problems.append(f"{agent_name!r}: {problem}")
                elif agent_name in self._agents or agent_name in found:
                    owner = self._agents.get(agent_name)
                    taken_by = owner.plugin if owner else name
                    problems.append(f"agent name {agent_name!r} is already taken by {taken_by}")
                else:
                    found[agent_name] = agent_class

            others = [p for p in pm.get_plugins() if p is not plugin]
            try:
                with _plugin_code(name):
                    hook = pm.subset_hook_caller("register_agents", remove_plugins=others)
                    hook(register=register)
            except (Exception, SystemExit, KeyboardInterrupt) as exc:
                problems.append(f"register_agents raised {type(exc).__name__}: {exc}")
            if not found and not problems:
                problems.append(
                    "it registers no agents (no @nchain_agents.hookimpl register_agents)"
                )
            summaries = {}
            for agent_name, agent_class in found.items():
                try:
                    summaries[agent_name] = agent_class.summary()
                except Exception as exc:
                    problems.append(f"{agent_name!r}: its summary failed ({exc!r})")
            if problems:
                pm.unregister(name=name)
                self._mark_broken(name, distribution, version, "; ".join(problems))
                return []
            for agent_name, agent_class in found.items():
                # Stamped on the class itself: saving reads it from there.
                agent_class.registered_name = agent_name
                agent_class.distribution = distribution
                agent_class.distribution_version = version
                self._agents[agent_name] = AgentInfo(
                    agent_name, agent_class, name, distribution, version, summaries[agent_name]
                )
            return list(found)

    def remove_plugin(self, name: str) -> None:
        """Unregister a plugin added with :meth:`add_plugin` and forget its agents."""
        with self._lock:
            if self.plugin_manager.get_plugin(name) is not None:
                self.plugin_manager.unregister(name=name)
            for info in self._agents.values():
                if info.plugin == name and info.agent_class is not None:
                    info.agent_class.registered_name = None
            self._agents = {k: v for k, v in self._agents.items() if v.plugin != name}
            self._broken = [b for b in self._broken if b.plugin != name]

    # -- queries ----------------------------------------------------------------------

    def rows(self, include_broken: bool = True) -> list[AgentInfo]:
        """Every registered agent (sorted by name), then the plugins that failed to load."""
        self._ensure_loaded()
        rows = sorted(self._agents.values(), key=lambda info: info.name)
        return rows + list(self._broken) if include_broken else rows

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._agents)

    def agent_class(self, name: str) -> type[Agent]:
        """The class registered as ``name`` (an :class:`UnknownAgentError` with suggestions)."""
        agent_class = self.get(name).agent_class
        assert agent_class is not None  # only working agents are in the name table
        return agent_class

    def get(self, name: str) -> AgentInfo:
        self._ensure_loaded()
        try:
            return self._agents[name]
        except (KeyError, TypeError):
            pass
        available = sorted(self._agents)
        close = difflib.get_close_matches(str(name), available, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownAgentError(
            f"unknown agent {name!r}{hint} Available: {', '.join(available) or 'none'}"
        )

    def excluded(self) -> set[str]:
        """Distributions (or entry points) installed but not loaded per ``NCHAIN_AGENTS_PLUGINS``."""
        self._ensure_loaded()
        return set(self._excluded)


_default: Registry | None = None
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """The process-wide registry used by :func:`load_agent`, :func:`list_agents`, ``load``."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Registry()
    return _default


def list_agents(include_broken: bool = True) -> list[AgentInfo]:
    """Every registered agent (sorted by name), then the plugins that failed to load."""
    return default_registry().rows(include_broken)


def load_agent(name: str, **hyperparameters: Any) -> Agent:
    """A new, untrained agent: ``load_agent("q-table", seed=0, learning_rate=0.5)``.

    Raises:
        UnknownAgentError: no agent has that name (the error lists them all).
        HyperparameterError: an unknown hyperparameter name or a bad value.
    """
    from nchain_agents.errors import HyperparameterError

    agent_class = default_registry().agent_class(name)
    valid = agent_class.hyperparameter_docs()
    unknown = sorted(set(hyperparameters) - set(valid))
    if unknown:
        suggestions = [difflib.get_close_matches(u, list(valid), n=1) for u in unknown]
        hint = "".join(
            f" ({u!r}: did you mean {s[0]!r}?)"
            for u, s in zip(unknown, suggestions, strict=True)
            if s
        )
        raise HyperparameterError(
            f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} for {name!r}{hint}. "
            f"Valid: {', '.join(valid)}"
        )
    return agent_class(**hyperparameters)


def load(path: str | Path) -> Agent:
    """Load any saved agent; the agent type is read from the file.

    Raises:
        AgentFileError: the file is damaged, foreign, too new, or its agent's plugin is
            not installed (or excluded by ``NCHAIN_AGENTS_PLUGINS``).
        MissingExtraError: the agent needs an extra that is not installed.
    """
    contents = archive.read(path)
    agent_class = archive.restoring(path, lambda: resolve_class(contents.manifest))
    return archive.restoring(path, lambda: agent_class.from_contents(contents))


_DISTRIBUTION_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$")
_VERSION = re.compile(r"^[A-Za-z0-9.+!_-]{1,40}$")


def resolve_class(manifest: dict[str, Any]) -> type[Agent]:
    """The registered class for a file's manifest, or an :class:`AgentFileError` saying
    what to install (only a well-formed distribution name is repeated in the hint)."""
    name = manifest["agent"]
    registry = default_registry()
    try:
        agent_class = registry.agent_class(name)
    except UnknownAgentError:
        dist = manifest.get("distribution")
        dist = dist if isinstance(dist, str) and _DISTRIBUTION_NAME.match(dist) else None
        if dist and dist in registry.excluded():
            raise AgentFileError(
                f"agent {short_repr(name)} comes from {dist}, which is installed but not "
                f"loaded: {PLUGINS_ENV_VAR}={short_repr(os.environ.get(PLUGINS_ENV_VAR, ''))} "
                f"excludes it (add {dist} to that list, or unset it)"
            ) from None
        version = manifest.get("distribution_version")
        version = version if isinstance(version, str) and _VERSION.match(version) else None
        source = f" (from {' '.join(x for x in (dist, version) if x)})" if dist else ""
        hint = f"; install the plugin that provides it: pip install {dist}" if dist else ""
        raise AgentFileError(f"agent {short_repr(name)}{source} is not installed{hint}") from None
    return agent_class


def class_problem(agent_class: type[Agent]) -> str | None:
    """Why ``agent_class`` cannot be registered, or ``None``.

    It must be a keyword-only dataclass itself (not only inherit from one: its
    hyperparameters would silently be ``dataclasses.Field`` objects) and implement
    every abstract hook.
    """
    import dataclasses
    import inspect

    if "__dataclass_fields__" not in agent_class.__dict__:
        return (
            f"{agent_class.__qualname__} is not a dataclass itself: decorate it with "
            "@dataclass(kw_only=True, eq=False)"
        )
    positional = [f.name for f in dataclasses.fields(agent_class) if f.init and not f.kw_only]
    if positional:
        return (
            f"{agent_class.__qualname__} has positional fields {positional}: decorate it with "
            "@dataclass(kw_only=True, eq=False)"
        )
    if inspect.isabstract(agent_class):
        missing = sorted(getattr(agent_class, "__abstractmethods__", ()))
        return f"{agent_class.__qualname__} does not implement {', '.join(missing)}"
    return None
