"""Malformed input records, each with the rejection reason the worker must give."""

from __future__ import annotations

import msgpack


def _event(**fields) -> bytes:
    base = {"user": 1, "item": 2, "ts": 100}
    base.update(fields)
    return msgpack.packb({k: v for k, v in base.items() if v is not ...})


BAD_RECORDS: list[tuple[str, bytes | None, str]] = [
    ("undecodable bytes", b"\xc1\xc1\xc1", "undecodable"),
    ("truncated msgpack", msgpack.packb({"user": 1, "item": 2, "ts": 100})[:-3], "undecodable"),
    ("tombstone", None, "tombstone"),
    ("list value", msgpack.packb([1, 2, 100]), "not_a_map"),
    ("integer value", msgpack.packb(7), "not_a_map"),
    ("missing user", _event(user=...), "missing_field"),
    ("missing item", _event(item=...), "missing_field"),
    ("missing ts", _event(ts=...), "missing_field"),
    ("list as item", _event(item=[1, 2]), "invalid_type"),
    ("float user id", _event(user=1.5), "invalid_type"),
    ("boolean user id", _event(user=True), "invalid_type"),
    ("map as user id", _event(user={"a": 1}), "invalid_type"),
    ("empty string id", _event(item=""), "out_of_range"),
    ("overlong string id", _event(item="x" * 300), "out_of_range"),
    ("string ts", _event(ts="yesterday"), "invalid_type"),
    ("NaN ts", _event(ts=float("nan")), "non_finite"),
    ("infinite value", _event(value=float("inf")), "non_finite"),
    ("string value", _event(value="high"), "invalid_type"),
    ("ts in milliseconds", _event(ts=1_700_000_000_000), "out_of_range"),
    ("negative ts", _event(ts=-5), "out_of_range"),
    ("context not a map", _event(context=[1.0]), "invalid_type"),
    ("context NaN", _event(context={"hour": float("nan")}), "non_finite"),
    ("context integer key", _event(context={1: 1.0}), "invalid_type"),
    ("context string value", _event(context={"hour": "noon"}), "invalid_type"),
    ("oversized record", _event(pad="x" * 70000), "oversized"),
    # An array header announcing 2^32 - 1 entries, with none following.
    ("huge array header", b"\x83\xa4user\x01\xa4item\xdd\xff\xff\xff\xff", "undecodable"),
    ("huge map header", b"\xdf\xff\xff\xff\xff", "undecodable"),
    ("huge string header", b"\x83\xa4user\xdb\xff\xff\xff\xff", "undecodable"),
]
