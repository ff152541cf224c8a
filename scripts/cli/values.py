"""Checks of values the user gives (config keys, --flags) and the one-line error a bad one raises.

``bad_value`` builds the error ``<key>=<value>: <allowed>`` that every command prints as ``error: ...``;
``require`` checks a flag's value against one of the predicates below. The config key table
(scripts/config/validate.py) and the command-line layer both build on these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Tuple

Check = Callable[[Any], bool]


def bad_value(key: str, value: Any, allowed: str) -> ValueError:
    """The one-line error ``<key>=<value>: <allowed>``, the key as the user types it (a config key or a --flag).

    A string value of a config key is quoted (as in the config file); a flag's value appears as typed.
    """
    shown = repr(value) if isinstance(value, str) and not key.startswith("--") else str(value)
    return ValueError(f"{key}={shown}: {allowed}")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def int_at_least(low: int) -> Check:
    return lambda value: is_int(value) and value >= low


def real_above(low: float) -> Check:
    return lambda value: is_real(value) and value > low


def real_at_least(low: float) -> Check:
    return lambda value: is_real(value) and value >= low


def unit_interval(*, closed_above: bool) -> Check:
    return lambda value: is_real(value) and 0 <= value and (value <= 1 if closed_above else value < 1)


@dataclass(frozen=True)
class OneOf:
    """A check that passes the listed ``choices`` only (code that maps each choice to a meaning can test
    that it covers them all)."""

    choices: Tuple[str, ...]

    def __call__(self, value: Any) -> bool:
        return value in self.choices


def one_of(*choices: str) -> OneOf:
    return OneOf(choices)


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def require(flag: str, value: Any, check: Check, allowed: str) -> None:
    """A command-line flag's value: ``--flag=<value>: <allowed>`` unless ``check(value)``; None means unset."""
    if value is not None and not check(value):
        raise bad_value(flag, value, allowed)
