"""``amp`` on a CPU: the engines' inferer runs the network in bfloat16 and hands float32 outputs to the losses."""

from __future__ import annotations

import logging

import torch
import torch.nn as nn

import glsmonai.precision as precision
from glsmonai.precision import AutocastInferer


class _Recorder(nn.Module):
    """A convolution that remembers the dtype it computed in and returns a dict, as GLSNet does."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.seen: list[torch.dtype] = []

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.conv(x)
        self.seen.append(y.dtype)
        return {"global": y, "keypoints": torch.zeros(x.shape[0], 2, 2, dtype=torch.long)}


def test_amp_computes_in_bfloat16_and_returns_float32(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: True)
    net, x = _Recorder(), torch.rand(2, 1, 8, 8)
    out = AutocastInferer(enabled=True)(x, net)
    assert net.seen == [torch.bfloat16]
    assert out["global"].dtype == torch.float32 and out["keypoints"].dtype == torch.long
    assert torch.allclose(out["global"], net.conv(x), atol=0.05)  # bf16 keeps about 3 significant digits


def test_without_amp_or_without_bf16_instructions_the_network_runs_in_float32(monkeypatch, caplog):
    net, x = _Recorder(), torch.rand(2, 1, 8, 8)
    AutocastInferer(enabled=False)(x, net)
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: False)
    with caplog.at_level(logging.WARNING):
        inferer = AutocastInferer(enabled=True)
        inferer(x, net)
        inferer(x, net)
    assert net.seen == [torch.float32, torch.float32, torch.float32]
    assert sum("no bfloat16" in r.message for r in caplog.records) == 1  # said once, not every batch
