"""Errors an analyst can act on. Each message is one clear sentence; the CLI and the app show it as is."""

from __future__ import annotations

__all__ = ["InterestLensError", "UserInputError", "NotFoundError"]


class InterestLensError(RuntimeError):
    """Base class: a problem with a clear, one-sentence message (never shown as a traceback)."""


class UserInputError(InterestLensError):
    """The input (a file, a flag, a column mapping) is not what was expected."""


class NotFoundError(InterestLensError):
    """A user, item, model or file that was asked for does not exist."""
