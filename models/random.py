"""Seeded random baseline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from models.base import Event, Recommender

_KEY_BOUND = 2**63


class RandomRecommender(Recommender):
    """Score every item with a uniform random number in [0, 1).

    The model owns a generator seeded with `seed`. Every learned event draws a
    fresh 63-bit key from it; the scores for user index u are then the next
    `n_items` draws of a generator seeded with (key, u + 1). So the scores

    - are the same for repeated calls between two events (recommend and rank
      agree),
    - differ between users and change after every event, and
    - depend only on the seed and the sequence of learned events, not on how
      often scores were asked for.

    A user never seen before gets the draws of the generator seeded with
    (key, 0), the same for every unknown user until the next event. Items are
    scored as soon as they are registered; the scores of the older items do not
    change when a new item arrives before the next event.

    Parameters
    ----------
    seed
        Seed of the model's random generator.
    """

    name = "random"

    def __init__(self, *, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self._rng = np.random.default_rng(seed)
        self._key = int(self._rng.integers(_KEY_BOUND))

    def params(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def _update(self, u: int, i: int, event: Event) -> None:
        self._key = int(self._rng.integers(_KEY_BOUND))

    def _compact_users(self, keep: np.ndarray) -> None:
        """Nothing to do: the model keeps no per-user parameters."""

    def _scores(self, u: int | None, context: Mapping[str, float] | None) -> np.ndarray:
        stream = 0 if u is None else u + 1
        return np.random.default_rng([self._key, stream]).random(len(self.items))

    def _state(self) -> dict[str, Any]:
        return {"key": self._key, "rng": self._rng.bit_generator.state}

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self._key = int(state["key"])
        self._rng.bit_generator.state = dict(state["rng"])
