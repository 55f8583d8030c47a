"""Live mode: new events flow into a database while readers watch it.

`Follower` ingests what lands in a folder or grows in a file, `Replayer` replays one database's log into
another in time order; both write each batch as one short transaction. `new_since_model` says what a model
has not seen, `data_version` / `events_since` let a reader notice and mark new batches.
"""

from core.live.follow import FileState, FollowBatch, Follower
from core.live.novelty import (
    DataVersion,
    NewSinceModel,
    data_version,
    events_since,
    new_since_model,
    trained_until_of,
)
from core.live.replay import ReplayBatch, Replayer, ReplaySummary

__all__ = [
    "FileState",
    "FollowBatch",
    "Follower",
    "ReplayBatch",
    "Replayer",
    "ReplaySummary",
    "NewSinceModel",
    "DataVersion",
    "new_since_model",
    "data_version",
    "events_since",
    "trained_until_of",
]
