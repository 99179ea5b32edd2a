"""The shard's per-event protocol and user eviction, without Kafka."""

from __future__ import annotations

import numpy as np

from models import Event
from worker.shard import Shard, ShardSettings


def test_test_precedes_learn():
    shard = Shard(0, ShardSettings("popular", {}, top_n=1))
    assert shard.process(Event("a", "x", 1)).hit is False  # x unknown before learning
    outcome = shard.process(Event("b", "x", 2))
    assert outcome.hit is True  # x is the only and most popular item for b
    assert outcome.items == []  # after learning, b has seen x: nothing left to recommend


def test_recall_window_rolls():
    shard = Shard(0, ShardSettings("popular", {}, top_n=1, recall_window=2))
    shard.process(Event("a", "x", 1))  # miss
    shard.process(Event("b", "x", 2))  # hit
    assert shard.recall == 0.5
    shard.process(Event("c", "x", 3))  # hit; the first miss leaves the window
    assert shard.recall == 1.0


def test_eviction_forgets_idle_users():
    settings = ShardSettings("imf", {}, evict_after=100.0, evict_every=10)
    shard = Shard(0, settings)
    for k in range(10):
        shard.process(Event(f"old-{k}", k, ts=float(k)))
    for k in range(10):
        shard.process(Event(f"new-{k}", k, ts=1000.0 + k))
    ids = shard.model.users.state_dict()["ids"]
    assert ids == [f"new-{k}" for k in range(10)]
    assert shard.model.n_items == 10


def test_eviction_keeps_state_round_trip():
    settings = ShardSettings("imf", {}, evict_after=50.0, evict_every=5)
    shard = Shard(0, settings)
    for k in range(40):
        shard.process(Event(k % 7, k % 5, ts=float(k * 10)))
    copy = Shard(0, settings)
    copy.model.load_state_dict(shard.model.state_dict())
    copy.load_window_state(shard.window_state())
    for k in range(40, 60):
        a = shard.process(Event(k % 7, k % 5, ts=float(k * 10)))
        b = copy.process(Event(k % 7, k % 5, ts=float(k * 10)))
        assert a.items == b.items
        np.testing.assert_array_equal(a.scores, b.scores)


def test_hit_and_list_agree_with_recommend():
    rng = np.random.default_rng(4)
    for model in ("popular", "imf"):
        shard = Shard(0, ShardSettings(model, {}, top_n=5))
        user = 0
        for k in range(800):
            # Sessions of the same user, few items and repeated scores
            # exercise the reuse of the previous scores and ties at the cut.
            if rng.random() < 0.3:
                user = int(rng.integers(0, 20))
            event = Event(user, int(rng.integers(0, 40)), float(k))
            before, _ = shard.model.recommend(event.user, 5)
            outcome = shard.process(event)
            after, after_scores = shard.model.recommend(event.user, 5)
            assert outcome.hit == (event.item in before), (model, k)
            assert outcome.items == after, (model, k)
            np.testing.assert_array_equal(outcome.scores, after_scores)
