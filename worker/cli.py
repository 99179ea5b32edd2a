"""The `streamrec` command line.

Each subcommand lives in its own module, which provides `add_parser(subparsers)`
that registers the subcommand and sets its handler as the `handler` default.
Every option can also be set by an environment variable named STREAMREC_ and
the option's long name in capitals with dashes as underscores, for example
STREAMREC_BOOTSTRAP_SERVERS for --bootstrap-servers. An option given on the
command line wins.
"""

from __future__ import annotations

import os

# Each event is scored with small matrix-vector products, for which OpenBLAS's
# threads cost more than they give (the sketch model ran about 5 times slower
# with two threads on a 2-core machine). Set before numpy loads; an explicit
# OPENBLAS_NUM_THREADS wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

_SUBCOMMAND_MODULES = ("worker.cmd_run", "worker.cmd_produce", "worker.cmd_evaluate", "worker.cmd_demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamrec",
        description="Streaming recommenders as a sharded, test-then-learn Kafka worker.",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default: %(default)s)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from worker.envargs import apply_environment

    parser = build_parser()
    args = parser.parse_args(apply_environment(parser, sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
