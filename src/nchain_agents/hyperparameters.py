"""Declaring and validating hyperparameters: typed dataclass fields with a doc and a check."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import field
from typing import Any, get_type_hints

import numpy as np

from nchain_agents.errors import HyperparameterError, short_repr

Check = Callable[[Any], str | None]
"""A value check: returns ``None`` when the value is fine, else what is allowed."""


def hyperparameter(default: Any, doc: str, check: Check | None = None) -> Any:
    """Declare a hyperparameter field with its default, a one-line doc and a range check."""
    return field(default=default, metadata={"doc": doc, "check": check})


def in_range(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Check:
    """A check for ``low <(=) value <(=) high`` (either side may be ``None``)."""
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    text = f"in {left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"

    def check(value: Any) -> str | None:
        if low is not None and (value < low or (low_open and value == low)):
            return text
        if high is not None and (value > high or (high_open and value == high)):
            return text
        return None

    return check


def one_of(*choices: Any) -> Check:
    """A check that the value is one of ``choices``."""

    def check(value: Any) -> str | None:
        return None if value in choices else "one of " + ", ".join(repr(c) for c in choices)

    return check


def _check_type(name: str, value: Any, annotation: Any) -> Any:
    """Coerce/validate a hyperparameter against its annotation (float, int, bool, str)."""
    kinds = annotation if isinstance(annotation, tuple) else (annotation,)
    if value is None and type(None) in kinds:
        return None
    if float in kinds and isinstance(value, (int, float, np.integer, np.floating)):
        if isinstance(value, (bool, np.bool_)):
            raise HyperparameterError(f"{name} must be a number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise HyperparameterError(f"{name} must be a finite number, got {short_repr(value)}")
        return number
    if int in kinds and isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if bool in kinds and isinstance(value, (bool, np.bool_)):
        return bool(value)
    if str in kinds and isinstance(value, str):
        return value
    wanted = " or ".join("None" if k is type(None) else k.__name__ for k in kinds)
    raise HyperparameterError(f"{name} must be {wanted}, got {short_repr(value)}")


def _kinds(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", None)
    return tuple(args) if args else annotation


def validate_fields(obj: Any) -> None:
    """Check every dataclass field of ``obj`` against its annotation and its check.

    Values are normalised in place (an ``int`` given for a ``float`` becomes a float).

    Raises:
        HyperparameterError: naming the field, the allowed values and the bad value.
    """
    hints = get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = _check_type(f.name, getattr(obj, f.name), _kinds(hints[f.name]))
        check = f.metadata.get("check")
        problem = check(value) if check is not None and value is not None else None
        if problem:
            raise HyperparameterError(f"{f.name} must be {problem}, got {short_repr(value)}")
        setattr(obj, f.name, value)
