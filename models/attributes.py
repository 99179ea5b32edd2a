"""Side attributes of users or items, as scaled feature vectors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from models.ids import Id

Attributes = Mapping[Id, Mapping[str, float]] | Iterable[tuple[Id, Mapping[str, float]]]


class _AttributeTable:
    """The attributes of one side (users or items), scaled to about [0, 1].

    A feature whose given values are all 0 or 1 (an indicator such as
    `genre=Drama` or `gender=F`) is kept as is. Any other feature (a number
    such as `age` or `release_year`) is min-max scaled with the smallest and
    largest value given for it: (value - min) / (max - min), so the given
    values fall in [0, 1]; a feature with a single distinct value becomes 1.
    A missing feature is 0.
    """

    def __init__(self, attributes: Attributes | None) -> None:
        pairs = attributes.items() if isinstance(attributes, Mapping) else (attributes or ())
        self.by_id: dict[Id, dict[str, float]] = {
            entity: {str(name): float(value) for name, value in features.items()} for entity, features in pairs
        }
        values: dict[str, list[float]] = {}
        for features in self.by_id.values():
            for name, value in features.items():
                values.setdefault(name, []).append(value)
        self.names = sorted(values)
        self.position = {name: n for n, name in enumerate(self.names)}
        self.low = np.zeros(len(self.names))
        self.span = np.ones(len(self.names))
        for n, name in enumerate(self.names):
            column = np.asarray(values[name])
            if not np.all((column == 0.0) | (column == 1.0)):
                low, high = float(column.min()), float(column.max())
                self.low[n] = low if high > low else low - 1.0
                self.span[n] = high - low if high > low else 1.0

    def __len__(self) -> int:
        return len(self.names)

    def vector(self, entity: Id) -> np.ndarray:
        """Return the scaled attribute vector of `entity` (zeros when it has none)."""
        vector = np.zeros(len(self.names))
        for name, value in self.by_id.get(entity, {}).items():
            n = self.position[name]
            vector[n] = (value - self.low[n]) / self.span[n]
        return vector

    def as_param(self) -> list[list] | None:
        """Return the attributes as [id, {name: value}] pairs, which msgpack keeps without mapping ids to keys."""
        if not self.by_id:
            return None
        return [[entity, dict(features)] for entity, features in self.by_id.items()]
