"""`streamrec produce` against a real broker."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.kafka_helpers import ROOT, KafkaTestKit

pytestmark = pytest.mark.kafka


def test_produce_file_in_timestamp_order(kafka: KafkaTestKit, tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\nb,m2,5,30\na,m1,2,10\nc,m3,4,10\na,m3,5,20\n")
    topic = kafka.topic("in")
    result = subprocess.run(
        [sys.executable, "-m", "worker.cli", "produce", str(path), "--bootstrap-servers", kafka.bootstrap_servers,
         "--input-topic", topic, "--partitions", "1", "--min-rating", "4", "--no-progress"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "produced 3 of 3 events" in result.stdout

    records = kafka.consume_all(topic, expected=3)
    events = [r.decoded() for r in sorted(records, key=lambda r: r.offset)]
    # Ties at ts 10 keep file order; the rating-2 event is filtered out.
    assert [(e["user"], e["item"], e["ts"]) for e in events] == [("c", "m3", 10.0), ("a", "m3", 20.0),
                                                                  ("b", "m2", 30.0)]
    assert [e["value"] for e in events] == [4.0, 5.0, 5.0]
    assert [r.key for r in sorted(records, key=lambda r: r.offset)] == [b"c", b"a", b"b"]


def test_produce_missing_file_fails_clearly(kafka: KafkaTestKit, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "worker.cli", "produce", str(tmp_path / "absent.csv"),
         "--bootstrap-servers", kafka.bootstrap_servers, "--input-topic", kafka.topic("in")],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert result.returncode == 1
    assert "cannot read interactions file" in result.stderr
    assert "Traceback" not in result.stderr
