"""Popularity baseline with optional exponential time decay."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from models.base import Event, Recommender
from models.growable import GrowableArray

# Rescale the stored weights once an event's weight exceeds this, so they stay
# far from float64's overflow at about 1.8e308.
_RESCALE_ABOVE = 1e100


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
        self._counts.rows[i] += self._weight(event.ts)

    def _weight(self, ts: float) -> float:
        if self.half_life is None:
            return 1.0
        if self._t0 is None:
            self._t0 = ts
        weight = math.exp2((ts - self._t0) / self.half_life)
        if weight > _RESCALE_ABOVE:
            # Move the reference to this event: all stored sums shrink by the
            # same factor, so the ranking is unchanged.
            self._counts.rows[:] /= weight
            self._t0 = ts
            weight = 1.0
        return weight

    def _scores(self, u: int | None, context: Mapping[str, float] | None) -> np.ndarray:
        return self._counts.rows

    def _state(self) -> dict[str, Any]:
        return {"counts": self._counts.rows.copy(), "t0": self._t0}

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self._counts.load(np.asarray(state["counts"], dtype=np.float64))
        self._t0 = state["t0"]
