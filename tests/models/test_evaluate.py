"""Test-then-learn protocol and metrics on small hand-made streams."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from models.base import Event
from models.evaluate import Candidates, EvaluationError, evaluate, rank_among_candidates
from models.imf import IncrementalMF
from models.metrics import RankingMetrics, event_metrics
from models.popular import Popular
from models.topn import rank_of

# A stream with popularity ranks worked out by hand (warm-up 0, so every event
# is tested). Item indices in order of first sight: a=0, b=1, c=2.
#
#   pos  event    seen   counts before      user knows  candidates   rank
#   0    u1 a     -      -                  -           {a*}          0
#   1    u1 b     a      a1                 a           {b*}          0
#   2    u2 a     a b    a1 b1              -           {a b}         0  (tie, a has the lower index)
#   3    u2 b     a b    a2 b1              a           {b}           0
#   4    u3 b     a b    a2 b2              -           {a b}         1  (tie, a first)
#   5    u3 c     a b    a2 b3              b           {a c*}        1  (c unseen: last)
#   6    u1 c     a b c  a2 b3 c1           a b         {c}           0
#   7    u4 c     a b c  a2 b3 c2           -           {a b c}       2  (b 3, then a 2 before c 2)
#
# * the event's item, never seen before.
HAND_STREAM = [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u3", "b"), ("u3", "c"), ("u1", "c"), ("u4", "c")]
HAND_RANKS = [0, 0, 0, 0, 1, 1, 0, 2]
HAND_COUNTS = [1, 1, 2, 1, 2, 2, 1, 3]


def make_events(pairs: list[tuple[str, str]]) -> list[Event]:
    return [Event(user, item, float(ts)) for ts, (user, item) in enumerate(pairs)]


def run_recording(events, models, **kwargs):
    """Evaluate and return the result and every (label, position, rank, count) reported."""
    reported: list[tuple[str, int, int, int]] = []
    result = evaluate(events, models, on_rank=lambda *args: reported.append(args), **kwargs)
    return result, reported


def test_popular_ranks_match_hand_computation():
    _, reported = run_recording(make_events(HAND_STREAM), {"popular": Popular()}, warmup=0.0)

    assert [position for _, position, _, _ in reported] == list(range(8))
    assert [rank for _, _, rank, _ in reported] == HAND_RANKS
    assert [count for _, _, _, count in reported] == HAND_COUNTS


def test_popular_metrics_match_hand_computation():
    result, _ = run_recording(make_events(HAND_STREAM), {"popular": Popular()}, warmup=0.0, top_n=2)
    overall = result.models[0].overall

    assert overall.n_events == 8
    # Ranks 0,0,0,0,1,1,0,2 with N=2: seven hits, five at rank 0 and two at rank 1.
    assert overall.recall == pytest.approx(7 / 8)
    assert overall.precision == pytest.approx(7 / 8 / 2)
    assert overall.mrr == pytest.approx((5 + 2 * 0.5 + 1 / 3) / 8)
    assert overall.ndcg == pytest.approx((5 + 2 / math.log2(3)) / 8)
    # Percentile ranks: rank / (count - 1) is 1 at positions 4, 5 and 7, else 0.
    assert overall.mean_percentile_rank == pytest.approx(3 / 8)


def test_stream_counts_in_result():
    result, _ = run_recording(make_events(HAND_STREAM), {"popular": Popular()}, warmup=0.0)

    assert result.n_events == 8
    assert result.n_test_events == 8
    assert result.mean_candidates == pytest.approx(sum(HAND_COUNTS) / 8)
    # Items first seen at positions 0, 1 and 5.
    assert result.n_unseen_item_events == 3


def test_warmup_events_are_not_tested():
    events = make_events(HAND_STREAM)
    result, reported = run_recording(events, {"popular": Popular()}, warmup=0.5)

    assert result.n_warmup_events == 4
    assert result.n_test_events == 4
    assert [position for _, position, _, _ in reported] == [4, 5, 6, 7]
    # Warm-up events are still learned and seen: the tested ranks are those of
    # the full run.
    assert [rank for _, _, rank, _ in reported] == HAND_RANKS[4:]


def test_warmup_share_rounds_down():
    events = make_events(HAND_STREAM)
    result, _ = run_recording(events, {"popular": Popular()}, warmup=0.3)

    # int(0.3 * 8) = 2 warm-up events.
    assert result.n_warmup_events == 2
    assert result.models[0].overall.n_events == 6


def test_candidates_exclude_user_known_items():
    # u1 has interacted with a and b, so at the last event only the event's
    # item c and d are candidates, although a and b have more interactions.
    pairs = [("u1", "a"), ("u2", "a"), ("u1", "b"), ("u2", "b"), ("u2", "c"), ("u3", "d"), ("u1", "c")]
    _, reported = run_recording(make_events(pairs), {"popular": Popular()}, warmup=0.0)
    _, position, rank, count = reported[-1]

    assert position == 6
    assert count == 2
    # c and d both have one interaction; c (index 2) wins the tie against d (index 3).
    assert rank == 0


def test_candidates_include_event_item_the_user_knows():
    # u1 interacts with a twice; the repeat is still a candidate and ranks first.
    pairs = [("u1", "a"), ("u2", "b"), ("u3", "b"), ("u1", "a")]
    _, reported = run_recording(make_events(pairs), {"popular": Popular()}, warmup=0.0)
    _, _, rank, count = reported[-1]

    # Candidates: b (not known to u1) and a (the event's item): b has 2, a has 1.
    assert count == 2
    assert rank == 1


def test_known_items_stay_per_user():
    # u1 and u2 know a and b; u3 has seen nothing, so a and b stay candidates for u3.
    pairs = [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u3", "c"), ("u3", "a")]
    _, reported = run_recording(make_events(pairs), {"popular": Popular()}, warmup=0.5)
    counts = {position: count for _, position, _, count in reported}

    # Position 4: candidates a, b and the unseen c.
    assert counts[4] == 3
    # Position 5: c is now a known item of u3, so the candidates are a and b.
    assert counts[5] == 2


def test_unseen_item_ranks_last_for_every_model():
    pairs = [("u1", "a"), ("u2", "b"), ("u3", "c"), ("u1", "z")]
    models = {"popular": Popular(), "imf": IncrementalMF(seed=3)}
    _, reported = run_recording(make_events(pairs), models, warmup=0.75)

    assert len(reported) == 2
    for label, _, rank, count in reported:
        assert count == 3, label
        assert rank == 2, label


def test_models_in_one_pass_see_same_events():
    events = make_events(HAND_STREAM * 3)
    models = {"popular": Popular(), "imf": IncrementalMF(seed=1), "decayed": Popular(half_life=2.0)}
    result, reported = run_recording(events, models, warmup=0.25)

    by_model: dict[str, list[tuple[int, int]]] = {}
    for label, position, _, count in reported:
        by_model.setdefault(label, []).append((position, count))
    assert by_model["popular"] == by_model["imf"]
    assert by_model["popular"] == by_model["decayed"]
    assert [m.overall.n_events for m in result.models] == [18, 18, 18]
    assert [m.model for m in result.models] == ["popular", "imf", "decayed"]
    for model in models.values():
        assert model.n_items == 3
        assert model.n_users == 4


def test_model_alone_or_alongside_gives_same_metrics():
    events = make_events(HAND_STREAM * 2)
    alone = evaluate(events, {"imf": IncrementalMF(seed=5)}, warmup=0.25)
    together = evaluate(events, {"popular": Popular(), "imf": IncrementalMF(seed=5)}, warmup=0.25)

    assert alone.models[0].overall == together.models[1].overall


def test_window_covers_last_tested_events():
    result, _ = run_recording(make_events(HAND_STREAM), {"popular": Popular()}, warmup=0.0, top_n=1, window=3)
    window = result.models[0].window

    # The last three ranks are 1, 0, 2 among 2, 1 and 3 candidates.
    assert window.n_events == 3
    assert window.recall == pytest.approx(1 / 3)
    assert window.mrr == pytest.approx((0.5 + 1 + 1 / 3) / 3)
    assert window.mean_percentile_rank == pytest.approx((1 + 0 + 1) / 3)


def test_window_longer_than_stream_covers_all():
    result, _ = run_recording(make_events(HAND_STREAM), {"popular": Popular()}, warmup=0.0, window=100)

    assert result.models[0].window == result.models[0].overall


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_rejected_update_is_counted_not_raised():
    # A learning rate this large would drive the factors to infinity from the
    # second update on; the model rejects those events and keeps its state.
    pairs = [("u1", "a"), ("u1", "b"), ("u1", "c"), ("u1", "d"), ("u1", "a")]
    model = IncrementalMF(learning_rate=1e150, seed=0)
    result = evaluate(make_events(pairs), {"imf": model}, warmup=0.0)

    assert result.models[0].skipped_updates > 0
    assert result.models[0].overall.n_events == 5
    assert np.all(np.isfinite(model.scores("u1")))


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_nan_score_for_event_item_raises():
    # With this learning rate the finite factors of u1 and a overflow in their
    # dot product, +inf and -inf terms add up to NaN.
    pairs = [("u1", "a"), ("u1", "b"), ("u1", "c"), ("u1", "d"), ("u1", "a")]

    with pytest.raises(EvaluationError, match="scored the event's item 'a' as NaN"):
        evaluate(make_events(pairs), {"imf": IncrementalMF(learning_rate=1e200, seed=0)}, warmup=0.0)


def test_timing_is_reported_per_model():
    result = evaluate(make_events(HAND_STREAM), {"popular": Popular(), "imf": IncrementalMF()}, warmup=0.25)

    for model in result.models:
        assert model.test_seconds > 0, model.model
        assert model.events_per_second == pytest.approx(6 / model.test_seconds)
        assert model.warmup_seconds > 0, model.model


def test_result_converts_to_json():
    result = evaluate(make_events(HAND_STREAM), {"imf": IncrementalMF(n_factors=4)}, warmup=0.25)
    document = json.loads(result.to_json())

    assert document["n_test_events"] == 6
    assert document["models"][0]["model"] == "imf"
    assert document["models"][0]["params"]["n_factors"] == 4
    assert document["models"][0]["overall"]["recall"] == result.models[0].overall.recall
    assert document["models"][0]["window"]["n_events"] == 6


def test_params_that_are_not_scalars_are_summarised():
    class WithTable(Popular):
        def params(self):
            return {**super().params(), "table": {1: 2.0, 2: 3.0}, "weights": np.zeros(3), "rng": object()}

    result = evaluate(make_events(HAND_STREAM), {"popular": WithTable()}, warmup=0.25)
    params = result.models[0].params

    assert params["table"] == "<dict of 2 entries>"
    assert params["weights"] == "<ndarray of 3 entries>"
    assert params["rng"] == "<object>"
    assert params["half_life"] is None
    json.dumps(result.to_dict())


@pytest.mark.parametrize("warmup", [-0.1, 1.0, 1.5, float("nan")])
def test_warmup_out_of_range_rejected(warmup):
    with pytest.raises(ValueError, match="warmup must be a fraction"):
        evaluate(make_events(HAND_STREAM), {"popular": Popular()}, warmup=warmup)


def test_no_models_rejected():
    with pytest.raises(ValueError, match="no models"):
        evaluate(make_events(HAND_STREAM), {})


def test_top_n_and_window_below_one_rejected():
    with pytest.raises(ValueError, match="top_n"):
        evaluate(make_events(HAND_STREAM), {"popular": Popular()}, top_n=0)
    with pytest.raises(ValueError, match="window"):
        evaluate(make_events(HAND_STREAM), {"popular": Popular()}, window=0)


def test_trained_model_rejected():
    model = Popular()
    model.learn(Event("u1", "a"))

    with pytest.raises(ValueError, match="already learned 1 users and 1 items"):
        evaluate(make_events(HAND_STREAM), {"popular": model})


def test_same_instance_twice_rejected():
    model = Popular()

    with pytest.raises(ValueError, match="same object"):
        evaluate(make_events(HAND_STREAM), {"first": model, "second": model})


def test_rank_among_candidates_breaks_ties_by_index():
    scores = np.array([0.5, 0.9, 0.5, 0.5, 0.1])
    # Item 1 is masked out although it scores highest.
    mask = np.array([True, False, True, True, True])

    assert rank_among_candidates(scores, Candidates(mask, 3, 4)) == 2
    assert rank_among_candidates(scores, Candidates(mask, 0, 4)) == 0
    assert rank_among_candidates(scores, Candidates(mask, 4, 4)) == 3
    assert rank_among_candidates(scores, Candidates(mask, None, 5)) == 4


def test_rank_among_candidates_agrees_with_rank_of():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        # Few distinct values, so ties are common.
        scores = rng.integers(0, 4, n).astype(float)
        mask = rng.random(n) < 0.7
        target = int(rng.integers(0, n))
        mask[target] = True
        candidates = Candidates(mask, target, int(mask.sum()))
        position = int(mask[:target].sum())

        assert rank_among_candidates(scores, candidates) == rank_of(scores[mask], position)


def test_event_metrics_formulas():
    assert event_metrics(0, 10, 5).tolist() == pytest.approx([1.0, 0.2, 1.0, 1.0, 0.0])
    assert event_metrics(3, 10, 5).tolist() == pytest.approx([1.0, 0.2, 0.25, 1 / math.log2(5), 3 / 9])
    assert event_metrics(5, 11, 5).tolist() == pytest.approx([0.0, 0.0, 1 / 6, 0.0, 0.5])
    assert event_metrics(0, 1, 5).tolist() == pytest.approx([1.0, 0.2, 1.0, 1.0, 0.0])


def test_event_metrics_rank_outside_candidates_rejected():
    with pytest.raises(ValueError, match="outside"):
        event_metrics(3, 3, 10)
    with pytest.raises(ValueError, match="outside"):
        event_metrics(-1, 3, 10)


def test_ranking_metrics_window_wraps():
    metrics = RankingMetrics(top_n=1, window=2)
    for rank in [0, 0, 1, 1, 0]:
        metrics.add(rank, 2)

    assert metrics.overall().recall == pytest.approx(3 / 5)
    assert metrics.windowed().n_events == 2
    assert metrics.windowed().recall == pytest.approx(1 / 2)
    assert metrics.windowed().mean_percentile_rank == pytest.approx(1 / 2)


def test_ranking_metrics_empty_is_zero():
    values = RankingMetrics(top_n=10, window=5).overall()

    assert values.n_events == 0
    assert values.recall == 0.0
    assert values.mean_percentile_rank == 0.0
