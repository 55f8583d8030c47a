"""Errors an analyst can act on. Each message is one clear sentence; the CLI and the app show it as is."""

from __future__ import annotations

import math
import numbers

__all__ = ["InterestLensError", "UserInputError", "NotFoundError", "require_at_least", "require_positive"]


class InterestLensError(RuntimeError):
    """Base class: a problem with a clear, one-sentence message (never shown as a traceback)."""


class UserInputError(InterestLensError):
    """The input (a file, a flag, a column mapping) is not what was expected."""


class NotFoundError(InterestLensError):
    """A user, item, model or file that was asked for does not exist."""


def require_at_least(name: str, value: float, low: float) -> None:
    """Refuse a number below `low` (or NaN) with one sentence naming the setting."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value) or value < low:
        raise UserInputError(f"{name} must be at least {low}, not {value!r}.")


def require_positive(name: str, value: float, finite: bool = False) -> None:
    """Refuse a number that is not above 0 (or NaN, or infinite when `finite`) with one sentence naming the setting."""
    not_a_number = isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value)
    if not_a_number or value <= 0 or (finite and math.isinf(value)):
        raise UserInputError(f"{name} must be a number above 0, not {value!r}.")
