"""Incremental Bayesian personalized ranking matrix factorization."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from models.base import Event, Recommender, check_finite
from models.growable import GrowableArray


def _sigmoid(x: float) -> float:
    """Logistic function, without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + np.exp(-x))
    z = np.exp(x)
    return z / (1.0 + z)


class BPRMF(Recommender):
    """Incremental BPR matrix factorization (BPR-MF).

    Rendle, Freudenthaler, Gantner and Schmidt-Thieme, "BPR: Bayesian
    personalized ranking from implicit feedback", UAI 2009, learned one event
    at a time. The score of item i for user u is x_ui = p_u . q_i + b_i (the
    item bias b_i only when `item_bias` is on). For an event (u, i) the model
    draws `n_negatives` distinct items j the user has never interacted with
    (uniformly among the known items outside the user's history and other than
    i) and, for each j in turn, takes one stochastic gradient ascent step on

        ln sigmoid(x_uij) - l2 * (|p_u|^2 + |q_i|^2 + |q_j|^2 + b_i^2 + b_j^2) / 2,
        x_uij = x_ui - x_uj,

    that is, with g = sigmoid(-x_uij) and every right-hand side taken before
    the step:

        p_u <- p_u + learning_rate * (g * (q_i - q_j) - l2 * p_u)
        q_i <- q_i + learning_rate * (g * p_u - l2 * q_i)
        q_j <- q_j + learning_rate * (-g * p_u - l2 * q_j)
        b_i <- b_i + learning_rate * (g - l2 * b_i)
        b_j <- b_j + learning_rate * (-g - l2 * b_j)

    The L2 term always shrinks the weights towards zero (FluRS adds it with
    the wrong sign, so a larger l2 grows them). When fewer than `n_negatives`
    such items exist, the event takes one step per available item; when the
    user has interacted with every known item, there is no negative item and
    the event changes no parameter (it is still recorded in the user's
    history).

    New users and items start with factors drawn from N(0, init_std^2) and a
    zero bias. A user never seen before has no vector, so the scores are the
    item biases (all zero without `item_bias`); a new item scores
    p_u . q_new, close to zero.

    Parameters
    ----------
    n_factors
        Length of the user and item vectors.
    learning_rate
        Step size of each pairwise update.
    l2
        L2 regularization strength; larger values shrink the weights more.
    n_negatives
        Number of negative items drawn per event, each giving one pairwise step.
    item_bias
        Whether items have a learned bias term.
    init_std
        Standard deviation of the initial factors.
    seed
        Seed of the random generator for the initial factors and the negatives.
    """

    name = "bprmf"

    def __init__(
        self,
        *,
        n_factors: int = 32,
        learning_rate: float = 0.1,
        l2: float = 0.01,
        n_negatives: int = 2,
        item_bias: bool = True,
        init_std: float = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        if n_negatives < 1:
            raise ValueError(f"n_negatives must be at least 1, got {n_negatives!r}")
        if l2 < 0:
            raise ValueError(f"l2 must be non-negative, got {l2!r}")
        self.n_factors = n_factors
        self.learning_rate = learning_rate
        self.l2 = l2
        self.n_negatives = n_negatives
        self.item_bias = item_bias
        self.init_std = init_std
        self._rng = np.random.default_rng(seed)
        self._P = GrowableArray((n_factors,))
        self._Q = GrowableArray((n_factors,))
        self._b = GrowableArray()

    def params(self) -> dict[str, Any]:
        return {
            "n_factors": self.n_factors,
            "learning_rate": self.learning_rate,
            "l2": self.l2,
            "n_negatives": self.n_negatives,
            "item_bias": self.item_bias,
            "init_std": self.init_std,
            "seed": self.seed,
        }

    def _register_user(self, u: int, event: Event) -> None:
        self._P.append(self._rng.normal(0.0, self.init_std, self.n_factors))

    def _register_item(self, i: int, event: Event) -> None:
        self._Q.append(self._rng.normal(0.0, self.init_std, self.n_factors))
        self._b.append(0.0)

    def _sample_negatives(self, u: int, i: int) -> list[int]:
        """Draw up to `n_negatives` distinct items outside the user's history and other than i."""
        n_items = len(self.items)
        seen = self._seen[u]
        n_excluded = len(seen) + (i not in seen)
        available = n_items - n_excluded
        wanted = min(self.n_negatives, available)
        if wanted <= 0:
            return []
        if 2 * n_excluded <= n_items:
            # Rejection sampling: each draw is accepted with probability >= 1/2.
            chosen: list[int] = []
            while len(chosen) < wanted:
                j = int(self._rng.integers(n_items))
                if j != i and j not in seen and j not in chosen:
                    chosen.append(j)
            return chosen
        excluded = np.fromiter(seen, dtype=np.int64, count=len(seen))
        candidates = np.setdiff1d(np.arange(n_items), np.append(excluded, i), assume_unique=False)
        return self._rng.choice(candidates, size=wanted, replace=False).tolist()

    def _update(self, u: int, i: int, event: Event) -> None:
        rng_state = self._rng.bit_generator.state
        negatives = self._sample_negatives(u, i)
        if not negatives:
            return
        rate, l2 = self.learning_rate, self.l2
        p = self._P.rows[u].copy()
        q_i = self._Q.rows[i].copy()
        b_i = float(self._b.rows[i])
        new_q_j = []
        new_b_j = []
        for j in negatives:
            q_j = self._Q.rows[j]
            b_j = float(self._b.rows[j])
            x_uij = float(p @ (q_i - q_j))
            if self.item_bias:
                x_uij += b_i - b_j
            g = _sigmoid(-x_uij)
            p, q_i, q_j = (
                p + rate * (g * (q_i - q_j) - l2 * p),
                q_i + rate * (g * p - l2 * q_i),
                q_j + rate * (-g * p - l2 * q_j),
            )
            if self.item_bias:
                b_i, b_j = b_i + rate * (g - l2 * b_i), b_j + rate * (-g - l2 * b_j)
            new_q_j.append(q_j)
            new_b_j.append(b_j)
        try:
            check_finite(
                self,
                event,
                user_factors=p,
                item_factors=np.vstack([q_i, *new_q_j]),
                item_biases=np.array([b_i, *new_b_j]),
            )
        except Exception:
            self._rng.bit_generator.state = rng_state
            raise
        self._P.rows[u] = p
        self._Q.rows[i] = q_i
        self._Q.rows[negatives] = new_q_j
        self._b.rows[i] = b_i
        self._b.rows[negatives] = new_b_j

    def _compact_users(self, keep: np.ndarray) -> None:
        self._P.load(self._P.rows[keep])

    def _scores(self, u: int | None, context: Mapping[str, float] | None) -> np.ndarray:
        biases = self._b.rows if self.item_bias else np.zeros(len(self.items))
        if u is None:
            return biases.copy()
        return self._Q.rows @ self._P.rows[u] + biases

    def _state(self) -> dict[str, Any]:
        return {
            "user_factors": self._P.rows.copy(),
            "item_factors": self._Q.rows.copy(),
            "item_biases": self._b.rows.copy(),
            "rng": self._rng.bit_generator.state,
        }

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self._P.load(np.asarray(state["user_factors"], dtype=np.float64).reshape(-1, self.n_factors))
        self._Q.load(np.asarray(state["item_factors"], dtype=np.float64).reshape(-1, self.n_factors))
        self._b.load(np.asarray(state["item_biases"], dtype=np.float64).reshape(-1))
        self._rng.bit_generator.state = dict(state["rng"])
