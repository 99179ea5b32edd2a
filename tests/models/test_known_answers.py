"""Each model on a tiny hand-made stream, against values worked out by hand or by a direct computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.base import Event
from models.bprmf import BPRMF
from models.ifm import IncrementalFM
from models.imf import IncrementalMF
from models.knn import ItemKNN, UserKNN
from models.popular import Popular
from models.random import RandomRecommender
from models.sketch import SketchRecommender


def set_state(model, **values):
    """Overwrite entries of the model's learned state (by name) through load_state_dict."""
    state = model.state_dict()
    for name, value in values.items():
        assert name in state["model_state"], name
        state["model_state"][name] = value
    model.load_state_dict(state)


def by_id(model, user, context=None):
    scores = np.asarray(model.scores(user, context))
    return {model.items.id_of(i): float(s) for i, s in enumerate(scores)}


# -- popular --------------------------------------------------------------------


def test_popular_counts():
    model = Popular()
    for user, item in [("u1", "a"), ("u2", "a"), ("u1", "b"), ("u3", "a"), ("u3", "c")]:
        model.learn(Event(user, item))
    assert by_id(model, "anyone") == {"a": 3.0, "b": 1.0, "c": 1.0}
    assert model.recommend("u1", 3)[0] == ["c"]
    assert model.recommend("new", 3)[0] == ["a", "b", "c"]


def test_popular_half_life_decay():
    h = 3600.0
    model = Popular(half_life=h)
    model.learn(Event("u", "a", ts=0.0))
    model.learn(Event("u", "b", ts=h))
    model.learn(Event("v", "a", ts=2 * h))
    # At t = 2h: a counts 2^-2 + 1 = 1.25, b counts 2^-1 = 0.5. The stored
    # sums are those decayed counts times the shared factor 2^(2h / h) = 4.
    scores = by_id(model, "x")
    assert scores["a"] * 2.0**-2 == pytest.approx(1.25)
    assert scores["b"] * 2.0**-2 == pytest.approx(0.5)


def test_popular_half_life_survives_a_huge_time_jump():
    model = Popular(half_life=1.0)
    for _ in range(3):
        model.learn(Event("u", "old", ts=0.0))
    # 2^(1e12) overflows any float: the old counts decay to nothing instead.
    model.learn(Event("u", "new", ts=1e12))
    scores = by_id(model, "x")
    assert scores == {"old": 0.0, "new": 1.0}
    # One half-life later, a new event weighs 2 against the reference 1e12.
    model.learn(Event("u", "old", ts=1e12 + 1.0))
    assert by_id(model, "x") == {"old": 2.0, "new": 1.0}


# -- random ----------------------------------------------------------------------


def test_random_scores_follow_the_seeded_generator():
    model = RandomRecommender(seed=11)
    model.learn(Event("u", "a"))
    model.learn(Event("v", "b"))
    keys = np.random.default_rng(11).integers(2**63, size=3)
    # After two events, the key is the third draw; user index 1 ("v") uses
    # stream 2, an unknown user stream 0.
    expected_v = np.random.default_rng([int(keys[2]), 2]).random(2)
    expected_unknown = np.random.default_rng([int(keys[2]), 0]).random(2)
    np.testing.assert_array_equal(model.scores("v"), expected_v)
    np.testing.assert_array_equal(model.scores("nobody"), expected_unknown)
    # Stable between events, so recommend and rank agree.
    np.testing.assert_array_equal(model.scores("v"), expected_v)


# -- imf -------------------------------------------------------------------------


def test_imf_one_update_from_known_vectors():
    model = IncrementalMF(n_factors=2, learning_rate=0.1, l2=0.1, item_bias=False)
    model.learn(Event("u", "i"))
    set_state(model, user_factors=np.array([[1.0, 0.0]]), item_factors=np.array([[0.5, 0.5]]))
    model.learn(Event("u", "i"))
    # e = 1 - p.q = 0.5
    # p = [1, 0] + 0.1 * (0.5 * [0.5, 0.5] - 0.1 * [1, 0]) = [1.015, 0.025]
    # q = [0.5, 0.5] + 0.1 * (0.5 * [1, 0] - 0.1 * [0.5, 0.5]) = [0.545, 0.495]
    state = model.state_dict()["model_state"]
    np.testing.assert_allclose(state["user_factors"], [[1.015, 0.025]])
    np.testing.assert_allclose(state["item_factors"], [[0.545, 0.495]])
    assert by_id(model, "u")["i"] == pytest.approx(1.015 * 0.545 + 0.025 * 0.495)


