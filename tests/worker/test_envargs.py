"""Options from STREAMREC_* environment variables."""

from __future__ import annotations

import pytest

from worker.cli import build_parser
from worker.envargs import apply_environment, env_name


def _parse(argv, monkeypatch, **environment):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    parser = build_parser()
    return parser.parse_args(apply_environment(parser, argv))


def test_env_name():
    assert env_name("--bootstrap-servers") == "STREAMREC_BOOTSTRAP_SERVERS"


def test_environment_sets_defaults(monkeypatch):
    args = _parse(["run"], monkeypatch, STREAMREC_TOP_N="7", STREAMREC_EXIT_AT_END="true",
                  STREAMREC_INPUT_TOPIC="events", STREAMREC_GUARANTEE="at-least-once")
    assert args.top_n == 7
    assert args.exit_at_end is True
    assert args.input_topic == "events"
    assert args.guarantee == "at-least-once"


def test_command_line_wins(monkeypatch):
    args = _parse(["run", "--top-n", "3"], monkeypatch, STREAMREC_TOP_N="7")
    assert args.top_n == 3


@pytest.mark.parametrize("name, value", [
    ("STREAMREC_TOP_N", "ten"),
    ("STREAMREC_EXIT_AT_END", "maybe"),
    ("STREAMREC_GUARANTEE", "sometimes"),
])
def test_invalid_values_exit_with_the_variable_named(monkeypatch, capsys, name, value):
    with pytest.raises(SystemExit):
        _parse(["run"], monkeypatch, **{name: value})
    assert name in capsys.readouterr().err
