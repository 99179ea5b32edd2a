"""Popularity baseline with optional exponential time decay."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from models.base import Event, Recommender, check_finite
from models.growable import GrowableArray

# Rescale the stored weights once an event's weight would exceed 2^this (about
# 1e100), so they stay far from float64's overflow at about 1.8e308.
_RESCALE_EXPONENT = 332.0


class Popular(Recommender):
    """Score every item by its number of interactions, the same for all users.

    Parameters
    ----------
    half_life
        Event-time span in seconds after which an interaction counts half. None
        (the default) counts every interaction fully, forever.
    seed
        Unused; kept for the common constructor.

    With a half-life, an event at time t adds 2^((t - t0) / half_life) to its
    item, for a fixed reference t0. Every item's score shares the factor
    2^(-(now - t0) / half_life), so ranking by the stored sums equals ranking by
    the decayed counts without touching every item per event. A user never
    seen before gets the same scores as everyone.
    """

    name = "popular"

    def __init__(self, *, half_life: float | None = None, seed: int = 0) -> None:
        super().__init__(seed=seed)
        if half_life is not None and not half_life > 0:
            raise ValueError(f"half_life must be a positive number of seconds or None, got {half_life!r}")
        self.half_life = half_life
        self._counts = GrowableArray()
        self._t0: float | None = None

    def params(self) -> dict[str, Any]:
        return {"half_life": self.half_life, "seed": self.seed}

    def _register_item(self, i: int, event: Event) -> None:
        self._counts.resize(i + 1)

    def _update(self, u: int, i: int, event: Event) -> None:
        weight, rescale, t0 = self._weight(event.ts)
        count = float(self._counts.rows[i]) * rescale + weight
        check_finite(self, event, count=np.array([count]))
        if rescale != 1.0:
            self._counts.rows[:] *= rescale
        self._counts.rows[i] = count
        self._t0 = t0

    def _weight(self, ts: float) -> tuple[float, float, float | None]:
        """Return the event's weight, the factor to rescale the stored sums by, and the new reference time."""
        if self.half_life is None:
            return 1.0, 1.0, self._t0
        t0 = ts if self._t0 is None else self._t0
        exponent = (ts - t0) / self.half_life
        if exponent > _RESCALE_EXPONENT:
            # Move the reference to this event: all stored sums shrink by the
            # same factor (to 0 when the jump is huge), so the ranking is
            # unchanged. exp2(exponent) itself could overflow.
            return 1.0, math.exp2(-exponent), ts
        return math.exp2(exponent), 1.0, t0

    def _compact_users(self, keep: np.ndarray) -> None:
        """Nothing to do: the counts are per item, not per user."""

    def _scores(self, u: int | None, context: Mapping[str, float] | None) -> np.ndarray:
        return self._counts.rows

    def _state(self) -> dict[str, Any]:
        return {"counts": self._counts.rows.copy(), "t0": self._t0}

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self._counts.load(np.asarray(state["counts"], dtype=np.float64))
        self._t0 = state["t0"]