def test_imf_item_bias_update():
    model = IncrementalMF(n_factors=2, learning_rate=0.1, l2=0.1, bias_learning_rate=0.2)
    model.learn(Event("u", "i"))
    set_state(model, user_factors=np.array([[1.0, 0.0]]), item_factors=np.array([[0.5, 0.5]]),
              item_biases=np.array([0.25]))
    model.learn(Event("u", "i"))
    # e = 1 - (p.q + b) = 1 - (0.5 + 0.25) = 0.25
    # p = [1, 0] + 0.1 * (0.25 * [0.5, 0.5] - 0.1 * [1, 0]) = [1.0025, 0.0125]
    # q = [0.5, 0.5] + 0.1 * (0.25 * [1, 0] - 0.1 * [0.5, 0.5]) = [0.52, 0.495]
    # b = 0.25 + 0.2 * 0.25 = 0.3
    state = model.state_dict()["model_state"]
    np.testing.assert_allclose(state["user_factors"], [[1.0025, 0.0125]])
    np.testing.assert_allclose(state["item_factors"], [[0.52, 0.495]])
    np.testing.assert_allclose(state["item_biases"], [0.3])
    assert by_id(model, "u")["i"] == pytest.approx(1.0025 * 0.52 + 0.0125 * 0.495 + 0.3)
    # A user never seen before gets the biases alone.
    assert by_id(model, "stranger")["i"] == pytest.approx(0.3)


# -- bprmf -------------------------------------------------------------------------


def _bpr_with_two_items(**params):
    model = BPRMF(n_factors=2, learning_rate=0.1, l2=0.1, n_negatives=1, **params)
    model.learn(Event("u", "a"))  # registers u and a; no negative item exists yet
    model.learn(Event("v", "b"))  # registers v and b
    return model


