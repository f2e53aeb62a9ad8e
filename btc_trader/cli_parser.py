"""The `btc-trader` argument parser: help everywhere, stated defaults, errors that suggest.

argparse alone reports a mistyped flag late and in the wrong place: `backtest --stratgy live`
says "invalid choice: 'live'" (the stray value is taken for a positional) and `local invoke
--evnt` shows the top-level usage. `CommandParser` checks each command's own options first,
names the one it does not know and suggests the closest (argparse's `suggest_on_error` needs
Python 3.14), and a command group given without a subcommand prints its help.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import Any, NoReturn

# Values not worth stating as a default: flags, "not given", counters.
_UNSTATED = (None, False, argparse.SUPPRESS)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """States each option's default unless the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default in _UNSTATED or action.required:
            return text
        if isinstance(action.default, list) and not action.default:
            return text
        if action.option_strings or action.nargs in ("?", "*"):
            return f"{text} (default: %(default)s)"
        return text


def suggestion(word: str, known: list[str]) -> str:
    """' (did you mean X?)' for the closest known word, or ''."""
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


class _Subcommands(argparse._SubParsersAction):
    """Subcommand groups: their parsers know they are subcommands; a bare group prints help."""

    def add_parser(self, name: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", HelpFormatter)
        if "help" in kwargs and "description" not in kwargs:
            kwargs["description"] = kwargs["help"]
        parser = super().add_parser(name, **kwargs)
        parser.is_subcommand = True
        return parser


class CommandParser(argparse.ArgumentParser):
    """ArgumentParser that validates options per command and suggests close matches."""

    is_subcommand = False

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Subcommands)

    def add_subparsers(self, **kwargs: Any) -> argparse._SubParsersAction:
        # A group without its subcommand prints the group's help (exit 0) instead of an error.
        kwargs["required"] = False
        kwargs.setdefault("metavar", "COMMAND")
        kwargs.setdefault("title", "commands")
        action = super().add_subparsers(**kwargs)
        if self.get_default("handler") is None:  # a group that is also a command keeps its handler
            self.set_defaults(handler=self._print_help_handler)
        return action

    def _print_help_handler(self, _args: argparse.Namespace) -> int:
        self.print_help()
        return 0

    # --- errors ------------------------------------------------------------------------------

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        arguments = list(sys.argv[1:] if args is None else args)
        self._refuse_unknown_options(arguments)
        parsed, extras = super().parse_known_args(arguments, namespace)
        if extras and self.is_subcommand:  # the command that was given names what it does not take
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def _refuse_unknown_options(self, arguments: list[str]) -> None:
        """Fail on the first `--option` this command (not its subcommands) does not know."""
        subcommands = self._subcommand_names()
        for word in arguments:
            if word == "--":
                return
            if word in subcommands:
                return  # from here on the words are the subcommand's
            if not word.startswith("--") or len(word) < 3:
                continue
            name = word.split("=", 1)[0]
            known = list(self._option_string_actions)
            if name in known or any(option.startswith(name) for option in known if option.startswith("--")):
                continue
            owner = self._subcommand_taking(name)
            if owner:
                self.error(f"{name} belongs to `{owner}`, not `{self.prog}`")
            self.error(f"unrecognized option {name}{suggestion(name, [k for k in known if k.startswith('--')])}")

    def _subcommand_taking(self, option: str) -> str | None:
        """The prog of a direct subcommand that has `option`, if any."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for parser in action.choices.values():
                    if option in parser._option_string_actions:
                        return parser.prog
        return None

    def _subcommand_names(self) -> set[str]:
        names: set[str] = set()
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                names.update(action.choices)
        return names

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            choices = [str(c) for c in action.choices]
            hint = suggestion(str(value), choices)
            raise argparse.ArgumentError(action, f"invalid choice: {value!r}{hint} (choose from {', '.join(choices)})")

    def error(self, message: str) -> NoReturn:
        # One line, like every other CLI error: the command it concerns, the mistake, where help is.
        self.exit(2, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")
