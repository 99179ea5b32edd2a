"""Splitting shard state into records and joining it back."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from models import Event, make_model
from worker.state_codec import StateFormatError, decode_state, encode_state, meta_key


def _records(encoded, partition):
    records = dict(encoded.blocks)
    records[meta_key(partition)] = encoded.meta
    return records


@pytest.mark.parametrize("array", [np.zeros((0, 4)), np.zeros(0), np.array(3.0), np.arange(10),
                                   np.arange(12.0).reshape(3, 4).T, np.ones((1000, 33), dtype=np.float32)])
def test_arrays_round_trip(array):
    encoded = encode_state(2, {"x": array}, next_offset=7, block_bytes=1024)
    state, next_offset, mismatched = decode_state(2, _records(encoded, 2))
    assert next_offset == 7
    assert mismatched == []
    assert state["x"].dtype == array.dtype
    assert state["x"].shape == array.shape
    np.testing.assert_array_equal(state["x"], array)


def test_blocks_stay_under_limit():
    encoded = encode_state(0, {"x": np.ones((5000, 32))}, 0, block_bytes=65536)
    assert max(len(v) for v in encoded.blocks.values()) <= 65536
    assert len(encoded.blocks) > 1


def test_model_state_round_trips_with_big_integers():
    model = make_model("imf", seed=3)
    for k in range(2000):
        model.learn(Event(f"u{k % 600}", k % 50, float(k)))
    encoded = encode_state(1, {"model": model.state_dict()}, 2000, block_bytes=4096)
    meta = msgpack.unpackb(encoded.meta, raw=False, strict_map_key=False)
    assert meta["plain"]["model.model_state.rng.state.state"]["__bigint__"].isdigit()
    state, _, _ = decode_state(1, _records(encoded, 1))
    copy = make_model("imf", seed=3)
    copy.load_state_dict(state["model"])
    copy.learn(Event("u1", 7, 3000.0))
    model.learn(Event("u1", 7, 3000.0))
    np.testing.assert_array_equal(copy.scores("u1"), model.scores("u1"))


def test_missing_block_is_an_error():
    encoded = encode_state(0, {"x": np.ones((100, 10))}, 0, block_bytes=800)
    records = _records(encoded, 0)
    del records[next(iter(encoded.blocks))]
    with pytest.raises(StateFormatError, match="missing"):
        decode_state(0, records)


def test_changed_block_is_reported():
    encoded = encode_state(0, {"x": np.ones((100, 10))}, 0, block_bytes=800)
    newer = encode_state(0, {"x": np.full((100, 10), 2.0)}, 0, block_bytes=800)
    records = _records(encoded, 0)
    first = next(iter(newer.blocks))
    records[first] = newer.blocks[first]
    _, _, mismatched = decode_state(0, records)
    assert mismatched == [first]


def test_reserved_characters_in_keys_rejected():
    with pytest.raises(StateFormatError):
        encode_state(0, {"a.b": 1}, 0)
