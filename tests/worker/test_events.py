"""Decoding and validation of input records."""

from __future__ import annotations

import msgpack
import pytest

from models import Event
from tests.worker.bad_records import BAD_RECORDS
from worker.events import REJECT_REASONS, InvalidEvent, decode_event, encode_event


@pytest.mark.parametrize("value, reason", [(v, r) for _, v, r in BAD_RECORDS],
                         ids=[name for name, _, _ in BAD_RECORDS])
def test_bad_record_is_rejected_with_reason(value, reason):
    with pytest.raises(InvalidEvent) as raised:
        decode_event(value)
    assert raised.value.reason == reason
    assert raised.value.reason in REJECT_REASONS
    assert str(raised.value)


def test_valid_event_decodes_all_fields():
    value = msgpack.packb({"user": "u1", "item": 42, "ts": 1.5, "value": 4, "context": {"hour": 3},
                           "unknown": [1, 2]})
    assert decode_event(value) == Event("u1", 42, 1.5, 4.0, {"hour": 3.0})


def test_defaults_for_optional_fields():
    event = decode_event(msgpack.packb({"user": 1, "item": 2, "ts": 0}))
    assert event.value == 1.0
    assert event.context is None


def test_encode_round_trips():
    event = Event("a", 7, 123.25, 2.5, {"x": 1.0})
    assert decode_event(encode_event(event)) == event


def test_milliseconds_hint_in_message():
    with pytest.raises(InvalidEvent, match="milliseconds"):
        decode_event(msgpack.packb({"user": 1, "item": 2, "ts": 1_700_000_000_000}))
