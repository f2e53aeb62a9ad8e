"""Every command the README shows is one the code accepts (the demo and tests run them for real)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from btc_trader.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def bash_commands() -> list[str]:
    """The commands of the README's ```bash blocks, continuation lines joined."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def words(command: str) -> list[str]:
    """The command's own words: no comment, no redirection or pipe."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars="|><")
    lexer.whitespace_split, lexer.commenters = True, "#"
    out = []
    for token in lexer:
        if token in {"|", ">", ">>", "<"}:
            break
        out.append(token)
    return out


BTC_TRADER = [c for c in bash_commands() if re.match(r"^(\.venv/bin/)?btc-trader ", c)]
MAKE = [c for c in bash_commands() if c.startswith("make ")]


def test_the_readme_shows_commands():
    assert len(BTC_TRADER) >= 5 and {"make demo", "make test"} <= {" ".join(words(c)) for c in MAKE}


@pytest.mark.parametrize("command", BTC_TRADER)
def test_btc_trader_command_parses(command, capsys):
    args = build_parser().parse_args(words(command)[1:])
    assert callable(args.handler), command


@pytest.mark.parametrize("command", MAKE)
def test_make_target_exists(command):
    target = words(command)[1]
    assert re.search(rf"^{re.escape(target)}:", (ROOT / "Makefile").read_text(), flags=re.M), command


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "make test" in README
