"""The defaults rule (core.train.defaults) on hand-built profiles and a hand-counted log."""

import numpy as np
import pytest

from core.model import ModelConfig
from core.sequences import Sequences
from core.train import TrainConfig
from core.train.defaults import DataProfile, adapt_defaults, profile


def test_profile_counts_training_events_only():
    lens = [5, 3, 12]
    n = sum(lens)
    s = Sequences(
        user_ids=np.array(["a", "b", "c"], dtype=object), offsets=np.r_[0, np.cumsum(lens)].astype(np.int64),
        items=np.arange(1, n + 1, dtype=np.int64) % 7 + 1, ts=np.arange(n, dtype=np.int64),
        gaps=np.ones(n, np.int64), event_types=np.zeros(n, np.int64), context=np.zeros((n, 0), np.int64),
    )
    train_end = s.offsets[1:] - 2  # leave-one-out: the last two events of each user are held out
    p = profile(s, train_end, valid_users=3, n_items=7)
    assert (p.users, p.items, p.train_events, p.valid_users) == (3, 7, 3 + 1 + 10, 3)
    assert p.events_per_item == pytest.approx(14 / 7)
    assert p.history_p95 == int(np.ceil(np.quantile([3, 1, 10], 0.95)))  # 10 (9.3 rounded up)


@pytest.mark.parametrize(
    ("p95", "per_item", "valid", "expected"),
    [
        (309, 58.3, 943, (50, 0.2, 20)),  # MovieLens-100k's profile: today's window and dropout, more patience
        (18, 10.8, 19_412, (20, 0.1, 10)),  # Amazon Toys: short window, sparse -> dropout 0.1
        (31, 25.0, 5_000, (40, 0.2, 10)),  # window rounds up to a multiple of 10
        (3, 19.9, 100, (20, 0.1, 20)),  # never below 20
    ],
)
def test_rule_sets_window_dropout_and_patience(p95, per_item, valid, expected):
    prof = DataProfile(users=valid, items=1000, train_events=int(per_item * 1000), history_p95=p95,
                       events_per_item=per_item, valid_users=valid)
    m, t = adapt_defaults(prof)
    assert (m.max_len, m.dropout, t.patience) == expected
    assert m.n_layers == 1 and ModelConfig().n_layers == 2  # one block on every log; the model's own default is 2
    assert m.repeat_term is True and ModelConfig().repeat_term is False  # the repeat term on every log
    assert t.lr_decay == (0.5 if valid >= 2_000 else 1.0) and TrainConfig().lr_decay == 1.0  # constant elsewhere
    assert m.d_model == ModelConfig().d_model and t.lr == TrainConfig().lr  # nothing else changes


def test_settings_the_user_gave_are_left_alone():
    prof = DataProfile(100, 1000, 5000, 18, 5.0, 100)
    m, t = adapt_defaults(prof, ModelConfig(max_len=80, dropout=0.1, n_layers=2), TrainConfig(patience=3),
                          frozenset({"max_len", "dropout", "patience", "n_layers", "lr_decay", "repeat_term"}))
    assert (m.max_len, m.dropout, t.patience, m.n_layers, t.lr_decay) == (80, 0.1, 3, 2, 1.0)  # old ones reachable
    assert m.repeat_term is False
