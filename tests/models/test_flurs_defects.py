"""One test per defect of FluRS 0.0.5 that these models must not repeat; each fails on the defective behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models import MODELS, make_model
from models.base import Event
from models.bprmf import BPRMF
from models.growable import GrowableArray
from models.ifm import IncrementalFM
from models.knn import UserKNN
from models.popular import Popular
from models.sketch import SketchRecommender

try:
    from .conftest import learn_all, mixed_stream, register_item
except ImportError:
    from conftest import learn_all, mixed_stream, register_item


def _stream(n_users=6, n_items=8, n=80, seed=0):
    rng = np.random.default_rng(seed)
    return [Event(f"u{int(rng.integers(n_users))}", f"i{int(rng.integers(n_items))}", ts=float(t)) for t in range(n)]


# -- iFM: the adaptive regularization of V never takes effect in FluRS -----------


def test_fm_adaptive_regularization_of_the_factors_takes_effect():
    params = dict(n_factors=4, learning_rate=0.05, l2_latent=0.5, l2_learning_rate=2.0, init_std=0.5, seed=1)
    events = _stream()
    model = learn_all(IncrementalFM(**params), events[:60])
    # lambda_f moved away from its initial value, differently per factor.
    latent = model.regularization["latent"]
    assert np.abs(latent - params["l2_latent"]).max() > 1e-3
    assert np.unique(latent).size == params["n_factors"]

    # It changes the result: the same model with lambda_f reset to its
    # initial value learns the next events differently.
    state = model.state_dict()
    reset = IncrementalFM(**params)
    state_reset = dict(state, model_state=dict(state["model_state"], lambda_latent=np.full(4, params["l2_latent"])))
    reset.load_state_dict(state_reset)
    for event in events[60:63]:
        model.learn(event)
        reset.learn(event)
    factors = model.state_dict()["model_state"]["factors"]
    factors_reset = reset.state_dict()["model_state"]["factors"]
    assert np.abs(factors - factors_reset).max() > 1e-5
    assert np.abs(np.asarray(model.scores("u1")) - np.asarray(reset.scores("u1"))).max() > 1e-5

    # Without adaptation the lambdas stay put.
    fixed = learn_all(IncrementalFM(**(params | {"l2_learning_rate": 0.0})), events[:60])
    np.testing.assert_array_equal(fixed.regularization["latent"], np.full(4, params["l2_latent"]))


# -- BPR: FluRS adds the L2 term with the wrong sign -------------------------------


def test_bpr_larger_l2_gives_smaller_weights():
    events = _stream(n_users=10, n_items=20, n=400)
    norms = []
    for l2 in (0.0, 0.05, 0.5):
        model = learn_all(BPRMF(l2=l2, learning_rate=0.05, seed=3), events)
        state = model.state_dict()["model_state"]
        norms.append(
            (np.linalg.norm(state["user_factors"]), np.linalg.norm(state["item_factors"]), np.linalg.norm(state["item_biases"]))
        )
    for weaker, stronger in zip(norms, norms[1:]):
        assert all(s < w for w, s in zip(weaker, stronger)), norms


def test_bpr_weight_decay_alone_shrinks():
    # With equal positive and negative items, the pairwise gradient is zero
    # and only the decay acts: every touched vector shrinks by (1 - rate * l2).
    model = BPRMF(n_factors=2, learning_rate=0.1, l2=0.5, n_negatives=1, item_bias=False)
    model.learn(Event("u", "a"))
    model.learn(Event("v", "b"))
    state = model.state_dict()
    state["model_state"]["user_factors"] = np.array([[1.0, 2.0], [0.0, 0.0]])
    state["model_state"]["item_factors"] = np.array([[0.5, -0.5], [0.5, -0.5]])
    model.load_state_dict(state)
    model.learn(Event("u", "a"))
    after = model.state_dict()["model_state"]
    np.testing.assert_allclose(after["user_factors"][0], 0.95 * np.array([1.0, 2.0]))


# -- BPR: FluRS fails when a user has seen every item --------------------------------


def test_bpr_user_who_has_seen_every_item():
    model = BPRMF(n_negatives=2)
    model.learn(Event("solo", "only"))  # one item: no negative exists
    for item in ("x", "y", "z"):
        model.learn(Event("solo", item))
    before = model.state_dict()["model_state"]
    model.learn(Event("solo", "y"))  # seen every item: the pairwise step is skipped
    after = model.state_dict()["model_state"]
    for name in ("user_factors", "item_factors", "item_biases"):
        np.testing.assert_array_equal(before[name], after[name])
    assert model.recommend("solo", 5)[0] == []
    assert np.all(np.isfinite(model.scores("solo")))


def test_bpr_fewer_unseen_items_than_negatives():
    model = BPRMF(n_negatives=5, seed=1)
    for user, item in [("other", "a"), ("other", "b"), ("other", "c"), ("solo", "a"), ("solo", "b")]:
        model.learn(Event(user, item))
    before = model.state_dict()["model_state"]["item_factors"].copy()
    model.learn(Event("solo", "a"))  # only c is outside solo's history: one step, with c
    after = model.state_dict()["model_state"]["item_factors"]
    changed = np.any(before != after, axis=1)
    assert [model.items.id_of(i) for i in np.flatnonzero(changed).tolist()] == ["a", "c"]


# -- ids: FluRS uses raw ids as row indices ----------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_sparse_string_ids_keep_vectors(name):
    """Relabelling ids (huge integers, strings, any order) changes nothing but the labels."""
    events = mixed_stream(150, seed=4)
    relabel_user = {u: f"user:{n}" if n % 2 else 10**15 - 7 * n for n, u in enumerate(dict.fromkeys(e.user for e in events))}
    relabel_item = {i: f"item:{n}" if n % 2 else 10**12 + n for n, i in enumerate(dict.fromkeys(e.item for e in events))}
    relabelled = [Event(relabel_user[e.user], relabel_item[e.item], e.ts, e.value, e.context) for e in events]
    a = learn_all(make_model(name, seed=8), events)
    b = learn_all(make_model(name, seed=8), relabelled)
    for user, other in relabel_user.items():
        scores_a = dict(zip(a.items.ids_of(np.arange(a.n_items)), np.asarray(a.scores(user)).tolist()))
        scores_b = dict(zip(b.items.ids_of(np.arange(b.n_items)), np.asarray(b.scores(other)).tolist()))
        assert {relabel_item[i]: s for i, s in scores_a.items()} == scores_b


def test_update_touches_own_ids_only():
    from models.imf import IncrementalMF

    model = IncrementalMF(seed=2)
    for user, item in [(10**9, "x"), ("7", 3), (7, "3"), (-5, 10**12)]:
        model.learn(Event(user, item))
    before = model.state_dict()["model_state"]
    model.learn(Event(7, "3"))
    after = model.state_dict()["model_state"]
    changed_users = np.flatnonzero(np.any(before["user_factors"] != after["user_factors"], axis=1)).tolist()
    changed_items = np.flatnonzero(np.any(before["item_factors"] != after["item_factors"], axis=1)).tolist()
    assert [model.users.id_of(u) for u in changed_users] == [7]
    assert [model.items.id_of(i) for i in changed_items] == ["3"]


# -- sketch: FluRS cannot score before its first update ------------------------------


def test_sketch_scores_before_its_first_update():
    model = SketchRecommender()
    assert np.asarray(model.scores("anyone")).shape == (0,)
    for n in range(5):
        register_item(model, f"i{n}")
    scores = np.asarray(model.scores("anyone"))
    np.testing.assert_array_equal(scores, np.zeros(5))
    assert len(model.recommend("anyone", 3)[0]) == 3
    model.learn(Event("u", "i2"))
    assert np.all(np.isfinite(model.scores("u")))
    assert np.all(np.isfinite(model.scores("anyone")))


# -- user-kNN: FluRS's scores are NaN --------------------------------------------


def test_userknn_scores_are_never_nan():
    model = UserKNN(k=3, window=4)
    checks = 0
    for event in _stream(n_users=12, n_items=30, n=300, seed=5) + [Event("loner", "fresh")]:
        for user in (event.user, "unknown"):
            scores = np.asarray(model.scores(user))
            assert not np.any(np.isnan(scores))
            assert np.all(np.isfinite(scores))
            checks += 1
        model.learn(event)
    # A user sharing nothing with anyone, and one never seen, score 0 but for
    # the popularity tie-break (under 1e-9).
    for user in ("loner", "unknown"):
        scores = np.asarray(model.scores(user))
        assert np.all((scores >= 0) & (scores < 1e-9))
    assert checks > 600


# -- growth: FluRS copies the whole matrix for every new id --------------------------


@pytest.mark.parametrize("name", ["imf", "bprmf", "ifm", "sketch", "popular"])
def test_item_registration_amortised(name, monkeypatch):
    model = make_model(name)
    model.learn(Event("u", "first"))
    copies = []
    original = GrowableArray._grow

    def counting_grow(array, min_capacity):
        copies.append(array.capacity)
        original(array, min_capacity)

    monkeypatch.setattr(GrowableArray, "_grow", counting_grow)
    monkeypatch.setattr(np, "concatenate", _forbidden("np.concatenate"))
    monkeypatch.setattr(np, "vstack", _forbidden("np.vstack"))
    monkeypatch.setattr(np, "hstack", _forbidden("np.hstack"))
    n = 5_000
    for k in range(n):
        register_item(model, f"item{k}")
    monkeypatch.undo()
    arrays = {id(v) for v in vars(model).values() if isinstance(v, GrowableArray)}
    # Doubling from 64 rows: at most ceil(log2(5001 / 64)) = 7 copies per array.
    assert len(copies) <= len(arrays) * math.ceil(math.log2((n + 1) / 64))
    assert all(c >= 64 for c in copies)
    assert np.asarray(model.scores("u")).shape == (n + 1,)


def _forbidden(name):
    def fail(*args, **kwargs):
        raise AssertionError(f"{name} while registering an item copies a whole matrix")

    return fail


# -- exclusions: one user's items must not leak into another's -----------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_exclusions_stay_per_user(name):
    model = make_model(name)
    model.learn(Event("ann", "a"))
    model.learn(Event("ann", "b"))
    model.learn(Event("bob", "c"))
    model.learn(Event("cat", "d"))
    ids_bob, _ = model.recommend("bob", 10)
    assert sorted(ids_bob) == ["a", "b", "d"]
    ids_ann, _ = model.recommend("ann", 10)
    assert sorted(ids_ann) == ["c", "d"]
    assert model.rank("bob", "a") is not None
    assert model.rank("bob", "a") < 3
    assert sorted(model.recommend("new", 10)[0]) == ["a", "b", "c", "d"]
    # It stays true with the popularity counts of several users mixed in.
    pop = Popular()
    for user, item in [("ann", "a"), ("bob", "a"), ("bob", "b")]:
        pop.learn(Event(user, item))
    assert pop.recommend("ann", 5)[0] == ["b"]
