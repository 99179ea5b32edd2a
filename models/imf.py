"""Incremental matrix factorization for positive-only feedback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from models.base import Event, Recommender, check_finite
from models.growable import GrowableArray


class IncrementalMF(Recommender):
    """Incremental stochastic gradient descent matrix factorization (ISGD).

    Vinagre, Jorge and Gama, "Fast incremental matrix factorization for
    recommendation with positive-only feedback", UMAP 2014. Every event is a
    positive example with target 1. For user vector p_u and item vector q_i:

        e   = 1 - p_u . q_i
        p_u <- p_u + learning_rate * (e * q_i - l2 * p_u)
        q_i <- q_i + learning_rate * (e * p_u - l2 * q_i)

    Both updates use the values from before the event. An item's score for a
    user is p_u . q_i. New users and items start with factors drawn from
    N(0, init_std^2). A user never seen before has no vector, so every item
    scores 0 for them.

    Parameters
    ----------
    n_factors
        Length of the user and item vectors.
    learning_rate
        Step size of each update.
    l2
        L2 regularization strength.
    init_std
        Standard deviation of the initial factors.
    seed
        Seed of the random generator that draws the initial factors.
    """

    name = "imf"

    def __init__(
        self,
        *,
        n_factors: int = 32,
        learning_rate: float = 0.05,
        l2: float = 0.01,
        init_std: float = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        self.n_factors = n_factors
        self.learning_rate = learning_rate
        self.l2 = l2
        self.init_std = init_std
        self._rng = np.random.default_rng(seed)
        self._P = GrowableArray((n_factors,))
        self._Q = GrowableArray((n_factors,))

    def params(self) -> dict[str, Any]:
        return {
            "n_factors": self.n_factors,
            "learning_rate": self.learning_rate,
            "l2": self.l2,
            "init_std": self.init_std,
            "seed": self.seed,
        }

    def _register_user(self, u: int, event: Event) -> None:
        self._P.append(self._rng.normal(0.0, self.init_std, self.n_factors))

    def _register_item(self, i: int, event: Event) -> None:
        self._Q.append(self._rng.normal(0.0, self.init_std, self.n_factors))

    def _update(self, u: int, i: int, event: Event) -> None:
        p_u = self._P.rows[u]
        q_i = self._Q.rows[i]

        # Error against the positive target 1.
        error = 1.0 - float(p_u @ q_i)

        # Gradient steps on both vectors, from their values before the event.
        new_p = p_u + self.learning_rate * (error * q_i - self.l2 * p_u)
        new_q = q_i + self.learning_rate * (error * p_u - self.l2 * q_i)

        check_finite(self, event, user_factors=new_p, item_factors=new_q)
        self._P.rows[u] = new_p
        self._Q.rows[i] = new_q

    def _compact_users(self, keep: np.ndarray) -> None:
        self._P.load(self._P.rows[keep])

    def _scores(self, u: int | None, context: Mapping[str, float] | None) -> np.ndarray:
        if u is None:
            return np.zeros(len(self.items))
        return self._Q.rows @ self._P.rows[u]

    def _state(self) -> dict[str, Any]:
        return {
            "user_factors": self._P.rows.copy(),
            "item_factors": self._Q.rows.copy(),
            "rng": self._rng.bit_generator.state,
        }

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self._P.load(np.asarray(state["user_factors"]).reshape(-1, self.n_factors))
        self._Q.load(np.asarray(state["item_factors"]).reshape(-1, self.n_factors))
        self._rng.bit_generator.state = state["rng"]
