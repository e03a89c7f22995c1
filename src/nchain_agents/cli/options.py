"""Text from the command line turned into library arguments, or a one-line UserError.

Every check here runs before any work starts: values, configuration files, env ids, and
the outputs a command will write.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nchain_agents.errors import short_repr


class UserError(Exception):
    """Bad input: reported as one line on stderr, exit code 2."""


MAX_HORIZON = 10**12
"""Longest horizon ``nchain solve`` takes (its return is extrapolated, not stepped)."""


def parse_value(raw: str) -> Any:
    """A command-line value: a JSON number, boolean, null, string or list, else the text.

    Only plain values come out: nested containers, and numbers too long to be a
    hyperparameter, are refused as bad input.
    """
    if len(raw) > 200:
        raise UserError(f"value {short_repr(raw)} is too long (at most 200 characters)")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return raw
    if isinstance(value, (dict, list)):
        raise UserError(
            f"value {short_repr(raw)} must be a number, true/false or text, not a container"
        )
    return value


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    settings = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set takes key=value, got {short_repr(pair)}")
        if key.strip() == "seed":
            raise UserError("set the seed with --seed, not --set seed=...")
        settings[key.strip()] = parse_value(raw.strip())
    return settings


def check_output(path: str | None, force: bool) -> None:
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


def parse_grid(pairs: list[str], option: str) -> dict[str, list[Any]]:
    grid = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise UserError(f"{option} takes KEY=V1,V2,..., got {pair!r}")
        grid[key.strip()] = [parse_value(v.strip()) for v in raw.split(",")]
    return grid


def check_config(config: dict[str, Any], path: str) -> dict[str, Any]:
    """Refuse a sweep TOML whose values have the wrong types, before any work starts."""

    def bad(key: str, wanted: str) -> UserError:
        return UserError(f"{path}: {key} must be {wanted}, got {short_repr(repr(config[key]))}")

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


def read_config(path: str) -> dict[str, Any]:
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
    return check_config(config, path)


# -- argparse types ---------------------------------------------------------------------


def at_least(low: int, high: int | None = None):
    """An argparse type: a whole number >= ``low`` (and <= ``high``)."""

    def parse(text: str) -> int:
        shown = text if len(text) <= 40 else text[:37] + "..."
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {shown!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a number >= {low}, got {shown}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"expected a number <= {high}, got {shown}")
        return value

    return parse


def seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {shown!r}")
    return value
