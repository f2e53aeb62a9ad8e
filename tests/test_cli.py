"""The `btc-trader` command explains itself: help everywhere, stated defaults, errors that suggest."""

from __future__ import annotations

import argparse
import re

import pytest

from btc_trader.cli import build_parser, main
from btc_trader.cli_parser import HelpFormatter


def every_parser(parser: argparse.ArgumentParser | None = None) -> list[argparse.ArgumentParser]:
    """The top-level parser and every subcommand's, depth first."""
    parser = parser or build_parser()
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += every_parser(child)
    return found


PARSERS = every_parser()
OPTIONS = [(p.prog, a) for p in PARSERS for a in p._actions
           if not isinstance(a, argparse._HelpAction | argparse._VersionAction | argparse._SubParsersAction)]


def test_the_walk_finds_every_command():
    progs = {p.prog for p in PARSERS}
    assert {"btc-trader local invoke", "btc-trader backtest sweep", "btc-trader data download",
            "btc-trader trading reset-kill-switch", "btc-trader cost"} <= progs
    assert len(OPTIONS) > 60


@pytest.mark.parametrize(("prog", "action"), OPTIONS, ids=[f"{p}:{a.dest}" for p, a in OPTIONS])
def test_every_option_has_help_and_a_stated_default(prog, action):
    assert action.help and len(action.help) > 5, f"{prog} {action.dest}: no help text"
    if action.required or isinstance(action, argparse._StoreTrueAction):
        return  # required values and on/off flags have no default worth stating
    shown = HelpFormatter("x")._get_help_string(action) % {"default": action.default, "prog": prog}
    if action.default not in (None, False, []):
        assert str(action.default) in shown, f"{prog} {action.dest}: default {action.default!r} not stated"
    elif action.option_strings:
        # No value given means something: the help has to say what.
        assert "default" in shown.lower() or "required" in shown.lower(), f"{prog} {'/'.join(action.option_strings)}: what if it is not given?"


@pytest.mark.parametrize("parser", PARSERS, ids=[p.prog for p in PARSERS])
def test_every_command_has_a_description_and_help(parser, capsys):
    assert parser.description, parser.prog
    parser.print_help()
    assert capsys.readouterr().out.startswith(f"usage: {parser.prog}")


def test_bare_command_prints_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: btc-trader") and "backtest" in out and "local" in out


@pytest.mark.parametrize("group", [["local"], ["data"], ["trading"]])
def test_a_bare_group_lists_its_subcommands(group, capsys):
    assert main(group) == 0
    assert capsys.readouterr().out.startswith(f"usage: btc-trader {group[0]}")


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and re.match(r"btc-trader \d+\.\d+", capsys.readouterr().out)


@pytest.mark.parametrize(("argv", "usage", "message"), [
    (["backtest", "--stratgy", "live"], "btc-trader backtest", "unrecognized option --stratgy (did you mean --strategy?)"),
    (["backtest", "--data", "x", "--strategy", "lve"], "btc-trader backtest",
     "invalid choice: 'lve' (did you mean live?)"),
    (["local", "invoke", "price-collector", "--evnt", "e.json"], "btc-trader local invoke",
     "unrecognized option --evnt (did you mean --event?)"),
    (["locl", "up"], "btc-trader", "invalid choice: 'locl' (did you mean local?)"),
    (["local", "generate-event", "chek-risk"], "btc-trader local generate-event",
     "invalid choice: 'chek-risk' (did you mean check-risk?)"),
    (["backtest", "--data", "x", "--grid", "a=1,2"], "btc-trader backtest",
     "--grid belongs to `btc-trader backtest sweep`"),
    (["cost", "--stack", "dev", "extra"], "btc-trader cost", "unrecognized arguments: extra"),
])
def test_errors_name_the_mistake_in_the_command_that_was_given(argv, usage, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith(f"error: {usage}: ") and err.count("\n") == 1, err
    assert message in err and f"(see `{usage} --help`)" in err, err


def test_an_abbreviated_option_still_works():
    args = build_parser().parse_args(["backtest", "--data", "x", "--strat", "live"])
    assert args.strategy == "live"


def test_generators_say_what_they_wrote(capsys):
    import json

    assert main(["local", "generate-event", "workflow-input", "--at", "2023-03-11T12:00:00Z"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["symbol"] == "BTC-USD"  # stdout stays the event alone
    assert captured.err.startswith("generated a sample workflow-input event for BTC-USD at 2023-03-11T12:00:00Z")


def test_the_demo_takes_a_data_folder_that_may_be_absent(tmp_path):
    """`make demo` passes ../shared/data, a folder (absent on a fresh clone: the synthetic series);
    the input-file checks are for files and must not refuse it."""
    from btc_trader.cli_support import check_arguments

    for folder in (tmp_path, tmp_path / "absent"):
        args = build_parser().parse_args(["local", "demo", "--data", str(folder), "--port", "4599"])
        check_arguments(args)
        assert args.data_dir == str(folder)
