"""The command line: one version, and a help text for every command and option."""

from __future__ import annotations

import argparse
import configparser
import importlib.metadata
import json
from pathlib import Path

import pytest

import glsmonai
from glsmonai.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"glsmonai {glsmonai.__version__}"


def test_one_version_everywhere():
    setup_cfg = configparser.ConfigParser()
    setup_cfg.read(ROOT / "setup.cfg")
    from glsmonai import __version__

    assert __version__ == glsmonai.package_version() == importlib.metadata.version("glsmonai")
    assert __version__ == setup_cfg.get("metadata", "version")  # installed from this checkout's setup.cfg
    bundle = json.loads((ROOT / "bundles" / "gls" / "configs" / "metadata.json").read_text())
    assert bundle["version"] == bundle["required_packages_version"]["glsmonai"] == __version__
    from glsmonai.evaluation.reports import package_version as reports_version

    assert reports_version() == __version__  # the reports' glsmonai_version


def test_a_checkout_never_installed_reads_its_setup_cfg(monkeypatch, tmp_path):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    monkeypatch.setattr(glsmonai, "_version", None)
    setup_cfg = configparser.ConfigParser()
    setup_cfg.read(ROOT / "setup.cfg")
    assert glsmonai.package_version() == setup_cfg.get("metadata", "version")
    monkeypatch.setattr(glsmonai, "_version", None)
    monkeypatch.setattr(glsmonai, "__file__", str(tmp_path / "glsmonai" / "__init__.py"))  # no setup.cfg beside it
    assert glsmonai.package_version() == "0+unknown"
    with pytest.raises(AttributeError, match="has no attribute 'version'"):
        glsmonai.version  # noqa: B018


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
