"""Arrays whose first axis grows in amortised blocks as new ids arrive."""

from __future__ import annotations

import numpy as np


class GrowableArray:
    """A 1-d or 2-d float array whose row count grows by doubling.

    `rows` is a view of the first `len(self)` rows. Growing copies the buffer
    only when its capacity is exhausted, so adding n rows costs O(n) in total
    rather than O(n^2) as copying the whole matrix per new row would.
    """

    def __init__(self, shape_tail: tuple[int, ...] = (), dtype=np.float64, capacity: int = 64) -> None:
        self._buffer = np.zeros((capacity, *shape_tail), dtype=dtype)
        self._size = 0
        # A view of the first `len(self)` rows, refreshed on every size change
        # (an attribute rather than a property: models read it per event).
        self.rows = self._buffer[:0]

    def __len__(self) -> int:
        return self._size

    @property
    def capacity(self) -> int:
        return self._buffer.shape[0]

    def append(self, row) -> int:
        """Append one row and return its index."""
        if self._size == self._buffer.shape[0]:
            self._grow(self._size + 1)
        self._buffer[self._size] = row
        self._size += 1
        self.rows = self._buffer[: self._size]
        return self._size - 1

    def resize(self, size: int) -> None:
        """Grow to `size` rows; new rows are zero."""
        if size > self._buffer.shape[0]:
            self._grow(size)
        self._size = max(self._size, size)
        self.rows = self._buffer[: self._size]

    def _grow(self, min_capacity: int) -> None:
        capacity = max(min_capacity, 2 * self._buffer.shape[0])
        buffer = np.zeros((capacity, *self._buffer.shape[1:]), dtype=self._buffer.dtype)
        buffer[: self._size] = self._buffer[: self._size]
        self._buffer = buffer

    def load(self, rows: np.ndarray) -> None:
        """Replace the content with `rows`."""
        rows = np.asarray(rows, dtype=self._buffer.dtype)
        capacity = max(64, rows.shape[0])
        self._buffer = np.zeros((capacity, *rows.shape[1:]), dtype=self._buffer.dtype)
        self._buffer[: rows.shape[0]] = rows
        self._size = rows.shape[0]
        self.rows = self._buffer[: self._size]
