"""Mapping of external user and item ids to dense row indices."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

Id = int | str


class IdIndex:
    """Assign dense indices 0, 1, 2, ... to external ids in order of first sight.

    Ids may be integers or strings, sparse and in any order. The integer 7 and
    the string "7" are different ids.
    """

    def __init__(self) -> None:
        self._index: dict[Hashable, int] = {}
        self._ids: list[Id] = []

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._index

    def get(self, external_id: Id) -> int | None:
        """Return the index of `external_id`, or None if it was never added."""
        return self._index.get(external_id)

    def add(self, external_id: Id) -> int:
        """Return the index of `external_id`, adding it if it is new."""
        index = self._index.get(external_id)
        if index is None:
            index = len(self._ids)
            self._index[external_id] = index
            self._ids.append(external_id)
        return index

    def id_of(self, index: int) -> Id:
        return self._ids[index]

    def ids_of(self, indices: np.ndarray) -> list[Id]:
        ids = self._ids
        return [ids[i] for i in indices.tolist()]

    def state_dict(self) -> dict:
        """Return the ids in index order, split by type so msgpack keeps them apart."""
        return {"ids": list(self._ids)}

    def load_state_dict(self, state: dict) -> None:
        self._ids = list(state["ids"])
        self._index = {external_id: i for i, external_id in enumerate(self._ids)}
