"""Errors an analyst can act on. Each message is one clear sentence; the CLI and the app show it as is."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Literal, get_args

__all__ = [
    "NextStep",
    "NEXT_STEPS",
    "InterestLensError",
    "UserInputError",
    "NotFoundError",
    "SettingError",
    "setting_label",
    "require_at_least",
    "require_positive",
]


# What the analyst can do about an error, as a value: core describes the state ("there is no model at X") and names
# the step; each app words the step in its own terms (the CLI its command, the dashboard its page or the command),
# so core never knows an app's commands.
NextStep = Literal[
    "train",  # train a model (on `step_db` when set)
    "migrate",  # upgrade the database's schema (any ingest does it too)
    "create_db",  # create the database: build a dataset or ingest a log
    "rebuild_db",  # rebuild a damaged database from its log
    "ingest_log",  # load a log into the database (the file given is not one)
    "drift",  # build the drift summaries beside the model
    "encode_texts",  # encode the item texts into text vectors
    "load_served",  # load a served-recommendation log
    "build_synthetic",  # build the synthetic dataset (it writes its truth beside the database)
]
NEXT_STEPS: tuple[str, ...] = get_args(NextStep)


class InterestLensError(RuntimeError):
    """Base class: a problem with a clear, one-sentence message (never shown as a traceback).

    `next_step` (a `NextStep`, or None) and `step_db` (the database it applies to, or None) say what to do next as
    values; the message itself describes the problem only.
    """

    next_step: NextStep | None = None
    step_db: str | None = None

    def __init__(self, *args: object, next_step: NextStep | None = None, step_db: object = None) -> None:
        super().__init__(*args)
        self.next_step = next_step
        self.step_db = None if step_db is None else str(step_db)


class UserInputError(InterestLensError):
    """The input (a file, a flag, a column mapping) is not what was expected."""


class NotFoundError(InterestLensError):
    """A user, item, model or file that was asked for does not exist."""


def setting_label(setting: str) -> str:
    """How core's own messages name a setting: its config field or argument name in words (batch_size -> batch
    size)."""
    return setting.replace("_", " ")


class SettingError(UserInputError):
    """A setting given a value it cannot take, in one sentence that names settings by `{setting}` fields.

    The message describes values, never an app's controls: `str(err)` names each setting in words
    (`setting_label`), and an app renders the same sentence in its own terms (the CLI names its flags).

    Parameters
    ----------
    template : the sentence, with a `{name}` field for each of `settings` and for each of `values`.
    settings : the settings the sentence names (config fields or argument names, e.g. "batch_size").
    values : other fields of the template (the values refused, limits), formatted with their format specs.
    """

    def __init__(self, template: str, settings: tuple[str, ...] | str, *, next_step: NextStep | None = None,
                 step_db: object = None, **values: object) -> None:
        self.template = template
        self.settings = (settings,) if isinstance(settings, str) else tuple(settings)
        self.values = values
        super().__init__(self.render(setting_label), next_step=next_step, step_db=step_db)

    def render(self, name_of: Callable[[str], str]) -> str:
        """The sentence with each setting called `name_of(setting)`; a sentence that opens with a setting opens
        with a capital (a value that opens it, such as a file name, is left as it is)."""
        text = self.template.format(**self.values, **{s: name_of(s) for s in self.settings})
        opens_with_setting = any(self.template.startswith("{" + s + "}") for s in self.settings)
        return text[:1].upper() + text[1:] if opens_with_setting else text


def require_at_least(name: str, value: float, low: float) -> None:
    """Refuse a number below `low` (or NaN): SettingError naming the setting `name` (e.g. "batch_size")."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value) or value < low:
        raise SettingError(f"{{{name}}} must be at least {{low}}, not {{value!r}}.", name, low=low, value=value)


def require_positive(name: str, value: float, finite: bool = False) -> None:
    """Refuse a number that is not above 0 (or NaN, or infinite when `finite`): SettingError naming `name`."""
    not_a_number = isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value)
    if not_a_number or value <= 0 or (finite and math.isinf(value)):
        raise SettingError(f"{{{name}}} must be a number above 0, not {{value!r}}.", name, value=value)
