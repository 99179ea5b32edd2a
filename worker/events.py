"""The event schema: decoding and validating input records, encoding output records.

Input record: key = the user id (used only for partitioning); value = a msgpack
map with `user` and `item` (string or integer ids), `ts` (event time in seconds
since the Unix epoch, integer or float), optional `value` (float, default 1.0)
and optional `context` (map of string to float). Unknown fields are ignored.

Decoding is bounded: records over `max_bytes` are rejected before decoding, and
msgpack gets limits on the largest string, array and map it may build, so a header
announcing a huge container fails at once instead of allocating.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgpack
import numpy as np

from models import Event

# Event time bounds, in seconds since the Unix epoch: 0 up to 3000-01-01.
# Milliseconds since the epoch (about 1.7e12 today) fall above the bound.
MAX_TS = 32503680000.0
MAX_ID_LENGTH = 256
MAX_CONTEXT_FEATURES = 256
MAX_ID_INT = 2**63 - 1


# Every reason a record can be rejected for; metric labels take only these.
REJECT_REASONS = (
    "tombstone", "oversized", "undecodable", "not_a_map", "missing_field",
    "invalid_type", "non_finite", "out_of_range", "model_error",
)


class InvalidEvent(Exception):
    """A record that cannot be decoded or does not follow the event schema.

    `reason` is one of a small fixed set of words, used as a metric label.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int = 65536


def decode_event(value: bytes | None, limits: DecodeLimits = DecodeLimits()) -> Event:
    """Decode and validate one record value; raise InvalidEvent on any defect."""
    if value is None:
        raise InvalidEvent("tombstone", "the record has no value (a tombstone); expected a msgpack map")
    if len(value) > limits.max_bytes:
        raise InvalidEvent(
            "oversized",
            f"the record value is {len(value)} bytes, over the limit of {limits.max_bytes} "
            "(--max-event-bytes)",
        )
    try:
        fields = msgpack.unpackb(
            value,
            raw=False,
            strict_map_key=False,
            max_str_len=limits.max_bytes,
            max_bin_len=limits.max_bytes,
            max_array_len=MAX_CONTEXT_FEATURES,
            max_map_len=MAX_CONTEXT_FEATURES + 16,
            max_ext_len=0,
        )
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, UnicodeDecodeError) as exc:
        raise InvalidEvent("undecodable", f"the record value is not valid msgpack within limits: {type(exc).__name__}: {exc}") from exc
    if not isinstance(fields, dict):
        raise InvalidEvent("not_a_map", f"the record value is a msgpack {type(fields).__name__}, expected a map")
    return Event(
        user=_validate_id(fields, "user"),
        item=_validate_id(fields, "item"),
        ts=_validate_ts(fields),
        value=_validate_value(fields),
        context=_validate_context(fields),
    )


def _validate_id(fields: dict, name: str) -> int | str:
    if name not in fields:
        raise InvalidEvent("missing_field", f"the event has no {name!r} field")
    value = fields[name]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidEvent(
            "invalid_type", f"{name!r} is a {type(value).__name__}, expected a string or an integer id"
        )
    if isinstance(value, str) and not 0 < len(value) <= MAX_ID_LENGTH:
        raise InvalidEvent("out_of_range", f"{name!r} has {len(value)} characters; expected 1 to {MAX_ID_LENGTH}")
    if isinstance(value, int) and not -MAX_ID_INT <= value <= MAX_ID_INT:
        raise InvalidEvent("out_of_range", f"{name!r} = {value} does not fit in a signed 64-bit integer")
    return value


def _validate_number(fields: dict, name: str) -> float:
    value = fields[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidEvent("invalid_type", f"{name!r} is a {type(value).__name__}, expected a number")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidEvent("non_finite", f"{name!r} is {number}, expected a finite number")
    return number


def _validate_ts(fields: dict) -> float:
    if "ts" not in fields:
        raise InvalidEvent("missing_field", "the event has no 'ts' field (event time in seconds since the epoch)")
    ts = _validate_number(fields, "ts")
    if not 0 <= ts <= MAX_TS:
        hint = "; it looks like milliseconds, send seconds" if MAX_TS < ts <= MAX_TS * 1000 else ""
        raise InvalidEvent("out_of_range", f"'ts' = {ts} is outside 0 to {MAX_TS:.0f} seconds since the epoch{hint}")
    return ts


def _validate_value(fields: dict) -> float:
    if fields.get("value") is None:
        return 1.0
    return _validate_number(fields, "value")


def _validate_context(fields: dict) -> dict[str, float] | None:
    context = fields.get("context")
    if context is None:
        return None
    if not isinstance(context, dict):
        raise InvalidEvent("invalid_type", f"'context' is a {type(context).__name__}, expected a map of string to number")
    checked = {}
    for name, value in context.items():
        if not isinstance(name, str):
            raise InvalidEvent("invalid_type", f"'context' has a key of type {type(name).__name__}, expected a string")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidEvent("invalid_type", f"'context'[{name!r}] is a {type(value).__name__}, expected a number")
        if not math.isfinite(value):
            raise InvalidEvent("non_finite", f"'context'[{name!r}] is {value}, expected a finite number")
        checked[name] = float(value)
    return checked


def encode_event(event: Event) -> bytes:
    """Encode an event as an input record value."""
    fields = {"user": event.user, "item": event.item, "ts": event.ts}
    if event.value != 1.0:
        fields["value"] = event.value
    if event.context:
        fields["context"] = dict(event.context)
    return msgpack.packb(fields)


def encode_key(user: int | str) -> bytes:
    """Encode a user id as a record key: its decimal or string form in UTF-8."""
    return str(user).encode("utf-8")


def encode_recommendation(
    event: Event, items: list, scores: np.ndarray, model: str, topic: str, partition: int, offset: int
) -> bytes:
    """Encode the output record value for one processed event."""
    return msgpack.packb(
        {
            "user": event.user,
            "items": items,
            "scores": scores.tolist(),
            "model": model,
            "ts": event.ts,
            "topic": topic,
            "partition": partition,
            "offset": offset,
        }
    )
