"""What a trained model costs: its parameters and the floating-point operations of one forward pass."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from glsmonai.model_folder import network_from_args, read_model_info, trained_stage

__all__ = ["model_cost"]


def model_cost(model_dir: Path) -> tuple[float, float]:
    """Parameters (millions) of the parts a model folder uses up to its trained stage's output, and GFLOPs of
    one forward pass at the working size (PyTorch's ``FlopCounterMode``)."""
    info, stage = read_model_info(model_dir), trained_stage(model_dir)
    net = network_from_args(info["network"]).eval()
    net.output = stage.output
    used = net.part("global_net") if stage.output == "global" else net
    x = torch.zeros(1, info["network"].get("in_channels", 1), *info["image_size"])
    extra = {}
    if info["network"].get("crop_space") == "original":  # the local cost depends on local_size only
        extra = {"source": x, "to_source": torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]),
                 "window": torch.tensor([info["network"]["crop_size"]], dtype=torch.float32)}
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(x, **extra)
    return sum(p.numel() for p in used.parameters()) / 1e6, counter.get_total_flops() / 1e9
