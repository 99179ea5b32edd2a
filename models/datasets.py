"""Loaders for interaction data sets: MovieLens-100k and interaction files.

Event ids stay as they appear in the file: integers where every id in the
column is an integer, strings otherwise. Timestamps are seconds since the Unix
epoch. Events come back sorted by timestamp, stable for ties, so file order
decides among events of the same second.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

RECBOLE_VERSION = "1.2.1"
_WHEEL_FOLDER = "recbole/dataset_example/ml-100k/"
_GENRES = (
    "unknown Action Adventure Animation Children's Comedy Crime Documentary Drama Fantasy "
    "Film-Noir Horror Musical Mystery Romance Sci-Fi Thriller War Western"
).split()

# Column names accepted in a header, per field, compared case-insensitively.
_HEADER_NAMES = {
    "user": ("user", "user_id", "userid", "user_id:token"),
    "item": ("item", "item_id", "itemid", "movieid", "movie_id", "item_id:token"),
    "rating": ("rating", "value", "rating:float"),
    "ts": ("timestamp", "ts", "time", "timestamp:float"),
}


class DatasetError(Exception):
    """A data set could not be found, fetched or parsed."""


@dataclass
class Interactions:
    """Interactions in timestamp order, with optional user and item attributes.

    `users`, `items`, `ratings` and `timestamps` are parallel arrays.
    `user_attributes` maps a user id to named features, `item_attributes` an
    item id to named features, `item_titles` an item id to its title.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    user_attributes: dict = field(default_factory=dict)
    item_attributes: dict = field(default_factory=dict)
    item_titles: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.users)

    def filter_min_rating(self, min_rating: float | None) -> Interactions:
        """Return only the interactions rated `min_rating` or higher."""
        if min_rating is None:
            return self
        keep = self.ratings >= min_rating
        return Interactions(
            self.users[keep],
            self.items[keep],
            self.ratings[keep],
            self.timestamps[keep],
            self.user_attributes,
            self.item_attributes,
            self.item_titles,
        )


def default_cache_dir() -> Path:
    """Return $STREAMREC_CACHE, or ~/.cache/streamrec."""
    return Path(os.environ.get("STREAMREC_CACHE", Path.home() / ".cache" / "streamrec"))


def load_movielens_100k(path: str | os.PathLike | None = None, cache_dir: Path | None = None) -> Interactions:
    """Load MovieLens-100k with user and item attributes.

    `path` is a GroupLens `ml-100k` folder (with `u.data`, `u.user`, `u.item`).
    Without it, the RecBole wheel that ships the same data is fetched once with
    `pip download` into `cache_dir` and read from there.
    """
    if path is not None:
        return _load_grouplens_folder(Path(path))
    wheel = fetch_recbole_wheel(cache_dir or default_cache_dir())
    with zipfile.ZipFile(wheel) as archive:
        def read(name: str) -> str:
            return archive.read(_WHEEL_FOLDER + name).decode("utf-8")

        interactions = parse_interactions(read("ml-100k.inter"), "ml-100k.inter")
        interactions.user_attributes = _parse_recbole_users(read("ml-100k.user"))
        interactions.item_attributes, interactions.item_titles = _parse_recbole_items(read("ml-100k.item"))
    return interactions


def fetch_recbole_wheel(cache_dir: Path) -> Path:
    """Return the cached RecBole wheel, downloading it with pip if missing."""
    folder = Path(cache_dir) / f"recbole-{RECBOLE_VERSION}"
    wheels = sorted(folder.glob("recbole-*.whl"))
    if wheels:
        return wheels[0]
    folder.mkdir(parents=True, exist_ok=True)
    logger.info("downloading recbole==%s (it ships ml-100k) into %s", RECBOLE_VERSION, folder)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               f"recbole=={RECBOLE_VERSION}", "-d", str(folder)]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(folder.glob("recbole-*.whl"))
    if result.returncode != 0 or not wheels:
        raise DatasetError(
            f"could not download recbole=={RECBOLE_VERSION} with pip (exit {result.returncode}): "
            f"{result.stderr.strip()[-500:]}; pass the path of a GroupLens ml-100k folder instead"
        )
    return wheels[0]


