"""Shared fixtures: tiny phantom data sets written once per session."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glsmonai.data.synth import write_phantom_dataset


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def tiny_iris(tmp_path_factory):
    """10 iris phantoms of 64 x 72 with their datalist (6 train / 2 val / 2 test)."""
    root = tmp_path_factory.mktemp("iris")
    write_phantom_dataset("iris", root, n=10, seed=3, size=(64, 72))
    return root
