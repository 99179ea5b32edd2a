"""Shared helpers for the model tests: streams, state encoding, poisoning, growth counting."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import msgpack
import numpy as np
import pytest

from models import MODELS, Recommender, make_model
from models.base import Event
from models.growable import GrowableArray

# Small attribute tables in the form models.datasets gives for MovieLens-100k.
USER_ATTRIBUTES = {
    "alice": {"age": 24.0, "gender=F": 1.0, "occupation=student": 1.0},
    10**9: {"age": 53.0, "gender=M": 1.0, "occupation=writer": 1.0},
    7: {"age": 33.0, "gender=F": 1.0, "occupation=other": 1.0},
}
ITEM_ATTRIBUTES = {
    "m1": {"release_year": 1995.0, "genre=Drama": 1.0},
    3: {"release_year": 1977.0, "genre=Sci-Fi": 1.0, "genre=Action": 1.0},
    42: {"genre=Comedy": 1.0},
    "m9": {"release_year": 1998.0, "genre=Drama": 1.0, "genre=Comedy": 1.0},
}

# Model configurations the contract suite covers beyond each registered
# model's defaults: label -> (registered name, constructor parameters).
EXTRA_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "popular-half-life": ("popular", {"half_life": 3600.0}),
    "ifm-attributes": ("ifm", {"user_attributes": USER_ATTRIBUTES, "item_attributes": ITEM_ATTRIBUTES}),
    "userknn-window": ("userknn", {"k": 2, "window": 3}),
    "itemknn-window": ("itemknn", {"k": 2, "window": 3}),
    "sketch-small": ("sketch", {"sketch_size": 4}),
    "bprmf-no-bias": ("bprmf", {"item_bias": False, "n_negatives": 1}),
}

CASES: dict[str, tuple[str, dict[str, Any]]] = {name: (name, {}) for name in MODELS} | EXTRA_CASES


@pytest.fixture(params=sorted(CASES))
def case(request) -> tuple[str, dict[str, Any]]:
    """One model configuration: (registered name, parameters)."""
    return CASES[request.param]


def build(case: tuple[str, dict[str, Any]], **overrides: Any) -> Recommender:
    name, params = case
    return make_model(name, **(params | overrides))


def mixed_stream(n: int = 120, seed: int = 1) -> list[Event]:
    """A stream with integer and string ids, sparse and out of order, repeats and contexts.

    Users and items overlap the attribute tables above, so that attributes are
    used, and some events carry a context.
    """
    rng = np.random.default_rng(seed)
    users: list[Any] = ["alice", 10**9, 7, "bob", -3, "7", 123456789012, "carol"]
    items: list[Any] = ["m1", 3, 42, "m9", 10**12, "x", -1, "3", 99, "zz", 5, "m2"]
    events = []
    for t in range(n):
        u = users[int(rng.integers(len(users)))]
        i = items[int(min(rng.geometric(0.25) - 1, len(items) - 1))]
        context = {"hour": float(rng.random()), "weekend": 1.0} if t % 5 == 0 else None
        events.append(Event(user=u, item=i, ts=1_000_000.0 + 60.0 * t, value=1.0, context=context))
    return events


def learn_all(model: Recommender, events: list[Event]) -> Recommender:
    for event in events:
        model.learn(event)
    return model


def register_item(model: Recommender, item: Any, user: Any = "registrar") -> int:
    """Register an item the way `Recommender.learn` does, without learning an event."""
    i = model.items.add(item)
    model._register_item(i, Event(user=user, item=item))
    return i


def register_user(model: Recommender, user: Any, item: Any = "registrar") -> int:
    """Register a user the way `Recommender.learn` does, without learning an event."""
    u = model.users.add(user)
    model._seen.append(set())
    model._register_user(u, Event(user=user, item=item))
    return u


# -- state encoding like the worker's state codec -------------------------------

_INT64 = 2**63


def to_msgpack(state: Any) -> bytes:
    """Encode a state with msgpack: arrays as tagged bytes, integers beyond 64 bits as tagged strings.

    Mapping keys must be strings (the worker's codec turns keys into strings,
    which would lose integer ids). Anything else that msgpack cannot hold
    raises.
    """

    def plain(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise TypeError("array of Python objects in the state")
            array = np.ascontiguousarray(value)
            return {"__ndarray__": array.tobytes(), "dtype": array.dtype.str, "shape": list(array.shape)}
        if isinstance(value, Mapping):
            for key in value:
                if not isinstance(key, str):
                    raise TypeError(f"mapping key {key!r} is not a string")
            return {key: plain(v) for key, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
            return value
        if isinstance(value, int):
            return value if -_INT64 <= value < _INT64 else {"__bigint__": str(value)}
        raise TypeError(f"value of type {type(value).__name__} in the state")

    return msgpack.packb(plain(state))


def from_msgpack(data: bytes) -> Any:
    def restore(value: Any) -> Any:
        if isinstance(value, dict):
            if "__ndarray__" in value:
                return np.frombuffer(value["__ndarray__"], dtype=np.dtype(value["dtype"])).reshape(value["shape"]).copy()
            if set(value) == {"__bigint__"}:
                return int(value["__bigint__"])
            return {key: restore(v) for key, v in value.items()}
        if isinstance(value, list):
            return [restore(v) for v in value]
        return value

    return restore(msgpack.unpackb(data))


def walk_state(value: Any, path: str = "state") -> Iterator[tuple[str, Any]]:
    """Yield (path, leaf) for every leaf of a nested state."""
    if isinstance(value, Mapping):
        for key, v in value.items():
            yield from walk_state(v, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for n, v in enumerate(value):
            yield from walk_state(v, f"{path}[{n}]")
    else:
        yield path, value


def assert_states_equal(a: Any, b: Any, path: str = "state") -> None:
    """Assert two states are equal, arrays element-wise (NaN equal to NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a_array, b_array = np.asarray(a), np.asarray(b)
        assert a_array.shape == b_array.shape, f"{path}: shape {a_array.shape} != {b_array.shape}"
        if a_array.dtype.kind in "fc":
            assert np.array_equal(a_array, b_array, equal_nan=True), f"{path} differs"
        else:
            assert np.array_equal(a_array, b_array), f"{path} differs"
    elif isinstance(a, Mapping):
        assert isinstance(b, Mapping) and set(a) == set(b), f"{path}: keys {sorted(map(str, a))} != {sorted(map(str, b))}"
        for key in a:
            assert_states_equal(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path}: {a!r} != {b!r}"
        for n, (x, y) in enumerate(zip(a, b)):
            assert_states_equal(x, y, f"{path}[{n}]")
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


# -- parameters ---------------------------------------------------------------


class _Bare(Recommender):
    name = "bare"

    def _update(self, u, i, event):
        pass

    def _scores(self, u, context):
        return np.zeros(len(self.items))

    def _state(self):
        return {"none": None}

    def _load_state(self, state):
        pass


# Attributes every Recommender has (bookkeeping of the base class, such as the
# users' latest event times), which are not learned parameters.
BASE_ATTRIBUTES = frozenset(vars(_Bare()))


def float_arrays(model: Recommender) -> dict[str, GrowableArray]:
    """The model's float GrowableArrays (its learned parameters), by attribute name."""
    return {
        name: value
        for name, value in vars(model).items()
        if name not in BASE_ATTRIBUTES
        and isinstance(value, GrowableArray)
        and value.rows.dtype.kind == "f"
        and value.rows.size
    }


def poison(model: Recommender, value: float = np.nan) -> list[str]:
    """Set every float parameter array of `model` to `value`; return their names."""
    arrays = float_arrays(model)
    for array in arrays.values():
        array.rows[...] = value
    return sorted(arrays)


class GrowthCounter:
    """Count the reallocations of every GrowableArray while active."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: dict[int, int] = {}
        original = GrowableArray._grow
        counter = self

        def counting_grow(array: GrowableArray, min_capacity: int) -> None:
            counter.calls[id(array)] = counter.calls.get(id(array), 0) + 1
            original(array, min_capacity)

        monkeypatch.setattr(GrowableArray, "_grow", counting_grow)


@pytest.fixture
def growth_counter(monkeypatch: pytest.MonkeyPatch) -> GrowthCounter:
    return GrowthCounter(monkeypatch)
