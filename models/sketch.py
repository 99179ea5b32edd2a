"""Frequent-Directions sketch recommender."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from models.base import Event, Recommender, check_finite
from models.growable import GrowableArray

# A residual norm at or below this counts as zero (event vectors have norm 1).
_RESIDUAL_TOLERANCE = 1e-10
# Squared singular values at or below this times the largest count as zero:
# eigh computes them with an absolute error of about 1e-16 times the largest.
_RANK_TOLERANCE = 1e-12


class SketchRecommender(Recommender):
    """Online item recommendation by Frequent-Directions matrix sketching.

    Kitazawa, "Sketching Dynamic User-Item Interactions for Online Item
    Recommendation", CHIIR 2017. Each event (u, i) is the unit vector

        y = (e_u + e_i) / sqrt(2)

    over one feature per user and one per item (d = n_users + n_items rows).
    The model keeps a d x ell sketch B of the stream of such vectors with the
    Frequent Directions algorithm (Liberty, KDD 2013): y goes into the first
    all-zero column of B; when that fills the last free column, B is replaced by

        B = U_ell * sqrt(max(s^2 - s_ell^2, 0)),   [U, s, _] = svd(B),

    which zeroes at least the last column again, so B B^T never overestimates
    and underestimates the stream's Y Y^T by at most |Y|_F^2 / ell in the
    spectral norm. Between shrinks B is kept as U * s (same B B^T), so its
    columns are orthogonal and sorted by decreasing norm, and the tracked
    orthonormal basis U_r is simply its first `n_factors` non-zero columns,
    normalised.

    The paper recommends the items whose event vector is least anomalous,
    that is, has the smallest residual |(I - U_r U_r^T) y|. As y has unit
    length, that order is the order of decreasing

        score(u, i) = |U_r^T y_ui|^2 = 1 - |(I - U_r U_r^T) y_ui|^2,

    which is what `scores` returns (a number in [0, 1], higher is better),
    computed for all items at once from the rows of U_r.

    Before the first update the sketch is empty: U_r has no column and every
    score is 0 (FluRS fails there). A user never seen before has no feature,
    so y = e_i and the score is |U_r^T e_i|^2, a popularity-like order of the
    items. A new item scores |U_r^T e_u|^2 / 2, the user's share only.

    Parameters
    ----------
    sketch_size
        Number of columns ell of the sketch.
    n_factors
        Number r <= ell of tracked orthonormal directions used for scoring;
        None means ceil(ell / 2) as in the paper.
    seed
        Unused (the algorithm is deterministic); kept for the common constructor.
    """

    name = "sketch"

    def __init__(self, *, sketch_size: int = 64, n_factors: int | None = None, seed: int = 0) -> None:
        super().__init__(seed=seed)
        if sketch_size < 1:
            raise ValueError(f"sketch_size must be at least 1, got {sketch_size!r}")
        if n_factors is not None and not 1 <= n_factors <= sketch_size:
            raise ValueError(f"n_factors must be between 1 and sketch_size ({sketch_size}), got {n_factors!r}")
        self.sketch_size = sketch_size
        self.n_factors = n_factors
        self._rank = n_factors if n_factors is not None else -(-sketch_size // 2)
        # One row of B per feature; user u and item i have rows user_row[u]
        # and item_row[i], in order of first sight.
        self._B = GrowableArray((sketch_size,))
        self._user_row = GrowableArray(dtype=np.int64)
        self._item_row = GrowableArray(dtype=np.int64)
        self._filled = 0  # number of leading non-zero columns of B
        self._s = np.empty(0)  # their norms, the singular values of B
        self._basis: np.ndarray | None = None  # cached U_r, d x r

    def params(self) -> dict[str, Any]:
        return {"sketch_size": self.sketch_size, "n_factors": self.n_factors, "seed": self.seed}

    def _register_user(self, u: int, event: Event) -> None:
        self._user_row.append(len(self._B))
        self._B.append(0.0)
        self._basis = None

    def _register_item(self, i: int, event: Event) -> None:
        self._item_row.append(len(self._B))
        self._B.append(0.0)
        self._basis = None

    def _update(self, u: int, i: int, event: Event) -> None:
        rows = np.array([self._user_row.rows[u], self._item_row.rows[i]], dtype=np.int64)
        values = np.full(2, 1.0 / np.sqrt(2.0))
        basis, singular = self._insert(rows, values, event)
        new_columns = basis * singular
        check_finite(self, event, sketch=new_columns)
        B = self._B.rows
        m = singular.size
        B[:, :m] = new_columns
        B[:, m:] = 0.0
        self._s = singular
        self._filled = m
        self._basis = None

    def _insert(self, rows: np.ndarray, values: np.ndarray, event: Event) -> tuple[np.ndarray, np.ndarray]:
        """Return the left singular vectors and non-zero singular values of [B, y], shrunk when full.

        B = U diag(s) has orthogonal columns, so the SVD of [B, y] follows
        from that of a small (m+1) x (m+1) matrix (Brand, "Fast low-rank
        modifications of the thin singular value decomposition", 2006):
        with c = U^T y, residual r = y - U c and rho = |r|,

            [U diag(s), y] = [U, r / rho] [[diag(s), c], [0, rho]],

        which costs O(d m^2) instead of a full SVD of the d x ell sketch.
        """
        m = self._filled
        d = len(self._B)
        s = self._s
        U = self._B.rows[:, :m] / s if m else np.empty((d, 0))
        c = values @ U[rows]
        residual = -(U @ c)
        residual[rows] += values
        rho = float(np.linalg.norm(residual))
        # A non-finite sketch would make the eigen-decomposition fail.
        check_finite(self, event, projection=np.append(c, rho))
        if rho > _RESIDUAL_TOLERANCE:
            basis = np.hstack([U, (residual / rho)[:, None]])
            K = np.zeros((m + 1, m + 1))
            K[m, m] = rho
        else:
            # y lies in the span of U: no new direction.
            basis = U
            K = np.zeros((m, m + 1))
        K[np.arange(m), np.arange(m)] = s
        K[:m, m] = c
        # Eigen-decomposition of the small K K^T: its eigenvalues are the
        # squared singular values, which is what the shrink works on.
        eigenvalues, U_K = np.linalg.eigh(K @ K.T)
        squares = np.maximum(eigenvalues[::-1], 0.0)
        U_K = U_K[:, ::-1]
        if squares.size == self.sketch_size:
            # The sketch is full: the Frequent Directions shrink.
            squares = np.maximum(squares - squares[-1], 0.0)
            squares[-1] = 0.0
        keep = int(np.count_nonzero(squares > _RANK_TOLERANCE * max(float(squares[0]), 1e-300)))
        singular = np.sqrt(squares)
        return basis @ U_K[:, :keep], singular[:keep]

    def _compact_users(self, keep: np.ndarray) -> None:
        # Drop the evicted users' rows of B. The remaining columns are no
        # longer orthogonal: rotate them back with the eigenvectors of the
        # small m x m Gram matrix, which keeps B B^T.
        row_keep = np.ones(len(self._B), dtype=bool)
        row_keep[self._user_row.rows[~keep]] = False
        new_index = np.cumsum(row_keep) - 1
        B = self._B.rows[row_keep]
        m = self._filled
        if m:
            eigenvalues, vectors = np.linalg.eigh(B[:, :m].T @ B[:, :m])
            squares = np.maximum(eigenvalues[::-1], 0.0)
            vectors = vectors[:, ::-1]
            kept = int(np.count_nonzero(squares > _RANK_TOLERANCE * max(float(squares[0]), 1e-300)))
            B[:, :kept] = B[:, :m] @ vectors[:, :kept]
            B[:, kept:] = 0.0
            self._s = np.sqrt(squares[:kept])
            self._filled = kept
        self._B.load(B)
        self._user_row.load(new_index[self._user_row.rows[keep]])
        self._item_row.load(new_index[self._item_row.rows])
        self._basis = None

    def basis(self) -> np.ndarray:
        """Return U_r, the tracked orthonormal directions (d x r', r' <= n_factors non-zero ones)."""
        if self._basis is None:
            r = min(self._rank, self._filled)
            self._basis = self._B.rows[:, :r] / self._s[:r]
        return self._basis

    def _scores(self, u: int | None, context: Mapping[str, float] | None) -> np.ndarray:
        basis = self.basis()
        item_part = basis[self._item_row.rows]
        if u is None:
            return np.einsum("ij,ij->i", item_part, item_part)
        projection = (item_part + basis[int(self._user_row.rows[u])]) / np.sqrt(2.0)
        return np.einsum("ij,ij->i", projection, projection)

    def _state(self) -> dict[str, Any]:
        return {
            "sketch": self._B.rows.copy(),
            "user_rows": self._user_row.rows.copy(),
            "item_rows": self._item_row.rows.copy(),
            "singular_values": self._s.copy(),
        }

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self._B.load(np.asarray(state["sketch"], dtype=np.float64).reshape(-1, self.sketch_size))
        self._user_row.load(np.asarray(state["user_rows"], dtype=np.int64).reshape(-1))
        self._item_row.load(np.asarray(state["item_rows"], dtype=np.int64).reshape(-1))
        self._s = np.asarray(state["singular_values"], dtype=np.float64).reshape(-1)
        self._filled = self._s.size
        self._basis = None
