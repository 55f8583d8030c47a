"""What an ingest run returns, and how a generic file's columns map onto events."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

from core.errors import SettingError, UserInputError
from core.store.edges import EdgeCounts

__all__ = ["IngestResult", "ColumnMapping", "TimeUnit"]

TimeUnit = Literal["auto", "s", "ms", "iso"]


@dataclass(frozen=True)
class IngestResult:
    """The outcome of one ingest run (one transaction).

    `accepted` rows were added to `events`; `rejected` rows went to `rejects` with a reason;
    `duplicates` were dropped because an identical event was earlier in the source or already stored.
    `assumptions` says what the loader had to assume (a time unit, a date window), one sentence each;
    `reasons` are the most frequent reasons of the rejected rows with their counts.
    """

    accepted: int
    rejected: int
    duplicates: int
    run_id: int
    assumptions: list[str] = field(default_factory=list)
    message: str = ""
    reasons: dict[str, int] = field(default_factory=dict)  # the most frequent reject reasons -> rows (at most 5)
    edges: EdgeCounts | None = None  # what the run did with its social edges file (None: it had none)

    def as_dict(self) -> dict:
        """The CLI's --json object."""
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "run_id": self.run_id,
            "assumptions": list(self.assumptions),
            "message": self.message,
            "reject_reasons": dict(self.reasons),
            **({"edges": self.edges.as_dict()} if self.edges is not None else {}),
        }


@dataclass(frozen=True)
class ColumnMapping:
    """Which columns of a generic file hold what. Only `user`, `item` and `time` are required."""

    user: str = "user_id"  # column with the user id
    item: str = "item_id"  # column with the item id
    time: str = "timestamp"  # unix seconds, unix milliseconds or ISO-8601 text
    event: str | None = None  # event type column; absent = every row is an "interaction"
    value: str | None = None  # rating / weight / dwell time column
    category: str | None = None  # item category column (several categories joined by `category_sep`)
    category_sep: str = "|"  # separator between several categories in one cell
    title: str | None = None  # item title column
    context: tuple[str, ...] = ()  # context columns (device, location, ...) stored per event
    time_unit: TimeUnit = "auto"  # auto detects seconds / milliseconds / ISO text and says which
    delimiter: str | None = None  # CSV delimiter; None = detect from the extension and the header line
    encoding: str = "utf-8"  # text encoding of CSV files: utf-8, latin-1 or utf-16
    event_type: str = "interaction"  # event type used when there is no event column
    users_file: str | None = None  # CSV/TSV/Parquet: the user id column (as `user`, or user_id), the rest attributes
    items_file: str | None = None  # CSV/TSV/Parquet: item id, title and category columns (as above), the rest attributes
    social_file: str | None = None  # CSV/TSV/Parquet social edges file with a header line (one edge per row)
    src_col: str = "src_user"  # social file: the column with the edge's source user
    dst_col: str = "dst_user"  # social file: the column with the edge's target user
    edge_time_col: str | None = None  # social file: when the tie started (read like `time`, per `time_unit`)
    edge_weight_col: str | None = None  # social file: a positive weight per edge (absent = 1.0)
    edge_kind: str = "friend"  # social file: the kind of every edge (friend, trust, follow, ...)
    directed: bool = False  # social file: True keeps (a, b) and (b, a) apart; False stores a pair once

    def __post_init__(self) -> None:
        if self.time_unit not in ("auto", "s", "ms", "iso"):
            raise UserInputError(f"Unknown time unit {self.time_unit!r}; expected auto, s, ms or iso.")
        if self.encoding.lower().replace("_", "-") not in ("utf-8", "utf8", "latin-1", "latin1", "utf-16"):
            raise UserInputError(f"Unknown encoding {self.encoding!r}; expected utf-8, latin-1 or utf-16.")
        if not isinstance(self.category_sep, str) or not self.category_sep:
            raise SettingError("The category separator ({category_sep}, or category_sep in a mapping file) must not "
                               "be empty; leave it out to split categories on |.", "category_sep")  # fmt: skip
        if self.event and self.event_type != "interaction":
            raise SettingError(
                "Give either an event type column ({column!r}) or one event type for every row "
                "({value!r}, {event_type}), not both.", "event_type", column=self.event, value=self.event_type
            )
        object.__setattr__(self, "context", tuple(self.context))

    @classmethod
    def from_toml(cls, path: str | Path) -> ColumnMapping:
        """Read a mapping from a small TOML file whose keys are this class's field names.

        Example::

            user = "visitor"
            item = "sku"
            time = "when"
            context = ["device", "country"]
        """
        p = Path(path)
        if not p.is_file():
            raise UserInputError(f"The mapping file {p} does not exist; expected a TOML file with user, item and time keys.")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserInputError(f"The mapping file {p} is not valid TOML ({exc}).") from exc
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserInputError(
                f"The mapping file {p} has unknown keys {', '.join(unknown)}; expected some of {', '.join(sorted(known))}."
            )
        if isinstance(data.get("context"), str):
            data["context"] = [data["context"]]
        return cls(**data)
