"""`streamrec evaluate` end to end on small files, and its input errors."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import pytest

from models.popular import Popular
from models.registry import MODELS
from worker.cli import main
from worker.cmd_evaluate import build_model, load_dataset

# The hand-computed stream of tests/models/test_evaluate.py with users 1-4 and
# items 10, 20, 30 for a, b, c, plus two events rated 2 that --min-rating 4
# removes. Popularity ranks of the kept events are 0,0,0,0,1,1,0,2 among
# 1,1,2,1,2,2,1,3 candidates.
RATED_ROWS = [
    # user, item, rating, timestamp
    (1, 10, 5, 100),
    (1, 20, 4, 101),
    (2, 10, 5, 102),
    (2, 20, 5, 103),
    (3, 20, 4, 104),
    (3, 30, 5, 105),
    (1, 30, 5, 106),
    (4, 30, 5, 107),
    # Kept, these would make item 10 the most popular and a known item of user 4.
    (4, 10, 2, 106),
    (3, 10, 2, 103),
]

EXPECTED_TOP2 = {
    "recall": 7 / 8,
    "precision": 7 / 16,
    "mrr": (5 + 2 * 0.5 + 1 / 3) / 8,
    "ndcg": (5 + 2 / math.log2(3)) / 8,
    "mean_percentile_rank": 3 / 8,
}


@pytest.fixture
def ratings_csv(tmp_path: Path) -> Path:
    """A MovieLens ratings.csv-style file, rows out of timestamp order."""
    path = tmp_path / "ratings.csv"
    lines = ["userId,movieId,rating,timestamp"]
    lines += [f"{u},{i},{r}.0,{ts}" for u, i, r, ts in reversed(RATED_ROWS)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def grouplens_folder(tmp_path: Path) -> Path:
    """A GroupLens ml-100k-style folder with u.data, u.user and u.item."""
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{ts}\n" for u, i, r, ts in RATED_ROWS))
    (folder / "u.user").write_text(
        "1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n4|24|M|technician|43537\n"
    )
    flags = {10: "0|0|0|1|1|1" + "|0" * 13, 20: "0|1|1" + "|0" * 16, 30: "0|0|0|0|0|0|0|0|1" + "|0" * 10}
    (folder / "u.item").write_text(
        "".join(f"{item}|Movie {item} (1995)|01-Jan-1995||http://example.invalid/|{flags[item]}\n" for item in flags)
    )
    return folder


def run_evaluate(*args: str) -> int:
    return main(["--log-level", "WARNING", "evaluate", *args])


def read_output(path: Path) -> dict:
    return json.loads(path.read_text())


def test_csv_metrics_match_hand_computation(ratings_csv, tmp_path, capsys):
    output = tmp_path / "result.json"
    code = run_evaluate(
        "--dataset", str(ratings_csv), "--models", "popular", "--min-rating", "4",
        "--warmup", "0", "--top-n", "2", "--output", str(output),
    )
    document = read_output(output)
    overall = document["models"][0]["overall"]

    assert code == 0
    assert document["dataset"] == str(ratings_csv)
    assert document["min_rating"] == 4.0
    assert document["n_events"] == 8
    assert document["n_test_events"] == 8
    assert document["top_n"] == 2
    assert overall["n_events"] == 8
    for name, value in EXPECTED_TOP2.items():
        assert overall[name] == pytest.approx(value), name
    stdout = capsys.readouterr().out
    assert "recall@2" in stdout
    assert "popular" in stdout


def test_udata_file_gives_same_metrics(grouplens_folder, tmp_path):
    output = tmp_path / "result.json"
    code = run_evaluate(
        "--dataset", str(grouplens_folder / "u.data"), "--models", "popular", "--min-rating", "4",
        "--warmup", "0", "--top-n", "2", "--output", str(output),
    )
    overall = read_output(output)["models"][0]["overall"]

    assert code == 0
    for name, value in EXPECTED_TOP2.items():
        assert overall[name] == pytest.approx(value), name


def test_without_min_rating_keeps_every_event(ratings_csv, tmp_path):
    output = tmp_path / "result.json"
    code = run_evaluate("--dataset", str(ratings_csv), "--models", "popular", "--warmup", "0.5", "--output", str(output))
    document = read_output(output)

    assert code == 0
    assert document["min_rating"] is None
    assert document["n_events"] == 10
    assert document["n_warmup_events"] == 5
    assert document["models"][0]["overall"]["n_events"] == 5


def test_window_option_limits_window_metrics(ratings_csv, tmp_path):
    output = tmp_path / "result.json"
    run_evaluate(
        "--dataset", str(ratings_csv), "--models", "popular", "--min-rating", "4",
        "--warmup", "0", "--top-n", "1", "--window", "3", "--output", str(output),
    )
    window = read_output(output)["models"][0]["window"]

    # The last three kept events rank 1, 0 and 2.
    assert window["n_events"] == 3
    assert window["recall"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_registered_model_runs(name, grouplens_folder, tmp_path):
    output = tmp_path / "result.json"
    code = run_evaluate("--dataset", str(grouplens_folder), "--models", name, "--warmup", "0.3", "--output", str(output))
    result = read_output(output)["models"][0]

    assert code == 0
    assert result["model"] == name
    # int(0.3 * 10) = 3 warm-up events, 7 tested.
    assert result["overall"]["n_events"] == 7
    assert 0.0 <= result["overall"]["recall"] <= 1.0
    assert 0.0 <= result["overall"]["mean_percentile_rank"] <= 1.0


def test_several_models_in_one_run(ratings_csv, tmp_path):
    output = tmp_path / "result.json"
    code = run_evaluate("--dataset", str(ratings_csv), "--models", "popular,imf", "--seed", "3", "--output", str(output))
    models = read_output(output)["models"]

    assert code == 0
    assert [m["model"] for m in models] == ["popular", "imf"]
    assert models[1]["params"]["seed"] == 3
    assert models[0]["overall"]["n_events"] == models[1]["overall"]["n_events"]


class _PopularWithAttributes(Popular):
    """Popular that also takes user and item attributes, to check what the command passes."""

    name = "popular-with-attributes"

    def __init__(self, *, user_attributes=None, item_attributes=None, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.user_attributes = user_attributes
        self.item_attributes = item_attributes


def test_build_model_passes_attributes(grouplens_folder, monkeypatch):
    monkeypatch.setitem(MODELS, _PopularWithAttributes.name, _PopularWithAttributes)
    interactions = load_dataset(str(grouplens_folder), None)
    model = build_model(_PopularWithAttributes.name, interactions, seed=4)

    assert model.user_attributes[2] == {"age": 53.0, "gender=F": 1.0, "occupation=other": 1.0}
    assert model.item_attributes[20] == {"genre=Action": 1.0, "genre=Adventure": 1.0, "release_year": 1995.0}
    assert model.seed == 4


@pytest.mark.parametrize(
    "name", [n for n, cls in MODELS.items() if "user_attributes" in inspect.signature(cls).parameters]
)
def test_registered_feature_model_gets_attributes(name, grouplens_folder):
    interactions = load_dataset(str(grouplens_folder), None)
    model = build_model(name, interactions, seed=0)

    # A model keeps its constructor arguments in params(), in its own form.
    assert model.params()["user_attributes"]
    assert model.params()["item_attributes"]


def test_build_model_without_attribute_parameters(grouplens_folder):
    interactions = load_dataset(str(grouplens_folder), None)
    model = build_model("imf", interactions, seed=9)

    assert model.seed == 9
    assert not hasattr(model, "user_attributes")


def test_missing_file_is_reported(tmp_path, capsys):
    code = run_evaluate("--dataset", str(tmp_path / "absent.csv"), "--models", "popular")
    stderr = capsys.readouterr().err

    assert code == 1
    assert "absent.csv not found" in stderr
    assert "Traceback" not in stderr


def test_unparseable_file_is_reported(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("userId,movieId,rating,timestamp\n1,10,5,yesterday\n")
    code = run_evaluate("--dataset", str(path), "--models", "popular")
    stderr = capsys.readouterr().err

    assert code == 1
    assert "line 2" in stderr
    assert "yesterday" in stderr


def test_unknown_model_lists_choices(ratings_csv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_evaluate("--dataset", str(ratings_csv), "--models", "popular,nope")
    stderr = capsys.readouterr().err

    assert exit_info.value.code == 2
    assert "unknown model 'nope'" in stderr
    assert "popular" in stderr.split("choose from")[1]


@pytest.mark.parametrize("warmup", ["1", "1.5", "-0.2", "abc"])
def test_warmup_out_of_range_rejected(warmup, ratings_csv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_evaluate("--dataset", str(ratings_csv), "--warmup", warmup)
    stderr = capsys.readouterr().err

    assert exit_info.value.code == 2
    assert "--warmup" in stderr


def test_min_rating_removing_everything_is_reported(ratings_csv, capsys):
    code = run_evaluate("--dataset", str(ratings_csv), "--min-rating", "6")
    stderr = capsys.readouterr().err

    assert code == 1
    assert "rated at least 6" in stderr


def test_data_dir_with_file_dataset_rejected(ratings_csv, tmp_path, capsys):
    code = run_evaluate("--dataset", str(ratings_csv), "--data-dir", str(tmp_path))
    stderr = capsys.readouterr().err

    assert code == 1
    assert "--data-dir applies only to --dataset movielens-100k" in stderr


def test_output_in_missing_folder_rejected(ratings_csv, tmp_path, capsys):
    code = run_evaluate("--dataset", str(ratings_csv), "--output", str(tmp_path / "absent" / "result.json"))
    stderr = capsys.readouterr().err

    assert code == 1
    assert "does not exist" in stderr


def test_json_written_to_default_path(ratings_csv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = run_evaluate("--dataset", str(ratings_csv), "--models", "popular", "--warmup", "0.5")
    assert code == 0
    document = read_output(tmp_path / "evaluation.json")
    assert document["models"][0]["model"] == "popular"


def test_no_output_writes_nothing(ratings_csv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = run_evaluate("--dataset", str(ratings_csv), "--models", "popular", "--warmup", "0.5", "--no-output")
    assert code == 0
    assert not (tmp_path / "evaluation.json").exists()
