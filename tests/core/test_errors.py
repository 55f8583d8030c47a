"""Core's errors describe values, not an app's controls: a SettingError names its settings in words, and an app
renders the same sentence with its own names (the CLI's are its flags, tests/cli/test_cli_usage.py)."""

from __future__ import annotations

import pytest

from core.errors import SettingError, UserInputError
from core.model import ModelConfig
from core.train import TrainConfig


@pytest.mark.parametrize(
    ("make", "sentence"),
    [
        (lambda: TrainConfig(batch_size=0), "Batch size must be at least 1, not 0."),
        (lambda: TrainConfig(time_budget=-5.0), "Time budget must be a number above 0, not -5.0."),
        (lambda: TrainConfig(split="random"), "Split must be loo or time, not 'random'."),
        (lambda: ModelConfig(max_len=0), "Max len must be a whole number of at least 1, not 0."),
    ],
)
def test_core_names_the_setting_in_words_and_no_flag(make, sentence):
    with pytest.raises(SettingError) as caught:
        make()
    assert str(caught.value) == sentence and "--" not in sentence
    assert isinstance(caught.value, UserInputError)  # every caller that handles bad input handles it


def test_an_app_renders_the_same_sentence_with_its_own_names():
    err = SettingError("{events} ({n:,}) must be at least {users} ({u:,}): one event per user.", ("events", "users"),
                       n=5, u=1200)
    assert str(err) == "Events (5) must be at least users (1,200): one event per user."
    flags = {"events": "--events", "users": "--users"}
    assert err.render(flags.__getitem__) == "--events (5) must be at least --users (1,200): one event per user."
    odd = SettingError("{path} is not a database; {db} is.", "db", path="x/{y}.csv")  # braces in a value stay
    assert str(odd) == "x/{y}.csv is not a database; db is."  # and a value that opens the sentence keeps its case