def load_interactions(path: str | os.PathLike) -> Interactions:
    """Load interactions from a GroupLens `u.data`, a RecBole `.inter`, or a CSV/TSV file with a header.

    A CSV or TSV header must name the user, item and timestamp columns; a
    rating column is optional (1.0 when absent). Accepted names include
    `user`, `user_id`, `userId`, `item`, `item_id`, `movieId`, `rating`,
    `timestamp` and `ts`, in any case.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "u.data").exists():
            return _load_grouplens_folder(path)
        raise DatasetError(f"{path} is a folder without u.data; pass an interactions file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read interactions file {path}: {exc}") from exc
    return parse_interactions(text, str(path))


def parse_interactions(text: str, source: str) -> Interactions:
    """Parse interactions text; `source` names the file in error messages."""
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line else ","
    fields = [f.strip() for f in first_line.split(delimiter)]
    columns = _header_columns(fields)
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    if columns is None:
        if len(fields) != 4:
            raise DatasetError(
                f"{source}: no header naming user, item and timestamp columns, and the first line has "
                f"{len(fields)} fields, not the 4 of GroupLens u.data (user, item, rating, timestamp)"
            )
        columns = {"user": 0, "item": 1, "rating": 2, "ts": 3}
    else:
        next(rows)
    users, items, ratings, timestamps = [], [], [], []
    for line_number, row in enumerate(rows, start=1 if columns is None else 2):
        if not row or not "".join(row).strip():
            continue
        try:
            users.append(row[columns["user"]].strip())
            items.append(row[columns["item"]].strip())
            ratings.append(float(row[columns["rating"]]) if "rating" in columns else 1.0)
            timestamps.append(float(row[columns["ts"]]))
        except (IndexError, ValueError) as exc:
            raise DatasetError(f"{source}, line {line_number}: cannot parse {row!r}: {exc}") from exc
    if not users:
        raise DatasetError(f"{source}: no interactions found")
    timestamps_array = np.asarray(timestamps, dtype=np.float64)
    order = np.argsort(timestamps_array, kind="stable")
    return Interactions(
        _ids_array(users)[order],
        _ids_array(items)[order],
        np.asarray(ratings, dtype=np.float64)[order],
        timestamps_array[order],
    )


def _header_columns(fields: list[str]) -> dict[str, int] | None:
    lowered = [f.lower() for f in fields]
    columns = {}
    for key, names in _HEADER_NAMES.items():
        for position, name in enumerate(lowered):
            if name in names:
                columns[key] = position
                break
    if {"user", "item", "ts"} <= columns.keys():
        return columns
    return None


def _ids_array(values: list[str]) -> np.ndarray:
    """Return integer ids when every value is an integer, else string ids."""
    try:
        return np.asarray([int(v) for v in values], dtype=np.int64)
    except ValueError:
        return np.asarray(values, dtype=object)


def _load_grouplens_folder(folder: Path) -> Interactions:
    data = folder / "u.data"
    if not data.exists():
        raise DatasetError(f"{folder} has no u.data; pass the GroupLens ml-100k folder")
    interactions = parse_interactions(data.read_text(encoding="utf-8"), str(data))
    if (folder / "u.user").exists():
        interactions.user_attributes = _parse_grouplens_users((folder / "u.user").read_text(encoding="latin-1"))
    if (folder / "u.item").exists():
        interactions.item_attributes, interactions.item_titles = _parse_grouplens_items(
            (folder / "u.item").read_text(encoding="latin-1")
        )
    return interactions


def _user_features(age: str, gender: str, occupation: str) -> dict[str, float]:
    return {"age": float(age), f"gender={gender}": 1.0, f"occupation={occupation}": 1.0}


def _parse_grouplens_users(text: str) -> dict:
    users = {}
    for line in text.splitlines():
        if line.strip():
            user, age, gender, occupation, _zip = line.split("|")
            users[int(user)] = _user_features(age, gender, occupation)
    return users


def _parse_recbole_users(text: str) -> dict:
    users = {}
    for line in text.splitlines()[1:]:
        if line.strip():
            user, age, gender, occupation, _zip = line.split("\t")
            users[int(user)] = _user_features(age, gender, occupation)
    return users


def _item_features(year: str, genres: list[str]) -> dict[str, float]:
    features = {f"genre={genre}": 1.0 for genre in genres}
    # Some titles have no release year (RecBole writes "unkonwn", GroupLens
    # leaves it empty); they get no release_year feature.
    if year.strip().isdigit():
        features["release_year"] = float(year)
    return features


def _parse_grouplens_items(text: str) -> tuple[dict, dict]:
    attributes, titles = {}, {}
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("|")
        item, title, release_date = int(fields[0]), fields[1], fields[2]
        flags = fields[5:24]
        genres = [genre for genre, flag in zip(_GENRES, flags) if flag == "1"]
        attributes[item] = _item_features(release_date[-4:], genres)
        titles[item] = title
    return attributes, titles


def _parse_recbole_items(text: str) -> tuple[dict, dict]:
    attributes, titles = {}, {}
    for line in text.splitlines()[1:]:
        if not line.strip():
            continue
        item, title, year, genres = (line.split("\t") + [""] * 4)[:4]
        attributes[int(item)] = _item_features(year, genres.split())
        titles[int(item)] = f"{title} ({year})" if year.strip().isdigit() else title
    return attributes, titles
