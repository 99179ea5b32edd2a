"""Incremental factorization machine with adaptive regularization."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from models.base import Event, NonFiniteParameterError, Recommender, check_finite
from models.growable import GrowableArray
from models.attributes import Attributes, _AttributeTable
from models.ids import Id

class IncrementalFM(Recommender):
    """Incremental factorization machine (iFM) with adaptive regularization.

    Kitazawa, "Incremental Factorization Machines for Persistently
    Cold-starting Online Item Recommendation", arXiv:1607.02858, 2016, on a
    factorization machine (Rendle, ICDM 2010). An event (u, i) with context c
    is the feature vector x made of: a one-hot feature for u, u's attributes,
    the event's context values, a one-hot feature for i and i's attributes.
    Its predicted value is

        y(x) = w0 + sum_j w_j x_j + sum_{j<l} <v_j, v_l> x_j x_l
             = w0 + w . x + (|V^T x|^2 - sum_j x_j^2 |v_j|^2) / 2,

    and each event takes one stochastic gradient step on
    (value - y(x))^2 + lambda_0 w0^2 + lambda_w |w|^2 + sum_f lambda_f |V_f|^2
    over the features present in x, with err = value - y(x) and s = V^T x:

        w0  <- w0  + 2 a (err - lambda_0 w0)
        w_j <- w_j + 2 a (err x_j - lambda_w w_j)
        v_jf <- v_jf + 2 a (err x_j (s_f - x_j v_jf) - lambda_f v_jf)

    (a = learning_rate). Adaptive regularization (Rendle, WSDM 2012): before
    that step, each lambda takes a gradient step, with rate
    `l2_learning_rate`, on the current event's loss seen as a function of the
    lambda used in the previous step, through theta_prev_step =
    theta_before - 2 a (... + lambda theta_before):

        lambda_0 <- max(0, lambda_0 - l2_learning_rate * 4 a err w0_before)
        lambda_w <- max(0, lambda_w - l2_learning_rate * 4 a err sum_j x_j w_j_before)
        lambda_f <- max(0, lambda_f - l2_learning_rate * 4 a err
                                      sum_j x_j (s_f - x_j v_jf) v_jf_before)

    where the sums run over the features the previous step updated and
    "_before" are their values before it. lambda_f (one per factor) is applied
    to the factor matrix in the next step (in FluRS the adapted value is
    stored under a misspelt name and never used). `l2_learning_rate = 0`
    keeps the lambdas fixed.

    Attribute values are scaled per feature: indicators (all given values 0 or
    1) as given, numbers (for example `age`, `release_year`) min-max scaled to
    [0, 1] over the values given to the constructor. Context values are used
    as given, so scale them to about [0, 1] before sending them; a context
    name gets its parameters when an event first carries it and is ignored
    when scoring before that.

    The score of an item is its prediction y(x), computed for all items at
    once from the item-side sums V^T x_i, with no loop over items. (FluRS
    ranks by |1 - y(x)|; with the default, FluRS-like regularization every
    prediction stays below 1, so the order is the same.) A user never seen before has no one-hot
    feature, but keeps its attributes when `user_attributes` has them: its
    scores are y(x) without the user's own factor (pure cold start: only
    attributes, context and the items' terms). A new item likewise starts with
    zero weight and random factors, plus its attributes.

    Parameters
    ----------
    n_factors
        Number of latent factors per feature.
    learning_rate
        Step size a of the parameter updates.
    l2_intercept, l2_weight, l2_latent
        Initial regularization lambda_0 of w0, lambda_w of the weights and
        lambda_f of every latent factor f (defaults as in FluRS: with positive
        events only, weak regularization lets every prediction reach 1 and
        ranks rarely seen items first).
    l2_learning_rate
        Step size of the adaptive regularization updates; 0 turns them off.
    init_std
        Standard deviation of the initial factors.
    user_attributes, item_attributes
        Optional {id: {feature name: value}} (or [id, {name: value}] pairs),
        as `models.datasets` gives for MovieLens-100k.
    seed
        Seed of the random generator for the initial factors.
    """

    name = "ifm"

    def __init__(
        self,
        *,
        n_factors: int = 16,
        learning_rate: float = 0.004,
        l2_intercept: float = 2.0,
        l2_weight: float = 8.0,
        l2_latent: float = 16.0,
        l2_learning_rate: float = 0.004,
        init_std: float = 0.1,
        user_attributes: Attributes | None = None,
        item_attributes: Attributes | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        for name, value in (("l2_intercept", l2_intercept), ("l2_weight", l2_weight), ("l2_latent", l2_latent)):
            if value < 0:
                raise ValueError(f"{name} must be non-negative, got {value!r}")
        self.n_factors = n_factors
        self.learning_rate = learning_rate
        self.l2_intercept = l2_intercept
        self.l2_weight = l2_weight
        self.l2_latent = l2_latent
        self.l2_learning_rate = l2_learning_rate
        self.init_std = init_std
        self._user_attributes = _AttributeTable(user_attributes)
        self._item_attributes = _AttributeTable(item_attributes)
        self._rng = np.random.default_rng(seed)

        k = n_factors
        # One row of w and V per feature, in order of first sight; the
        # attribute features come first.
        self._w = GrowableArray()
        self._V = GrowableArray((k,))
        self._w0 = 0.0
        self._user_attribute_rows = self._add_rows(len(self._user_attributes))
        self._item_attribute_rows = self._add_rows(len(self._item_attributes))
        self._user_row = GrowableArray(dtype=np.int64)
        self._item_row = GrowableArray(dtype=np.int64)
        self._user_x = GrowableArray((len(self._user_attributes),))
        self._item_x = GrowableArray((len(self._item_attributes),))
        self._context_names: list[str] = []
        self._context_row: dict[str, int] = {}

        self._lambda_0 = float(l2_intercept)
        self._lambda_w = float(l2_weight)
        self._lambda_V = np.full(k, float(l2_latent))
        # The previous step's rows and their values before it, for the
        # adaptive regularization.
        self._prev_rows = np.empty(0, dtype=np.int64)
        self._prev_w = np.empty(0)
        self._prev_V = np.empty((0, k))
        self._prev_w0: float | None = None

    def params(self) -> dict[str, Any]:
        return {
            "n_factors": self.n_factors,
            "learning_rate": self.learning_rate,
            "l2_intercept": self.l2_intercept,
            "l2_weight": self.l2_weight,
            "l2_latent": self.l2_latent,
            "l2_learning_rate": self.l2_learning_rate,
            "init_std": self.init_std,
            "user_attributes": self._user_attributes.as_param(),
            "item_attributes": self._item_attributes.as_param(),
            "seed": self.seed,
        }

    @property
    def regularization(self) -> dict[str, Any]:
        """The current adaptive regularization: lambda_0, lambda_w and lambda_f per factor."""
        return {"intercept": self._lambda_0, "weight": self._lambda_w, "latent": self._lambda_V.copy()}

    # -- features -------------------------------------------------------------

    def _add_rows(self, n: int) -> np.ndarray:
        first = len(self._w)
        for _ in range(n):
            self._w.append(0.0)
            self._V.append(self._rng.normal(0.0, self.init_std, self.n_factors))
        return np.arange(first, first + n, dtype=np.int64)

    def _register_user(self, u: int, event: Event) -> None:
        self._user_row.append(self._add_rows(1)[0])
        self._user_x.append(self._user_attributes.vector(event.user))

    def _register_item(self, i: int, event: Event) -> None:
        self._item_row.append(self._add_rows(1)[0])
        self._item_x.append(self._item_attributes.vector(event.item))

    def _user_side(
        self, u: int | None, attributes: np.ndarray | None, context: Mapping[str, float] | None
    ) -> tuple[list[int], list[float], list[str], list[float]]:
        """Return the user side of x: known rows and values, then new context names and values."""
        rows: list[int] = []
        values: list[float] = []
        if u is not None:
            rows.append(int(self._user_row.rows[u]))
            values.append(1.0)
            attributes = self._user_x.rows[u]
        if attributes is not None and attributes.size:
            present = np.flatnonzero(attributes)
            rows.extend(self._user_attribute_rows[present].tolist())
            values.extend(attributes[present].tolist())
        new_names, new_values = [], []
        for name, value in sorted((context or {}).items()):
            value = float(value)
            if value == 0.0:
                continue
            row = self._context_row.get(name)
            if row is None:
                new_names.append(name)
                new_values.append(value)
            else:
                rows.append(row)
                values.append(value)
        return rows, values, new_names, new_values

    # -- learning ---------------------------------------------------------------

    def _update(self, u: int, i: int, event: Event) -> None:
        rows, values, new_names, new_values = self._user_side(u, None, event.context)
        rows.append(int(self._item_row.rows[i]))
        values.append(1.0)
        item_x = self._item_x.rows[i]
        present = np.flatnonzero(item_x)
        rows.extend(self._item_attribute_rows[present].tolist())
        values.extend(item_x[present].tolist())

        rows_array = np.asarray(rows, dtype=np.int64)
        x = np.asarray(values + new_values)
        w_x = np.concatenate([self._w.rows[rows_array], np.zeros(len(new_names))])
        rng_state = self._rng.bit_generator.state
        new_V = self._rng.normal(0.0, self.init_std, (len(new_names), self.n_factors))
        V_x = np.vstack([self._V.rows[rows_array], new_V])
        try:
            self._step(rows_array, x, w_x, V_x, float(event.value), event, new_names)
        except NonFiniteParameterError:
            self._rng.bit_generator.state = rng_state
            raise

    def _step(
        self,
        rows: np.ndarray,
        x: np.ndarray,
        w_x: np.ndarray,
        V_x: np.ndarray,
        target: float,
        event: Event,
        new_names: list[str],
    ) -> None:
        a = self.learning_rate
        s = x @ V_x
        x2 = x * x
        prediction = self._w0 + float(w_x @ x) + 0.5 * float(s @ s - x2 @ (V_x * V_x).sum(axis=1))
        err = target - prediction

        lambda_0, lambda_w, lambda_V = self._lambda_0, self._lambda_w, self._lambda_V
        if self._prev_w0 is not None and self.l2_learning_rate > 0.0:
            step = self.l2_learning_rate * 4.0 * a * err
            # Rows of this event that the previous step updated (only those
            # depend on the lambdas of the previous step); new context rows
            # cannot be among them.
            common, here, there = np.intersect1d(rows, self._prev_rows, assume_unique=True, return_indices=True)
            x_common = x[here]
            lambda_0 = max(0.0, lambda_0 - step * self._prev_w0)
            lambda_w = max(0.0, lambda_w - step * float(x_common @ self._prev_w[there]))
            V_common = V_x[here]
            gradient_V = (x_common[:, None] * (s[None, :] - x_common[:, None] * V_common) * self._prev_V[there]).sum(
                axis=0
            )
            lambda_V = np.maximum(0.0, lambda_V - step * gradient_V)

        new_w0 = self._w0 + 2.0 * a * (err - lambda_0 * self._w0)
        new_w = w_x + 2.0 * a * (err * x - lambda_w * w_x)
        new_V = V_x + 2.0 * a * (err * x[:, None] * (s[None, :] - x[:, None] * V_x) - lambda_V[None, :] * V_x)
        # The event's prediction after the step, and the squared factors that
        # every score sums, must stay finite too: a huge value can leave the
        # parameters finite but their products infinite.
        new_s = x @ new_V
        new_prediction = new_w0 + new_w @ x + 0.5 * (new_s @ new_s - x2 @ (new_V * new_V).sum(axis=1))
        check_finite(
            self,
            event,
            intercept=np.array([new_w0]),
            weights=new_w,
            factors=new_V,
            regularization=np.append(lambda_V, [lambda_0, lambda_w]),
            prediction=np.array([new_prediction, new_w0 * new_w0, new_w @ new_w, (new_V * new_V).sum()]),
        )

        # Commit: the previous values first, then the new ones.
        n_old = len(rows)
        self._prev_w0 = self._w0
        self._prev_w = w_x[:n_old].copy()
        self._prev_V = V_x[:n_old].copy()
        self._w0 = float(new_w0)
        self._w.rows[rows] = new_w[:n_old]
        self._V.rows[rows] = new_V[:n_old]
        new_rows = []
        for n, name in enumerate(new_names):
            row = self._w.append(new_w[n_old + n])
            self._V.append(new_V[n_old + n])
            self._context_names.append(name)
            self._context_row[name] = row
            new_rows.append(row)
        if new_rows:
            # The new rows were updated too: keep them for the next
            # regularization step, with their values before this one.
            self._prev_rows = np.concatenate([rows, new_rows]).astype(np.int64)
            self._prev_w = w_x.copy()
            self._prev_V = V_x.copy()
        else:
            self._prev_rows = rows.copy()
        self._lambda_0, self._lambda_w, self._lambda_V = float(lambda_0), float(lambda_w), lambda_V

    def _compact_users(self, keep: np.ndarray) -> None:
        # Drop the evicted users' rows of w and V and renumber the others.
        row_keep = np.ones(len(self._w), dtype=bool)
        row_keep[self._user_row.rows[~keep]] = False
        new_index = np.cumsum(row_keep) - 1
        self._w.load(self._w.rows[row_keep])
        self._V.load(self._V.rows[row_keep])
        self._user_row.load(new_index[self._user_row.rows[keep]])
        self._item_row.load(new_index[self._item_row.rows])
        self._user_x.load(self._user_x.rows[keep])
        self._user_attribute_rows = new_index[self._user_attribute_rows]
        self._item_attribute_rows = new_index[self._item_attribute_rows]
        self._context_row = {name: int(new_index[row]) for name, row in self._context_row.items()}
        prev_keep = row_keep[self._prev_rows]
        self._prev_rows = new_index[self._prev_rows[prev_keep]]
        self._prev_w = self._prev_w[prev_keep]
        self._prev_V = self._prev_V[prev_keep]

    # -- scoring ----------------------------------------------------------------

    def scores(self, user: Id, context: Mapping[str, float] | None = None) -> np.ndarray:
        """Return a score for every known item; an unseen user is scored from its attributes, if any."""
        u = self.users.get(user)
        if u is None and len(self._user_attributes):
            return self._score_user_side(None, self._user_attributes.vector(user), context)
        return self._scores(u, context)

    def _scores(self, u: int | None, context: Mapping[str, float] | None) -> np.ndarray:
        return self._score_user_side(u, None, context)

    def _score_user_side(
        self, u: int | None, attributes: np.ndarray | None, context: Mapping[str, float] | None
    ) -> np.ndarray:
        w, V = self._w.rows, self._V.rows
        rows, values, _, _ = self._user_side(u, attributes, context)
        rows_a = np.asarray(rows, dtype=np.int64)
        x_a = np.asarray(values)
        V_a = V[rows_a]
        s_a = x_a @ V_a
        user_terms = float(w[rows_a] @ x_a) + 0.5 * float(s_a @ s_a - (x_a * x_a) @ (V_a * V_a).sum(axis=1))

        item_rows = self._item_row.rows
        Q = V[item_rows]
        linear = w[item_rows].copy()
        squares = (Q * Q).sum(axis=1)
        if len(self._item_attributes):
            X = self._item_x.rows
            V_attr = V[self._item_attribute_rows]
            Q = Q + X @ V_attr
            linear += X @ w[self._item_attribute_rows]
            squares += (X * X) @ (V_attr * V_attr).sum(axis=1)
        item_terms = linear + 0.5 * (np.einsum("ij,ij->i", Q, Q) - squares)
        return self._w0 + user_terms + item_terms + Q @ s_a

    # -- state ----------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {
            "intercept": self._w0,
            "weights": self._w.rows.copy(),
            "factors": self._V.rows.copy(),
            "user_rows": self._user_row.rows.copy(),
            "item_rows": self._item_row.rows.copy(),
            "user_attribute_values": self._user_x.rows.copy(),
            "item_attribute_values": self._item_x.rows.copy(),
            "user_attribute_rows": self._user_attribute_rows.copy(),
            "item_attribute_rows": self._item_attribute_rows.copy(),
            "context_names": list(self._context_names),
            "context_rows": np.array([self._context_row[n] for n in self._context_names], dtype=np.int64),
            "lambda_intercept": self._lambda_0,
            "lambda_weight": self._lambda_w,
            "lambda_latent": self._lambda_V.copy(),
            "prev_rows": self._prev_rows.copy(),
            "prev_weights": self._prev_w.copy(),
            "prev_factors": self._prev_V.copy(),
            "prev_intercept": self._prev_w0,
            "rng": self._rng.bit_generator.state,
        }

    def _load_state(self, state: Mapping[str, Any]) -> None:
        k = self.n_factors
        self._w0 = float(state["intercept"])
        self._w.load(np.asarray(state["weights"], dtype=np.float64).reshape(-1))
        self._V.load(np.asarray(state["factors"], dtype=np.float64).reshape(-1, k))
        self._user_row.load(np.asarray(state["user_rows"], dtype=np.int64).reshape(-1))
        self._item_row.load(np.asarray(state["item_rows"], dtype=np.int64).reshape(-1))
        self._user_x.load(
            np.asarray(state["user_attribute_values"], dtype=np.float64).reshape(
                len(self._user_row), len(self._user_attributes)
            )
        )
        self._item_x.load(
            np.asarray(state["item_attribute_values"], dtype=np.float64).reshape(
                len(self._item_row), len(self._item_attributes)
            )
        )
        self._user_attribute_rows = np.asarray(state["user_attribute_rows"], dtype=np.int64).reshape(-1)
        self._item_attribute_rows = np.asarray(state["item_attribute_rows"], dtype=np.int64).reshape(-1)
        self._context_names = [str(n) for n in state["context_names"]]
        rows = np.asarray(state["context_rows"], dtype=np.int64).tolist()
        self._context_row = dict(zip(self._context_names, rows))
        self._lambda_0 = float(state["lambda_intercept"])
        self._lambda_w = float(state["lambda_weight"])
        self._lambda_V = np.asarray(state["lambda_latent"], dtype=np.float64).reshape(k).copy()
        self._prev_rows = np.asarray(state["prev_rows"], dtype=np.int64).reshape(-1)
        self._prev_w = np.asarray(state["prev_weights"], dtype=np.float64).reshape(-1)
        self._prev_V = np.asarray(state["prev_factors"], dtype=np.float64).reshape(-1, k)
        prev_w0 = state["prev_intercept"]
        self._prev_w0 = None if prev_w0 is None else float(prev_w0)
        self._rng.bit_generator.state = dict(state["rng"])
