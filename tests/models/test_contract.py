"""The contract every registered model keeps, checked for each name in models.MODELS."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models import MODELS, NonFiniteParameterError, make_model
from models.base import Event

try:
    from .conftest import (
        CASES,
        EXTRA_CASES,
        assert_states_equal,
        build,
        float_arrays,
        from_msgpack,
        learn_all,
        mixed_stream,
        poison,
        register_item,
        register_user,
        to_msgpack,
        walk_state,
    )
except ImportError:
    from conftest import (
        CASES,
        EXTRA_CASES,
        assert_states_equal,
        build,
        float_arrays,
        from_msgpack,
        learn_all,
        mixed_stream,
        poison,
        register_item,
        register_user,
        to_msgpack,
        walk_state,
    )


def test_every_registered_model_is_covered():
    assert set(MODELS) <= {name for name, _ in CASES.values()}
    for name, _ in EXTRA_CASES.values():
        assert name in MODELS


def test_registered_names_match_classes():
    for name, cls in MODELS.items():
        assert cls.name == name
        model = make_model(name)
        assert type(model) is cls
        assert type(model)(**model.params()).params() == model.params()


def test_learns_mixed_ids_sparse_and_out_of_order(case):
    events = mixed_stream()
    model = learn_all(build(case), events)
    users = list(dict.fromkeys(e.user for e in events))
    items = list(dict.fromkeys(e.item for e in events))
    assert model.n_users == len(users)
    assert model.n_items == len(items)
    # Indices follow first sight, whatever the id's type or size.
    assert [model.users.id_of(u) for u in range(model.n_users)] == users
    assert [model.items.id_of(i) for i in range(model.n_items)] == items
    # The integer 7 and the string "7" are different users.
    assert model.users.get(7) != model.users.get("7")
    for user in users:
        scores = np.asarray(model.scores(user))
        assert scores.shape == (model.n_items,)
        assert np.all(np.isfinite(scores))


def test_unseen_user_and_item(case):
    model = learn_all(build(case), mixed_stream(60))
    for context in (None, {"hour": 0.5}):
        scores = np.asarray(model.scores("never-seen", context))
        assert scores.shape == (model.n_items,)
        assert np.all(np.isfinite(scores))
    ids, scores = model.recommend("never-seen", 5)
    assert len(ids) == 5
    assert np.all(np.isfinite(scores))
    assert model.rank("alice", "never-seen-item") is None
    assert model.seen_items("never-seen").size == 0

    # A new user and a new item in one event are registered and scored.
    model.learn(Event(user="newcomer", item="new-item", ts=2e6))
    assert "newcomer" in model.users
    assert "new-item" in model.items
    scores = np.asarray(model.scores("newcomer"))
    assert scores.shape == (model.n_items,)
    assert np.all(np.isfinite(scores))
    assert np.all(np.isfinite(np.asarray(model.scores("alice"))))


def test_scores_finite_on_the_first_events(case):
    model = build(case)
    assert np.asarray(model.scores("anyone")).shape == (0,)
    assert model.recommend("anyone", 3)[0] == []
    for event in mixed_stream(10):
        model.learn(event)
        for user in (event.user, "nobody"):
            assert np.all(np.isfinite(np.asarray(model.scores(user, event.context))))


@pytest.mark.parametrize("exclude_seen", [True, False])
def test_recommend_at_most_n_sorted(case, exclude_seen):
    events = mixed_stream()
    model = learn_all(build(case), events)
    for user in dict.fromkeys(e.user for e in events):
        seen = {model.items.id_of(i) for i in model.seen_items(user).tolist()}
        for n in (0, 1, 3, 10, 100):
            ids, scores = model.recommend(user, n, exclude_seen=exclude_seen)
            assert len(ids) == len(scores) <= n
            assert len(set(ids)) == len(ids)
            assert all(item in model.items for item in ids)
            assert np.all(np.diff(scores) <= 0), "not sorted by score"
            assert np.all(np.isfinite(scores))
            if exclude_seen:
                assert not seen & set(ids)
                assert len(ids) == min(n, model.n_items - len(seen))
            else:
                assert len(ids) == min(n, model.n_items)
            # The scores returned are the model's scores of those items.
            all_scores = np.asarray(model.scores(user))
            np.testing.assert_array_equal(scores, all_scores[[model.items.get(i) for i in ids]])


@pytest.mark.parametrize("exclude_seen", [True, False])
def test_rank_consistent_with_recommend(case, exclude_seen):
    events = mixed_stream()
    model = learn_all(build(case), events)
    for user in list(dict.fromkeys(e.user for e in events)) + ["stranger"]:
        ids, _ = model.recommend(user, model.n_items, exclude_seen=exclude_seen)
        for position, item in enumerate(ids):
            assert model.rank(user, item, exclude_seen=exclude_seen) == position


def test_rank_of_seen_item(case):
    events = mixed_stream()
    model = learn_all(build(case), events)
    user = events[-1].user
    seen = model.seen_items(user)
    scores = np.asarray(model.scores(user))
    for i in seen.tolist():
        others = np.setdiff1d(np.arange(model.n_items), seen)
        expected = int(np.count_nonzero(scores[others] > scores[i]))
        expected += int(np.count_nonzero((scores[others] == scores[i]) & (others < i)))
        assert model.rank(user, model.items.id_of(i)) == expected


def test_deterministic_for_a_seed(case):
    events = mixed_stream()
    a = learn_all(build(case, seed=5), events)
    b = learn_all(build(case, seed=5), events)
    assert_states_equal(a.state_dict(), b.state_dict())
    for user in ["alice", 7, "7", "stranger"]:
        np.testing.assert_array_equal(a.scores(user), b.scores(user))
        assert a.recommend(user, 5)[0] == b.recommend(user, 5)[0]


def test_state_has_plain_values_only(case):
    model = learn_all(build(case), mixed_stream())
    state = model.state_dict()
    for path, leaf in walk_state(state):
        assert leaf is None or isinstance(leaf, (bool, int, float, str, np.ndarray)), (
            f"{path} is a {type(leaf).__name__}"
        )
        if isinstance(leaf, np.ndarray):
            assert not leaf.dtype.hasobject, f"{path} is an object array"

    def check_keys(value, path="state"):
        if isinstance(value, dict):
            assert value, f"{path} is an empty mapping, which the worker's codec would drop"
            for key, v in value.items():
                assert isinstance(key, str), f"{path}: key {key!r}"
                assert "." not in key, f"{path}: key {key!r}"
                assert "/" not in key, f"{path}: key {key!r}"
                check_keys(v, f"{path}.{key}")

    check_keys(state)
    # msgpack encodes it without pickle, and decodes it to the same state.
    assert_states_equal(from_msgpack(to_msgpack(state)), state)


def test_state_round_trip_through_msgpack(case):
    events = mixed_stream(160)
    first, rest = events[:90], events[90:]
    original = learn_all(build(case, seed=3), first)
    state = from_msgpack(to_msgpack(original.state_dict()))
    restored = type(original)(**state["params"])
    restored.load_state_dict(state)

    users = list(dict.fromkeys(e.user for e in events)) + ["stranger"]
    for user in users:
        for context in (None, {"hour": 0.25}):
            np.testing.assert_array_equal(original.scores(user, context), restored.scores(user, context))
    assert_states_equal(restored.state_dict(), original.state_dict())

    # The same future: further events (including new ids and RNG draws) give
    # identical models.
    for event in rest:
        original.learn(event)
        restored.learn(event)
    assert_states_equal(restored.state_dict(), original.state_dict())
    for user in users:
        np.testing.assert_array_equal(original.scores(user), restored.scores(user))
        assert original.recommend(user, 5)[0] == restored.recommend(user, 5)[0]


def test_load_state_dict_rejects_another_model(case):
    model = learn_all(build(case), mixed_stream(20))
    other_name = next(name for name in MODELS if name != model.name)
    with pytest.raises(Exception, match="state is for model"):
        make_model(other_name).load_state_dict(model.state_dict())


def test_growth_is_amortised(case, growth_counter):
    model = learn_all(build(case), mixed_stream(40))
    n_new = 20_000
    for n in range(n_new):
        register_item(model, f"bulk-item-{n}")
    for n in range(2_000):
        register_user(model, f"bulk-user-{n}")
    # Each array doubles when full: from 64 rows to 22,000 takes
    # ceil(log2(22000 / 64)) = 9 reallocations, not one per new id.
    bound = math.ceil(math.log2((n_new + 2_000 + 100) / 64)) + 1
    assert all(count <= bound for count in growth_counter.calls.values()), growth_counter.calls
    for array in float_arrays(model).values():
        assert array.capacity < 4 * max(len(array), 64)
    scores = np.asarray(model.scores("alice"))
    assert scores.shape == (model.n_items,)
    assert np.all(np.isfinite(scores))
    model.learn(Event(user="alice", item="bulk-item-7", ts=3e6))
    assert np.all(np.isfinite(np.asarray(model.scores("alice"))))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_huge_value_leaves_state_valid(case):
    model = learn_all(build(case), mixed_stream())
    before = model.state_dict()
    event = Event(user="alice", item="m1", ts=2e6, value=1e308)
    try:
        model.learn(event)
    except NonFiniteParameterError:
        assert_states_equal(model.state_dict(), before)
    else:
        # The model does not use the value or bounds its effect: every
        # parameter stays finite.
        for name, array in float_arrays(model).items():
            assert np.all(np.isfinite(array.rows)), name
    assert np.all(np.isfinite(np.asarray(model.scores("alice"))))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_poisoned_parameter_is_detected_with_state_unchanged(case):
    model = learn_all(build(case), mixed_stream())
    if not float_arrays(model):
        pytest.skip(f"{model.name} has no float parameters an update could make non-finite")
    for value in (np.nan, np.inf):
        poisoned = poison(model, value)
        before = model.state_dict()
        with pytest.raises(NonFiniteParameterError, match="non-finite"):
            model.learn(Event(user="alice", item="m1", ts=2e6))
        assert_states_equal(model.state_dict(), before)
        assert poisoned


def test_params_rebuild_an_empty_model(case):
    model = learn_all(build(case), mixed_stream(30))
    empty = type(model)(**model.params())
    assert empty.n_users == empty.n_items == 0
    assert empty.params() == model.params()


def test_evicting_users(case):
    events = mixed_stream(150)
    model = learn_all(build(case), events)
    last = {}
    for event in events:
        last[event.user] = event.ts
    cutoff = sorted(last.values())[len(last) // 2]
    kept = [user for user, ts in last.items() if ts >= cutoff]
    evicted = [user for user, ts in last.items() if ts < cutoff]
    seen_before = {user: {model.items.id_of(i) for i in model.seen_items(user).tolist()} for user in kept}
    try:
        n = model.evict_users(cutoff)
    except NotImplementedError:
        pytest.skip(f"{model.name} does not support evicting users")
    assert n == len(evicted)
    assert sorted(map(str, (model.users.id_of(u) for u in range(model.n_users)))) == sorted(map(str, kept))
    for user in evicted:
        assert user not in model.users
    for user in kept:
        assert {model.items.id_of(i) for i in model.seen_items(user).tolist()} == seen_before[user]
        scores = np.asarray(model.scores(user))
        assert scores.shape == (model.n_items,)
        assert np.all(np.isfinite(scores))
    # The compacted model keeps learning and round-trips its state.
    for event in mixed_stream(40, seed=9):
        model.learn(event)
    restored = type(model)(**model.params())
    restored.load_state_dict(from_msgpack(to_msgpack(model.state_dict())))
    for user in kept + evicted:
        np.testing.assert_array_equal(restored.scores(user), model.scores(user))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_returns_new_scores_flag_honest(name):
    model = make_model(name)
    for k in range(20):
        model.learn(Event(k % 3, k % 5, float(k)))
    first = model.scores(1)
    if not model.returns_new_scores:
        pytest.skip(f"{name} may return a view of its state")
    first[:] = -1.0
    assert not np.array_equal(model.scores(1), first)
