"""The registry of ingest presets: one per public log format (see ../shared/FORMATS.md), plus `generic`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import UserInputError
from core.ingest.presets.amazon import load_amazon_reviews
from core.ingest.presets.common import IngestOptions
from core.ingest.presets.generic import detect_format, load_generic
from core.ingest.presets.movielens import load_movielens_1m, load_movielens_100k
from core.ingest.presets.movielens_latest import load_movielens_latest
from core.ingest.presets.retailrocket import load_retailrocket
from core.ingest.presets.seqrec import load_seqrec
from core.ingest.presets.social_formats import load_ciao, load_lastfm_hetrec
from core.ingest.presets.taobao import load_taobao
from core.ingest.readers import first_line
from core.ingest.stage import Run, Stage

__all__ = ["Preset", "PRESETS", "IngestOptions", "get_preset", "preset_names"]


@dataclass(frozen=True)
class Preset:
    """A named log format: what SOURCE must be, and the loader that turns it into a stage."""

    name: str
    description: str  # one line, shown by `interestlens ingest --help` and the docs
    source: str  # what the SOURCE argument is
    load: Callable[[Run, Path, IngestOptions], Stage]
    aliases: tuple[str, ...] = ()
    # whether an events file starts with a header line (live ingest repeats it at the top of every chunk)
    header: Callable[[Path], bool] = lambda _path: False


def _amazon_header(path: Path) -> bool:
    return path.name.lower().endswith(".csv") and first_line(path).lower().replace(" ", "").startswith("user,item")


def _generic_header(path: Path) -> bool:
    return detect_format(path) in ("csv", "tsv")


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "movielens-100k",
            "MovieLens 100k ratings with genres and user attributes (original u.* or RecBole atomic files)",
            "the ml-100k folder, u.data, or RecBole's ml-100k.inter",
            load_movielens_100k,
            header=lambda path: path.suffix == ".inter",
        ),
        Preset(
            "movielens-1m",
            "MovieLens 1M ratings (::-separated) with genres and user attributes",
            "the ml-1m folder or its ratings.dat",
            load_movielens_1m,
        ),
        Preset(
            "movielens-latest",
            "MovieLens latest / latest-small / 20M / 25M ratings.csv, movies.csv and optional tags.csv",
            "the folder or its ratings.csv",
            load_movielens_latest,
            aliases=("movielens-latest-small", "movielens-20m", "movielens-25m"),
            header=lambda _path: True,
        ),
        Preset(
            "amazon-reviews",
            "Amazon reviews 2018 JSON lines (gzip or not) with optional meta_*.json.gz; or ratings-only CSV",
            "the reviews file (Category_5.json.gz, Category.json.gz or ratings .csv)",
            load_amazon_reviews,
            header=_amazon_header,
        ),
        Preset(
            "taobao",
            "Taobao UserBehavior CSV (pv/cart/fav/buy), item categories, documented time window enforced",
            "UserBehavior.csv or its folder",
            load_taobao,
        ),
        Preset(
            "retailrocket",
            "RetailRocket events.csv (ms times) with item categories from item_properties_part*.csv",
            "the folder or its events.csv",
            load_retailrocket,
            header=lambda _path: True,
        ),
        Preset(
            "lastfm-hetrec",
            "HetRec 2011 Last.fm: tag events on artists (tag = category), friends as undirected edges",
            "the hetrec2011-lastfm-2k folder",
            load_lastfm_hetrec,
            header=lambda _path: True,
        ),
        Preset(
            "ciao",
            "Ciao(DVD) dated movie ratings (genre = category) with directed trust edges",
            "a folder with movie-ratings.txt and trusts.txt",
            load_ciao,
        ),
        Preset(
            "seqrec",
            "Sequence benchmark files (S3Rec/ICLRec Amazon .txt): one line per user, items in time order, no times",
            "the .txt file (user item1 item2 ... per line)",
            load_seqrec,
        ),
        Preset(
            "generic",
            "Any CSV/TSV/Parquet/JSON lines file with a column mapping (column options or a mapping TOML file)",
            "one events file",
            load_generic,
            header=_generic_header,
        ),
    )
}


def preset_names() -> list[str]:
    """Every accepted preset name (names and aliases)."""
    return sorted([*PRESETS, *(a for p in PRESETS.values() for a in p.aliases)])


def get_preset(name: str) -> Preset:
    """The preset called `name` (or one of its aliases); a clear error listing the choices otherwise."""
    key = name.strip().lower()
    for preset in PRESETS.values():
        if key == preset.name or key in preset.aliases:
            return preset
    raise UserInputError(f"Unknown preset {name!r}; expected one of {', '.join(preset_names())}.")
