"""The code is kept clean by ruff, with the rules of ``pyproject.toml``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.test_bundle import ROOT


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed (pip install -e '.[test]')")
def test_ruff_finds_nothing():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
