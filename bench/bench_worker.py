"""Throughput and restore figures of the worker, through a real broker.

Prints, in one run on the same input:
- events per second of the worker over all 100,000 MovieLens-100k ratings
  (4 partitions, model imf) with exactly-once and with at-least-once, and
  each against the target of 20,000 events per second;
- the exactly-once over at-least-once ratio (target: 0.70 or more);
- the time to restore a shard holding the whole ML-100k model (one
  partition) from the state topic (target: under 2 s).

Needs a broker: `deploy/kafka-local/kafka.sh start` (127.0.0.1:9092), or
--bootstrap-servers. Timing on a shared machine is noisy; run it twice.
"""

from __future__ import annotations

import argparse
import logging
import time

from models.datasets import load_movielens_100k
from worker.cmd_produce import produce_interactions
from worker.cmd_run import prepare_topics
from worker.metrics import WorkerMetrics
from worker.runner import AT_LEAST_ONCE, EXACTLY_ONCE, Worker, WorkerConfig
from worker.shard import ShardSettings
from worker.state_store import StateStore
from worker.topics import ensure_topic, wait_for_broker

TARGET_EVENTS_PER_SECOND = 20000
TARGET_RATIO = 0.70
TARGET_RESTORE_SECONDS = 2.0


def produce(bootstrap: str, topic: str, partitions: int, data) -> None:
    ensure_topic(wait_for_broker(bootstrap, 60), topic, partitions)
    delivered, failures = produce_interactions(bootstrap, topic, data)
    assert delivered == len(data), f"{len(failures)} events failed delivery"


def run_worker(bootstrap: str, topic: str, prefix: str, guarantee: str, model: str) -> tuple[float, float, int]:
    """Run the worker until `topic` is drained.

    Returns the wall time of the whole run, the processing time from the first
    event to the last commit, and the number of events processed.
    """
    config = WorkerConfig(
        bootstrap_servers=bootstrap,
        input_topic=topic,
        output_topic=f"{prefix}-out",
        dead_letter_topic=f"{prefix}-dead-letter",
        state_topic=f"{prefix}-state",
        group_id=f"{prefix}-group",
        transactional_id=f"{prefix}-worker",
        shard=ShardSettings(model=model, model_params={}),
        guarantee=guarantee,
        exit_at_end=True,
    )
    prepare_topics(config)
    worker = Worker(config, WorkerMetrics())
    started = time.perf_counter()
    code = worker.run()
    elapsed = time.perf_counter() - started
    assert code == 0, f"worker exited with {code}"
    processing = worker.last_commit_at - worker.first_event_at
    return elapsed, processing, worker.processor.processed_total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--model", default="imf")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    bootstrap = args.bootstrap_servers
    data = load_movielens_100k()
    run_id = time.strftime("%Y%m%d-%H%M%S")

    source = f"bench-{run_id}-in"
    produce(bootstrap, source, 4, data)
    figures = {}
    for guarantee in (EXACTLY_ONCE, AT_LEAST_ONCE):
        elapsed, processing, processed = run_worker(
            bootstrap, source, f"bench-{run_id}-{guarantee}", guarantee, args.model
        )
        rate = processed / processing
        figures[guarantee] = rate
        print(f"{guarantee:14s} {processed} events processed in {processing:5.1f} s = {rate:8,.0f} events/s "
              f"(first event to last commit; {processed / elapsed:,.0f} events/s over the whole run "
              f"of {elapsed:.1f} s with start-up)   ratio to the {TARGET_EVENTS_PER_SECOND:,} target: "
              f"{rate / TARGET_EVENTS_PER_SECOND:.2f}")
    ratio = figures[EXACTLY_ONCE] / figures[AT_LEAST_ONCE]
    print(f"exactly-once / at-least-once: {ratio:.2f}   (target {TARGET_RATIO:.2f} or more)")

    single = f"bench-{run_id}-single-in"
    produce(bootstrap, single, 1, data)
    prefix = f"bench-{run_id}-single"
    run_worker(bootstrap, single, prefix, EXACTLY_ONCE, args.model)
    store = StateStore(bootstrap, f"{prefix}-state")
    started = time.perf_counter()
    state, next_offset = store.restore(0)
    restore_seconds = time.perf_counter() - started
    users = len(state["model"]["users"]["ids"])
    items = len(state["model"]["items"]["ids"])
    print(f"restore of one shard holding all of ML-100k ({users} users, {items} items, next offset {next_offset}): "
          f"{restore_seconds:.2f} s   ratio to the {TARGET_RESTORE_SECONDS:.0f} s target: "
          f"{restore_seconds / TARGET_RESTORE_SECONDS:.2f}")


if __name__ == "__main__":
    main()
