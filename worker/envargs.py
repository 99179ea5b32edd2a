"""Defaults for command-line options from STREAMREC_* environment variables."""

from __future__ import annotations

import argparse
import os

PREFIX = "STREAMREC_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_name(option: str) -> str:
    """Return the variable for a long option: --bootstrap-servers -> STREAMREC_BOOTSTRAP_SERVERS."""
    return PREFIX + option.lstrip("-").replace("-", "_").upper()


def apply_environment(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """Set the defaults of `parser` and its subcommands from the environment; return `argv`.

    Options given in `argv` still win, because argparse only falls back to a
    default when the option is absent. Raises SystemExit with a message naming
    the variable when a value does not convert.
    """
    _apply(parser, parser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                _apply(parser, subparser)
    return argv


def _apply(root: argparse.ArgumentParser, parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        long_options = [o for o in action.option_strings if o.startswith("--")]
        if not long_options or isinstance(action, argparse._HelpAction):
            continue
        name = env_name(long_options[0])
        raw = os.environ.get(name)
        if raw is None:
            continue
        parser.set_defaults(**{action.dest: _convert(root, action, name, raw)})


def _convert(root: argparse.ArgumentParser, action: argparse.Action, name: str, raw: str):
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)) or isinstance(
        action, argparse.BooleanOptionalAction
    ):
        value = raw.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        root.error(f"{name}={raw!r} is not a boolean; use 1, true, yes, on, 0, false, no or off")
    try:
        value = action.type(raw) if action.type else raw
    except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
        root.error(f"{name}={raw!r} is invalid: {exc}")
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(str, action.choices))
        root.error(f"{name}={raw!r} is not one of: {choices}")
    return value
