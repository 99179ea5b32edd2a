"""Crash, rebalance and shutdown tests of the exactly-once worker, against a real broker."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest

from tests.kafka_helpers import KafkaTestKit, Record, wait_for
from tests.worker.test_pipeline import make_events
from worker.state_store import StateStore

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 3
N_EVENTS = 6000
# Small batches and frequent checkpoints give many points at which a kill can
# land, and keep a run long enough for the kills and signals to land mid-run.
SLOW = ["--batch-size", "5", "--checkpoint-interval-ms", "50", "--transaction-timeout-ms", "6000"]


def _outputs_by_origin(records: list[Record]) -> dict[tuple[int, int], dict]:
    by_origin: dict[tuple[int, int], dict] = {}
    for record in records:
        value = record.decoded()
        origin = (value["partition"], value["offset"])
        assert origin not in by_origin, f"input event {origin} has two committed outputs"
        by_origin[origin] = value
    return by_origin


def _reference_run(kafka: KafkaTestKit, source: str) -> tuple[dict, dict]:
    """Process `source` once without interruption; return outputs by origin and the final state."""
    sink = kafka.topic("reference-out")
    group = kafka.group + "-reference"
    args = kafka.worker_args(source, sink, "--exit-at-end", "--group-id", group, instance="ref")
    result = kafka.run_worker(args)
    assert result.returncode == 0, result.stderr
    outputs = _outputs_by_origin(kafka.consume_all(sink, expected=N_EVENTS))
    assert len(outputs) == N_EVENTS
    return outputs, _final_state(kafka, f"{group}.state")


def _final_state(kafka: KafkaTestKit, state_topic: str) -> dict[int, tuple[dict, int]]:
    store = StateStore(kafka.bootstrap_servers, state_topic, timeout=60)
    return {p: store.restore(p) for p in range(PARTITIONS)}


def _assert_same_state(actual: dict, expected: dict) -> None:
    for partition in range(PARTITIONS):
        (state, next_offset), (reference, reference_offset) = actual[partition], expected[partition]
        assert next_offset == reference_offset
        assert state["model"]["users"] == reference["model"]["users"]
        assert state["model"]["items"] == reference["model"]["items"]
        for name, array in reference["model"]["model_state"].items():
            if isinstance(array, np.ndarray):
                np.testing.assert_array_equal(state["model"]["model_state"][name], array, err_msg=name)
        np.testing.assert_array_equal(state["model"]["seen_indices"], reference["model"]["seen_indices"])


def _assert_same_outputs(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for origin, value in expected.items():
        assert actual[origin]["items"] == value["items"], origin
        assert actual[origin]["scores"] == value["scores"], origin


def _committed_total(kafka: KafkaTestKit, source: str, group: str) -> int:
    return sum(max(0, offset) for offset in kafka.committed_offsets(source, group).values())


@pytest.fixture
def stream(kafka: KafkaTestKit) -> str:
    source = kafka.topic("in")
    kafka.create_topic(source, PARTITIONS)
    kafka.produce_events(source, make_events(N_EVENTS, n_users=40, n_items=200))
    return source


def test_sigkill_restarts_match_uninterrupted_run(kafka: KafkaTestKit, stream: str):
    reference_outputs, reference_state = _reference_run(kafka, stream)
    sink = kafka.topic("out")
    kill_points = [N_EVENTS // 8, 2 * N_EVENTS // 8, 3 * N_EVENTS // 8, 4 * N_EVENTS // 8]
    killed_at = []
    for point in kill_points:
        process, log = kafka.start_worker(kafka.worker_args(stream, sink, *SLOW))
        try:
            wait_for(lambda: _committed_total(kafka, stream, kafka.group) >= point or process.poll() is not None,
                     120, message=f"{point} committed events")
            assert process.poll() is None, log.read_text()
        finally:
            process.kill()
            process.wait(30)
        killed_at.append(_committed_total(kafka, stream, kafka.group))
    assert killed_at[-1] < N_EVENTS, "the run ended before the last kill; the kills tested nothing"

    result = kafka.run_worker(kafka.worker_args(stream, sink, "--exit-at-end", *SLOW))
    assert result.returncode == 0, result.stderr

    outputs = _outputs_by_origin(kafka.consume_all(sink, expected=N_EVENTS))
    _assert_same_outputs(outputs, reference_outputs)
    _assert_same_state(_final_state(kafka, f"{kafka.group}.state"), reference_state)


def test_survivor_and_newcomer_take_over_shards(kafka: KafkaTestKit, stream: str):
    reference_outputs, reference_state = _reference_run(kafka, stream)
    sink = kafka.topic("out")
    first, first_log = kafka.start_worker(kafka.worker_args(stream, sink, *SLOW, instance="a"))
    second, second_log = kafka.start_worker(kafka.worker_args(stream, sink, *SLOW, instance="b"))
    third = None
    try:
        wait_for(lambda: _committed_total(kafka, stream, kafka.group) >= N_EVENTS // 4, 120,
                 message="a quarter of the events committed", workers=((first, first_log), (second, second_log)))
        wait_for(lambda: "assigned partitions [" in second_log.read_text()
                 and "assigned partitions [" in first_log.read_text(), 60, message="both workers assigned")
        second.kill()
        second.wait(30)
        wait_for(lambda: first_log.read_text().count("assigned partitions [0, 1, 2]") >= 1, 90,
                 message="the survivor owning all partitions")
        third, third_log = kafka.start_worker(kafka.worker_args(stream, sink, *SLOW, instance="c"))
        wait_for(lambda: "restored state of partition" in third_log.read_text(), 90,
                 message="the newcomer restoring a shard")
        wait_for(lambda: _committed_total(kafka, stream, kafka.group) >= N_EVENTS, 180,
                 message="every event committed")
    finally:
        for process in (first, second, third):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (first, third):
            if process is not None:
                process.wait(60)

    assert "restored state of partition" in first_log.read_text()
    outputs = _outputs_by_origin(kafka.consume_all(sink, expected=N_EVENTS))
    _assert_same_outputs(outputs, reference_outputs)
    _assert_same_state(_final_state(kafka, f"{kafka.group}.state"), reference_state)


def test_sigterm_exits_in_bound_with_work_committed(kafka: KafkaTestKit, stream: str):
    sink = kafka.topic("out")
    process, log = kafka.start_worker(kafka.worker_args(stream, sink, *SLOW, "--shutdown-timeout", "20"))
    wait_for(lambda: _committed_total(kafka, stream, kafka.group) >= N_EVENTS // 10, 120,
             message="a tenth of the events committed", workers=((process, log),))
    process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    code = process.wait(30)
    took = time.monotonic() - signalled
    assert code == 0, log.read_text()
    assert took < 20, f"exit took {took:.1f} s, over the shutdown bound"

    committed = kafka.committed_offsets(stream)
    outputs = _outputs_by_origin(kafka.consume_all(sink, expected=sum(committed.values())))
    expected = {(p, o) for p, end in committed.items() for o in range(end)}
    assert set(outputs) == expected
    assert sum(committed.values()) < N_EVENTS, "the worker finished before SIGTERM; the test tested nothing"


def test_fenced_instance_stops_without_duplicates(kafka: KafkaTestKit, stream: str):
    sink = kafka.topic("out")
    older, older_log = kafka.start_worker(kafka.worker_args(stream, sink, *SLOW, instance="same"))
    wait_for(lambda: _committed_total(kafka, stream, kafka.group) >= N_EVENTS // 5, 120, message="progress",
             workers=((older, older_log),))
    newer, newer_log = kafka.start_worker(kafka.worker_args(stream, sink, *SLOW, instance="same"))
    try:
        code = older.wait(90)
        assert code == 3, older_log.read_text()
        assert "stopping without committing" in older_log.read_text()
        wait_for(lambda: _committed_total(kafka, stream, kafka.group) >= N_EVENTS, 180, message="all committed")
    finally:
        for process in (older, newer):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(60)
    outputs = _outputs_by_origin(kafka.consume_all(sink, expected=N_EVENTS))
    assert len(outputs) == N_EVENTS


def test_broker_restart_is_waited_out(kafka: KafkaTestKit, stream: str):
    from tests.kafka_broker import is_local_broker, restart_local_broker

    if not is_local_broker(kafka.bootstrap_servers):
        pytest.skip("restarting the broker needs the local broker of deploy/kafka-local")
    reference_outputs, _ = _reference_run(kafka, stream)
    sink = kafka.topic("out")
    process, log = kafka.start_worker(kafka.worker_args(stream, sink, *SLOW))
    try:
        wait_for(lambda: _committed_total(kafka, stream, kafka.group) >= N_EVENTS // 4, 120,
                 message="a quarter of the events committed", workers=((process, log),))
        restart_local_broker(pause=3)
        wait_for(lambda: _committed_total(kafka, stream, kafka.group) >= N_EVENTS, 240,
                 message="every event committed after the restart")
        assert process.poll() is None, log.read_text()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        code = process.wait(60)
    assert code == 0, log.read_text()
    outputs = _outputs_by_origin(kafka.consume_all(sink, expected=N_EVENTS))
    _assert_same_outputs(outputs, reference_outputs)


def test_sigterm_bounded_with_broker_down(kafka: KafkaTestKit, stream: str):
    from tests.kafka_broker import is_local_broker, start_local_broker, stop_local_broker

    if not is_local_broker(kafka.bootstrap_servers):
        pytest.skip("stopping the broker needs the local broker of deploy/kafka-local")
    sink = kafka.topic("out")
    process, log = kafka.start_worker(kafka.worker_args(stream, sink, *SLOW, "--shutdown-timeout", "10"))
    try:
        wait_for(lambda: _committed_total(kafka, stream, kafka.group) >= N_EVENTS // 5, 120,
                 message="a fifth of the events committed", workers=((process, log),))
        stop_local_broker()
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        process.wait(60)
        took = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
        start_local_broker()
    assert took < 10 + 5, f"exit took {took:.1f} s with the broker down:\n{log.read_text()}"
    assert process.returncode in (0, 4), log.read_text()


def test_missing_input_topic_is_waited_for(kafka: KafkaTestKit):
    source, sink = kafka.topic("late"), kafka.topic("out")
    process, log = kafka.start_worker(kafka.worker_args(source, sink))
    try:
        wait_for(lambda: "does not exist yet" in log.read_text(), 60, message="the missing-topic warning",
                 workers=((process, log),))
        time.sleep(2)
        assert process.poll() is None, log.read_text()
        kafka.create_topic(source, 1)
        kafka.produce_events(source, make_events(30))
        outputs = kafka.consume_all(sink, expected=30, timeout=90)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
    assert len(outputs) == 30
    assert code == 0, log.read_text()
