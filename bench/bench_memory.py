"""Memory per million users, for each model.

For each model, learns a stream of `--users` users with `--events-per-user`
events each over `--items` items, and measures the Python heap (tracemalloc,
which also counts numpy arrays) before and after. The per-user figure is
the difference divided by the user count, scaled to a million users. It
includes the id index, each user's history of seen items and the model's
own per-user parameters, and excludes the items, whose number is fixed here.
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc

import numpy as np

from models import MODELS, Event, make_model


def measure(name: str, users: int, items: int, events_per_user: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    model = make_model(name)
    # Every item first, so the measured growth is per user only.
    for i in range(items):
        model.learn(Event(-1, i, 0.0))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    picks = rng.integers(0, items, size=(users, events_per_user)).tolist()
    for u in range(users):
        for i in picks[u]:
            model.learn(Event(u, i, float(u)))
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / users


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--events-per-user", type=int, default=5)
    parser.add_argument("--models", default=",".join(sorted(MODELS)))
    args = parser.parse_args()
    print(f"{'model':10s} {'bytes/user':>10s} {'MiB per million users':>22s}   "
          f"({args.events_per_user} events per user, {args.items} items)")
    for name in args.models.split(","):
        per_user = measure(name, args.users, args.items, args.events_per_user, seed=0)
        print(f"{name:10s} {per_user:10.0f} {per_user * 1e6 / 2**20:22.0f}")


if __name__ == "__main__":
    main()
