"""Split a model's state into keyed records that fit the broker's size limit, and join them back.

A shard's state (the model's `state_dict()` plus the shard's own counters) is a
nested map of numpy arrays, lists and plain values. `encode_state` turns it
into records keyed by a path:

- `<partition>/meta`: the plain values, the layout of every array and list,
  the digest of every block, and the next input offset;
- `<partition>/a/<path>/<block>`: up to `block_bytes` of an array's rows;
- `<partition>/l/<path>/<block>`: a slice of a list (for example ids).

A checkpoint writes only the blocks whose digest changed since the last one.
Because every key is overwritten in place, a compacted topic keeps one record
per key, so restoring reads about one model's worth of data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

FORMAT_VERSION = 1
_BIGINT = "__bigint__"
_LIST_CHUNK = 512
_INT64 = 2**63


class StateFormatError(Exception):
    """Records in the state topic do not form a valid state."""


@dataclass
class EncodedState:
    """The records for one state: key to value bytes, and the meta record's bytes."""

    blocks: dict[str, bytes]
    digests: dict[str, bytes]
    meta: bytes


def _to_plain(value: Any) -> Any:
    # msgpack stores integers of at most 64 bits; numpy's RNG state holds
    # 128-bit integers, so those travel as tagged strings.
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, (int, np.integer)):
        value = int(value)
        return value if -_INT64 <= value < _INT64 else {_BIGINT: str(value)}
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    raise StateFormatError(f"cannot store a value of type {type(value).__name__} in the state topic")


def _from_plain(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and _BIGINT in value:
            return int(value[_BIGINT])
        return {k: _from_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_plain(v) for v in value]
    return value


def _walk(state: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, value in state.items():
        if "/" in str(name) or "." in str(name):
            raise StateFormatError(f"state key {name!r} contains '/' or '.', which separate paths")
        path = f"{prefix}{name}"
        if isinstance(value, Mapping) and not (len(value) == 1 and _BIGINT in value):
            yield from _walk(value, path + ".")
        else:
            yield path, value


def block_digest(data: bytes) -> bytes:
    """Return the 16-byte BLAKE2b digest that detects a changed block."""
    return hashlib.blake2b(data, digest_size=16).digest()


def encode_state(
    partition: int, state: Mapping[str, Any], next_offset: int, block_bytes: int = 262144
) -> EncodedState:
    """Encode `state` as block records and a meta record for `partition`."""
    blocks: dict[str, bytes] = {}
    layout: dict[str, Any] = {}
    plain: dict[str, Any] = {}
    for path, value in _walk(state):
        if isinstance(value, np.ndarray):
            layout[path] = _encode_array(partition, path, value, block_bytes, blocks)
        elif isinstance(value, list) and len(value) > _LIST_CHUNK:
            layout[path] = _encode_list(partition, path, value, blocks)
        else:
            plain[path] = _to_plain(value)
    digests = {key: block_digest(data) for key, data in blocks.items()}
    meta = msgpack.packb(
        {
            "version": FORMAT_VERSION,
            "next_offset": next_offset,
            "layout": layout,
            "plain": plain,
            "digests": digests,
        }
    )
    return EncodedState(blocks, digests, meta)


def _encode_array(partition: int, path: str, array: np.ndarray, block_bytes: int, blocks: dict) -> dict:
    array = array if array.flags.c_contiguous else array.copy(order="C")
    if array.dtype.hasobject:
        raise StateFormatError(f"array {path!r} has dtype object; store ids as a list instead")
    rows = array.shape[0] if array.ndim else 1
    row_size = int(np.prod(array.shape[1:], dtype=np.int64))
    block_rows = max(1, block_bytes // max(1, array.itemsize * row_size))
    flat = array.reshape(rows, row_size)
    n_blocks = max(1, -(-rows // block_rows))
    for block in range(n_blocks):
        chunk = flat[block * block_rows : (block + 1) * block_rows]
        blocks[f"{partition}/a/{path}/{block}"] = chunk.tobytes()
    return {"kind": "array", "dtype": array.dtype.str, "shape": list(array.shape), "block_rows": block_rows,
            "blocks": n_blocks}


def _encode_list(partition: int, path: str, values: list, blocks: dict) -> dict:
    n_blocks = -(-len(values) // _LIST_CHUNK)
    for block in range(n_blocks):
        chunk = _to_plain(values[block * _LIST_CHUNK : (block + 1) * _LIST_CHUNK])
        blocks[f"{partition}/l/{path}/{block}"] = msgpack.packb(chunk)
    return {"kind": "list", "length": len(values), "blocks": n_blocks}


def meta_key(partition: int) -> str:
    return f"{partition}/meta"


def decode_state(partition: int, records: Mapping[str, bytes]) -> tuple[dict[str, Any], int, list[str]]:
    """Rebuild the nested state from the latest record per key.

    Returns the state, the next input offset, and the keys of blocks whose
    digest differs from the meta record's (possible only after a checkpoint
    that was not written atomically). Raises StateFormatError when the meta
    record or a block it names is missing or malformed.
    """
    raw_meta = records.get(meta_key(partition))
    if raw_meta is None:
        raise StateFormatError(f"partition {partition}: no meta record in the state topic")
    meta = msgpack.unpackb(raw_meta, raw=False, strict_map_key=False)
    if meta.get("version") != FORMAT_VERSION:
        raise StateFormatError(
            f"partition {partition}: state format version {meta.get('version')!r}, expected {FORMAT_VERSION}"
        )
    flat: dict[str, Any] = {path: _from_plain(value) for path, value in meta["plain"].items()}
    mismatched = []
    for path, layout in meta["layout"].items():
        keys = [f"{partition}/{'a' if layout['kind'] == 'array' else 'l'}/{path}/{b}" for b in range(layout["blocks"])]
        for key in keys:
            if key not in records:
                raise StateFormatError(f"partition {partition}: block {key!r} named by the meta record is missing")
            if block_digest(records[key]) != meta["digests"].get(key):
                mismatched.append(key)
        if layout["kind"] == "array":
            data = b"".join(records[key] for key in keys)
            flat[path] = np.frombuffer(data, dtype=np.dtype(layout["dtype"])).reshape(tuple(layout["shape"])).copy()
        else:
            values: list = []
            for key in keys:
                values.extend(_from_plain(msgpack.unpackb(records[key], raw=False, strict_map_key=False)))
            flat[path] = values[: layout["length"]]
    return _unflatten(flat), int(meta["next_offset"]), mismatched


def _unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for path, value in flat.items():
        node = state
        *parents, leaf = path.split(".")
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value
    return state
