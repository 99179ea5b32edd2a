"""The MovieLens-100k and interaction-file loaders, on small files written here."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from models.datasets import DatasetError, load_interactions, load_movielens_100k

U_DATA = "3\t30\t5\t300\n1\t10\t4\t100\n2\t20\t3\t100\n1\t30\t1\t200\n"
U_USER = "1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n"
U_ITEM = (
    "10|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "20|GoldenEye (1995)|01-Jan-1995||http://x|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0\n"
    "30|Unknown Film|||http://x|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
)
INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n3\t30\t5\t300\n1\t10\t4\t100\n2\t20\t3\t100\n1\t30\t1\t200\n"
USER = "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n1\t24\tM\ttechnician\t85711\n"
ITEM = ("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "10\tToy Story\t1995\tAnimation Children's Comedy\n30\tUnknown Film\tunkonwn\tDrama\n")


def _grouplens_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text(U_DATA)
    (folder / "u.user").write_text(U_USER)
    (folder / "u.item").write_text(U_ITEM, encoding="latin-1")
    return folder


def _recbole_cache(tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    wheel_folder = cache / "recbole-1.2.1"
    wheel_folder.mkdir(parents=True)
    with zipfile.ZipFile(wheel_folder / "recbole-1.2.1-py3-none-any.whl", "w") as wheel:
        prefix = "recbole/dataset_example/ml-100k/ml-100k"
        wheel.writestr(prefix + ".inter", INTER)
        wheel.writestr(prefix + ".user", USER)
        wheel.writestr(prefix + ".item", ITEM)
    return cache


def _check_events(data) -> None:
    # Sorted by timestamp, stable for the tie at 100 (file order: user 1, then 2).
    assert data.users.tolist() == [1, 2, 1, 3]
    assert data.items.tolist() == [10, 20, 30, 30]
    assert data.ratings.tolist() == [4.0, 3.0, 1.0, 5.0]
    assert data.timestamps.tolist() == [100.0, 100.0, 200.0, 300.0]


def test_grouplens_folder(tmp_path):
    data = load_movielens_100k(_grouplens_folder(tmp_path))
    _check_events(data)
    assert data.item_titles[10] == "Toy Story (1995)"
    assert data.user_attributes[1] == {"age": 24.0, "gender=M": 1.0, "occupation=technician": 1.0}
    assert data.item_attributes[10] == {"genre=Animation": 1.0, "genre=Children's": 1.0, "genre=Comedy": 1.0,
                                        "release_year": 1995.0}
    assert "release_year" not in data.item_attributes[30]


def test_recbole_wheel_in_cache(tmp_path):
    data = load_movielens_100k(cache_dir=_recbole_cache(tmp_path))
    _check_events(data)
    assert data.item_titles[10] == "Toy Story (1995)"
    assert data.item_titles[30] == "Unknown Film"
    assert data.item_attributes[30] == {"genre=Drama": 1.0}
    assert data.user_attributes[1]["age"] == 24.0


def test_min_rating_filter(tmp_path):
    data = load_movielens_100k(_grouplens_folder(tmp_path)).filter_min_rating(4)
    assert data.users.tolist() == [1, 3]


def test_csv_with_movielens_header(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\nu2,m1,4.5,20\nu1,m2,3,10\n")
    data = load_interactions(path)
    assert data.users.tolist() == ["u1", "u2"]
    assert data.items.tolist() == ["m2", "m1"]
    assert data.ratings.tolist() == [3.0, 4.5]


def test_recbole_inter_file(tmp_path):
    path = tmp_path / "x.inter"
    path.write_text(INTER)
    _check_events(load_interactions(path))


def test_tsv_without_rating_column(tmp_path):
    path = tmp_path / "events.tsv"
    path.write_text("user\titem\tts\n1\t2\t5\n")
    data = load_interactions(path)
    assert data.ratings.tolist() == [1.0]


@pytest.mark.parametrize("text, message", [
    ("a,b\n1,2\n", "no header"),
    ("userId,movieId,rating,timestamp\n1,2,x,4\n", "line 2"),
    ("userId,movieId,rating,timestamp\n", "no interactions"),
])
def test_malformed_files(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        load_interactions(path)


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="cannot read"):
        load_interactions(tmp_path / "absent.csv")


def test_folder_without_u_data(tmp_path):
    with pytest.raises(DatasetError, match="u.data"):
        load_movielens_100k(tmp_path)


def test_ids_types_are_kept(tmp_path):
    data = load_movielens_100k(_grouplens_folder(tmp_path))
    assert data.users.dtype == np.int64
