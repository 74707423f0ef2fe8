"""The command line: a version, and a help text for every command and option."""

from __future__ import annotations

import argparse
from importlib.metadata import version

import pytest

from glsmonai.cli import build_parser, main


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"glsmonai {version('glsmonai')}"


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_option_has_help_in_plain_text():
    for parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) or action.dest == "help":
                continue
            assert action.help, f"{parser.prog} {'/'.join(action.option_strings) or action.dest}: no help"
        assert "``" not in (parser.description or ""), parser.prog