def test_bprmf_one_pairwise_step():
    model = _bpr_with_two_items()
    set_state(
        model,
        user_factors=np.array([[1.0, 0.0], [0.0, 1.0]]),
        item_factors=np.array([[0.5, 0.0], [0.5, 0.0]]),
        item_biases=np.array([0.0, 0.0]),
    )
    # u has seen a, so the only negative item is b.
    model.learn(Event("u", "a"))
    # x_uab = p.(q_a - q_b) + b_a - b_b = 0, g = sigmoid(0) = 0.5:
    # p   = [1, 0] + 0.1 * (0.5 * [0, 0] - 0.1 * [1, 0])        = [0.99, 0]
    # q_a = [0.5, 0] + 0.1 * (0.5 * [1, 0] - 0.1 * [0.5, 0])    = [0.545, 0]
    # q_b = [0.5, 0] + 0.1 * (-0.5 * [1, 0] - 0.1 * [0.5, 0])   = [0.445, 0]
    # b_a = 0 + 0.1 * 0.5 = 0.05, b_b = -0.05
    state = model.state_dict()["model_state"]
    np.testing.assert_allclose(state["user_factors"], [[0.99, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(state["item_factors"], [[0.545, 0.0], [0.445, 0.0]])
    np.testing.assert_allclose(state["item_biases"], [0.05, -0.05])
    assert by_id(model, "u") == pytest.approx({"a": 0.99 * 0.545 + 0.05, "b": 0.99 * 0.445 - 0.05})


def test_bprmf_step_with_a_nonzero_margin():
    model = _bpr_with_two_items(item_bias=False)
    p, q_a, q_b = np.array([0.3, -0.2]), np.array([0.4, 0.1]), np.array([-0.1, 0.6])
    set_state(model, user_factors=np.vstack([p, [0.0, 1.0]]), item_factors=np.vstack([q_a, q_b]))
    model.learn(Event("u", "a"))
    x = 0.3 * (0.4 + 0.1) + -0.2 * (0.1 - 0.6)  # = 0.25
    g = 1.0 / (1.0 + math.exp(x))
    state = model.state_dict()["model_state"]
    np.testing.assert_allclose(state["user_factors"][0], p + 0.1 * (g * (q_a - q_b) - 0.1 * p))
    np.testing.assert_allclose(state["item_factors"][0], q_a + 0.1 * (g * p - 0.1 * q_a))
    np.testing.assert_allclose(state["item_factors"][1], q_b + 0.1 * (-g * p - 0.1 * q_b))
    np.testing.assert_array_equal(state["item_biases"], [0.0, 0.0])


def test_bprmf_negatives_are_outside_the_history():
    model = BPRMF(n_negatives=3, seed=4)
    for item in range(6):
        model.learn(Event("other", item))
    for item in (0, 1, 2):
        model.learn(Event("u", item))
    before = model.state_dict()["model_state"]["item_factors"].copy()
    model.learn(Event("u", 0))
    after = model.state_dict()["model_state"]["item_factors"]
    changed = set(np.flatnonzero(np.any(before != after, axis=1)).tolist())
    # The positive item 0 and exactly the three items u has not seen.
    assert changed == {0, 3, 4, 5}


# -- ifm ---------------------------------------------------------------------------


def test_ifm_one_step_from_known_parameters():
    model = IncrementalFM(n_factors=2, learning_rate=0.1, l2_intercept=0.1, l2_weight=0.1, l2_latent=0.1,
                          l2_learning_rate=0.0)
    model.learn(Event("u", "i"))  # rows 0 (u) and 1 (i)
    set_state(
        model,
        intercept=0.1,
        weights=np.array([0.2, 0.3]),
        factors=np.array([[1.0, 0.0], [0.5, 2.0]]),
    )
    model.learn(Event("u", "i", value=1.0))
    # x = e_u + e_i: y = 0.1 + 0.2 + 0.3 + <v_u, v_i> = 1.1, err = -0.1, 2a = 0.2
    # w0  = 0.1 + 0.2 * (-0.1 - 0.1 * 0.1)                          = 0.078
    # w_u = 0.2 + 0.2 * (-0.1 - 0.1 * 0.2)                          = 0.176
    # w_i = 0.3 + 0.2 * (-0.1 - 0.1 * 0.3)                          = 0.274
    # v_u = [1, 0] + 0.2 * (-0.1 * v_i - 0.1 * v_u) = [1, 0] + 0.2 * [-0.15, -0.2]   = [0.97, -0.04]
    # v_i = [0.5, 2] + 0.2 * (-0.1 * v_u - 0.1 * v_i) = [0.5, 2] + 0.2 * [-0.15, -0.2] = [0.47, 1.96]
    state = model.state_dict()["model_state"]
    assert state["intercept"] == pytest.approx(0.078)
    np.testing.assert_allclose(state["weights"], [0.176, 0.274])
    np.testing.assert_allclose(state["factors"], [[0.97, -0.04], [0.47, 1.96]])
    # The score is the FM prediction with the new parameters.
    assert by_id(model, "u")["i"] == pytest.approx(0.078 + 0.176 + 0.274 + 0.97 * 0.47 - 0.04 * 1.96)


def _dense_prediction(model, user, item, context=None, attributes=None):
    """The FM prediction computed directly on the dense feature vector."""
    state = model.state_dict()["model_state"]
    w, V = state["weights"], state["factors"]
    x = np.zeros(len(w))
    u, i = model.users.get(user), model.items.get(item)
    if u is not None:
        x[state["user_rows"][u]] = 1.0
        x[state["user_attribute_rows"]] = state["user_attribute_values"][u]
    elif attributes is not None:
        x[state["user_attribute_rows"]] = attributes
    x[state["item_rows"][i]] = 1.0
    x[state["item_attribute_rows"]] = state["item_attribute_values"][i]
    for name, row in zip(state["context_names"], state["context_rows"]):
        x[row] = (context or {}).get(name, 0.0)
    pairwise = sum(x[j] * x[l] * (V[j] @ V[l]) for j in range(len(x)) for l in range(j + 1, len(x)))
    return state["intercept"] + w @ x + pairwise


def test_ifm_vectorised_scores_equal_the_dense_prediction():
    users = {"u": {"age": 20.0, "gender=F": 1.0}, "v": {"age": 60.0, "gender=M": 1.0}, "z": {"age": 40.0, "gender=F": 1.0}}
    items = {"a": {"release_year": 1990.0, "genre=Drama": 1.0}, "b": {"release_year": 1970.0}, "c": {}}
    model = IncrementalFM(n_factors=3, user_attributes=users, item_attributes=items, seed=2)
    for user, item, context in [("u", "a", {"hour": 0.5}), ("v", "b", None), ("u", "c", {"hour": 0.2}),
                                ("w", "a", None), ("v", "a", {"hour": 1.0})]:
        model.learn(Event(user, item, context=context))
    for user in ("u", "v", "w"):
        for context in (None, {"hour": 0.7}):
            scores = by_id(model, user, context)
            for item in ("a", "b", "c"):
                assert scores[item] == pytest.approx(_dense_prediction(model, user, item, context))
    # Attributes are min-max scaled: ages 20, 40 and 60 become 0, 0.5 and 1
    # (features: age, gender=F, gender=M).
    state = model.state_dict()["model_state"]
    np.testing.assert_allclose(state["user_attribute_values"][model.users.get("v")], [1.0, 0.0, 1.0])
    # "z" was never seen: scored from its attributes, with no user factor.
    assert "z" not in model.users
    scores = by_id(model, "z", {"hour": 0.3})
    for item in ("a", "b", "c"):
        expected = _dense_prediction(model, "z", item, {"hour": 0.3}, attributes=np.array([0.5, 1.0, 0.0]))
        assert scores[item] == pytest.approx(expected)
    # An unseen user without attributes has only the context and item terms.
    scores = by_id(model, "nobody")
    for item in ("a", "b", "c"):
        assert scores[item] == pytest.approx(_dense_prediction(model, "nobody", item))


def test_ifm_adaptive_regularization_gradient():
    """lambda moves against d loss(e_t) / d lambda, the lambda of the step on e_{t-1}, as a finite difference shows."""
    k = 3
    events = [Event("u", "a"), Event("v", "a", context={"c": 0.5}), Event("u", "b"), Event("v", "b"),
              Event("u", "a", context={"c": 1.0}), Event("v", "a", context={"c": 0.3})]
    params = dict(n_factors=k, learning_rate=0.05, l2_intercept=0.2, l2_weight=0.3, l2_latent=0.4,
                  l2_learning_rate=0.01, seed=3)
    model = IncrementalFM(**params)
    for event in events[:-2]:
        model.learn(event)
    before_previous = model.state_dict()
    previous, current = events[-2], events[-1]
    model.learn(previous)
    used = model.regularization  # the lambdas of the step on `previous`
    model.learn(current)
    adapted = model.regularization

    def loss(lambda_w, lambda_V):
        # Redo the step on `previous` with fixed lambdas, then the loss on `current`.
        clone = IncrementalFM(**(params | {"l2_learning_rate": 0.0}))
        state = dict(before_previous)
        state["model_state"] = dict(before_previous["model_state"], lambda_intercept=used["intercept"],
                                    lambda_weight=lambda_w, lambda_latent=lambda_V)
        state["params"] = clone.params()
        clone.load_state_dict(state)
        clone.learn(previous)
        prediction = by_id(clone, current.user, current.context)[current.item]
        return (current.value - prediction) ** 2

    eps = 1e-5
    rate = params["l2_learning_rate"]
    numeric_w = (loss(used["weight"] + eps, used["latent"]) - loss(used["weight"] - eps, used["latent"])) / (2 * eps)
    assert (used["weight"] - adapted["weight"]) / rate == pytest.approx(numeric_w, rel=1e-4, abs=1e-9)
    for f in range(k):
        plus, minus = used["latent"].copy(), used["latent"].copy()
        plus[f] += eps
        minus[f] -= eps
        numeric_f = (loss(used["weight"], plus) - loss(used["weight"], minus)) / (2 * eps)
        assert (used["latent"][f] - adapted["latent"][f]) / rate == pytest.approx(numeric_f, rel=1e-4, abs=1e-9)
        assert numeric_f != 0.0


# -- sketch ------------------------------------------------------------------------


def _frequent_directions(rows: np.ndarray, ell: int) -> np.ndarray:
    """Compute the ell x d Frequent Directions sketch of `rows` (Liberty, "Simple and deterministic matrix sketching", KDD 2013)."""
    B = np.zeros((ell, rows.shape[1]))
    for row in rows:
        zero = np.flatnonzero(~B.any(axis=1))
        B[zero[0]] = row
        if zero.size == 1:  # no zero-valued row left
            _, s, Vt = np.linalg.svd(B, full_matrices=False)
            delta = s[-1] ** 2
            B = np.sqrt(np.maximum(s**2 - delta, 0.0))[:, None] * Vt
    return B


def test_sketch_matches_a_direct_frequent_directions_computation():
    ell = 3
    pairs = [("u1", "a"), ("u2", "b"), ("u1", "b"), ("u3", "c"), ("u2", "a"), ("u1", "c"), ("u3", "a"),
             ("u2", "d"), ("u4", "a"), ("u1", "a"), ("u4", "d")]
    model = SketchRecommender(sketch_size=ell)
    for user, item in pairs:
        model.learn(Event(user, item))
    state = model.state_dict()["model_state"]
    d = len(state["sketch"])
    rows = np.zeros((len(pairs), d))
    for t, (user, item) in enumerate(pairs):
        rows[t, state["user_rows"][model.users.get(user)]] = 1.0 / math.sqrt(2.0)
        rows[t, state["item_rows"][model.items.get(item)]] = 1.0 / math.sqrt(2.0)
    direct = _frequent_directions(rows, ell)
    sketch = state["sketch"]
    np.testing.assert_allclose(sketch @ sketch.T, direct.T @ direct, atol=1e-10)
    # The Frequent Directions guarantee: 0 <= Y^T Y - B^T B <= |Y|_F^2 / ell.
    gap = np.linalg.eigvalsh(rows.T @ rows - sketch @ sketch.T)
    assert gap.min() > -1e-10
    assert gap.max() <= (rows**2).sum() / ell + 1e-10

    # Scores: squared length of y's projection on the top r = 2 directions.
    eigenvalues, vectors = np.linalg.eigh(direct.T @ direct)
    assert eigenvalues[-2] - eigenvalues[-3] > 1e-6  # the top-2 subspace is well defined
    top = vectors[:, -2:]
    for user in ("u1", "u2", "u4"):
        scores = by_id(model, user)
        for item in ("a", "b", "c", "d"):
            y = np.zeros(d)
            y[state["user_rows"][model.users.get(user)]] = 1.0 / math.sqrt(2.0)
            y[state["item_rows"][model.items.get(item)]] = 1.0 / math.sqrt(2.0)
            assert scores[item] == pytest.approx(float(np.sum((top.T @ y) ** 2)), abs=1e-10)
    # An unknown user: y = e_item.
    unknown = by_id(model, "nobody")
    for item in ("a", "d"):
        e = np.zeros(d)
        e[state["item_rows"][model.items.get(item)]] = 1.0
        assert unknown[item] == pytest.approx(float(np.sum((top.T @ e) ** 2)), abs=1e-10)


def test_sketch_before_full_is_exact():
    model = SketchRecommender(sketch_size=8)
    for user, item in [("u1", "a"), ("u2", "b"), ("u1", "b")]:
        model.learn(Event(user, item))
    state = model.state_dict()["model_state"]
    # Three events, eight columns: no shrink yet, so B B^T = Y^T Y exactly.
    h = 0.5
    expected = np.array([
        # rows: u1, a, u2, b
        [2 * h, h, 0.0, h],
        [h, h, 0.0, 0.0],
        [0.0, 0.0, h, h],
        [h, 0.0, h, 2 * h],
    ])
    np.testing.assert_allclose(state["sketch"] @ state["sketch"].T, expected, atol=1e-12)


# -- knn ---------------------------------------------------------------------------

# u1: a b c, u2: a b, u3: c d
def approx_tie(expected):
    """Scores up to the popularity tie-break, which adds less than 1e-9."""
    return pytest.approx(expected, rel=1e-6, abs=1e-8)


KNN_STREAM = [("u1", "a"), ("u2", "a"), ("u1", "b"), ("u3", "c"), ("u2", "b"), ("u1", "c"), ("u3", "d")]


def test_userknn_cosine_similarities_and_scores():
    model = UserKNN(k=50)
    for user, item in KNN_STREAM:
        model.learn(Event(user, item))
    s12 = 2 / math.sqrt(3 * 2)  # |{a, b}| / sqrt(|S_u1| |S_u2|)
    s13 = 1 / math.sqrt(3 * 2)  # |{c}|
    neighbours, sims = model.similarities(model.users.get("u1"))
    assert [model.users.id_of(v) for v in neighbours.tolist()] == ["u2", "u3"]
    np.testing.assert_allclose(sims, [s12, s13])
    assert by_id(model, "u1") == approx_tie({"a": s12, "b": s12, "c": s13, "d": s13})
    # u2 and u3 share nothing: u3 is no neighbour of u2.
    assert by_id(model, "u2") == approx_tie({"a": s12, "b": s12, "c": s12, "d": 0.0})
    assert by_id(model, "u3") == approx_tie({"a": s13, "b": s13, "c": s13, "d": 0.0})
    assert by_id(model, "stranger") == approx_tie({"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0})
    # Ties are broken by popularity (profiles holding the item: a 2, b 2, c 2, d 1).
    assert model.recommend("stranger", 4)[0] == ["a", "b", "c", "d"]


def test_userknn_k_and_window():
    model = UserKNN(k=1)
    for user, item in KNN_STREAM:
        model.learn(Event(user, item))
    s12 = 2 / math.sqrt(3 * 2)
    assert by_id(model, "u1") == approx_tie({"a": s12, "b": s12, "c": 0.0, "d": 0.0})

    windowed = UserKNN(k=50, window=2)
    for user, item in KNN_STREAM:
        windowed.learn(Event(user, item))
    # u1's profile is its last two items {b, c}; u2 {a, b}; u3 {c, d}.
    assert by_id(windowed, "u1") == approx_tie({"a": 0.5, "b": 0.5, "c": 0.5, "d": 0.5})
    # A repeat inside the window does not double count: u2 reads b again.
    windowed.learn(Event("u2", "b"))  # u2's window: b, b -> profile {b}
    s = 1 / math.sqrt(2 * 1)
    assert by_id(windowed, "u1") == approx_tie({"a": 0.0, "b": s, "c": 0.5, "d": 0.5})


def test_itemknn_cosine_similarities_and_scores():
    model = ItemKNN(k=50)
    for user, item in KNN_STREAM:
        model.learn(Event(user, item))
    # a: {u1, u2}, b: {u1, u2}, c: {u1, u3}, d: {u3}
    sab, sac, scd = 2 / math.sqrt(2 * 2), 1 / math.sqrt(2 * 2), 1 / math.sqrt(2 * 1)
    others, sims = model.similar_items(model.items.get("c"))
    assert [model.items.id_of(j) for j in others.tolist()] == ["d", "a", "b"]
    np.testing.assert_allclose(sims, [scd, sac, sac])
    # u3 has seen c and d: c brings a, b (0.5 each) and d; d brings c.
    assert by_id(model, "u3") == approx_tie({"a": sac, "b": sac, "c": scd, "d": scd})
    # u2 has seen a and b: a brings b (1) and c (0.5); b brings a (1) and c (0.5).
    assert by_id(model, "u2") == approx_tie({"a": sab, "b": sab, "c": 2 * sac, "d": 0.0})

    top1 = ItemKNN(k=1)
    for user, item in KNN_STREAM:
        top1.learn(Event(user, item))
    assert by_id(top1, "u3") == approx_tie({"a": 0.0, "b": 0.0, "c": scd, "d": scd})


def test_itemknn_window_drops_old_items():
    model = ItemKNN(k=50, window=2)
    for user, item in KNN_STREAM:
        model.learn(Event(user, item))
    # Profiles: u1 {b, c}, u2 {a, b}, u3 {c, d}: a: {u2}, b: {u1, u2}, c: {u1, u3}, d: {u3}
    sab, sbc, scd = 1 / math.sqrt(1 * 2), 1 / math.sqrt(2 * 2), 1 / math.sqrt(2 * 1)
    # u1 has seen b and c: b brings a and c, c brings b and d.
    assert by_id(model, "u1") == approx_tie({"a": sab, "b": sbc, "c": sbc, "d": scd})


@pytest.mark.parametrize("cls", [UserKNN, ItemKNN])
def test_knn_ties_are_broken_by_popularity(cls):
    model = cls()
    for user, item in [("x", "p"), ("y", "q"), ("z", "q"), ("z", "r")]:
        model.learn(Event(user, item))
    # A stranger has no neighbours: q (2 profiles) before p and r (1 each, by index).
    assert model.recommend("stranger", 3)[0] == ["q", "p", "r"]
    scores = np.asarray(model.scores("stranger"))
    assert np.all(scores < 1e-9)
    assert scores[model.items.get("q")] > scores[model.items.get("p")]
    assert scores[model.items.get("p")] > 0
