"""Comparison models: any-size shapes, gradients, the factory, default widths and sizes."""

from __future__ import annotations

import pytest
import torch

from glsmonai.networks.baselines import BASELINES, CENet, DACBlock, RMPBlock, build_baseline
from glsmonai.networks.gls import TABLE1_CHANNELS

#: tiny widths so the tests run in seconds on a loaded CPU.
TINY = {
    "unet": {"features": (4, 8, 8, 16, 16, 4)},
    "unetpp": {"features": (4, 8, 8, 16, 16, 4)},
    "cenet": {"channels": (4, 8, 8, 16), "blocks": (1, 1, 2, 1)},
}
SHAPES = [(37, 53), (64, 64), (17, 90), (100, 100)]


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _first_conv(model: torch.nn.Module) -> torch.nn.Module:
    return next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def test_names():
    assert BASELINES == ("unet", "unetpp", "cenet")


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.parametrize("shape", SHAPES)
def test_any_size(name, shape):
    net = build_baseline(name, **TINY[name])
    out = net(torch.rand(2, 1, *shape))
    assert out.shape == (2, 1, *shape)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", BASELINES)
def test_any_size_eval_and_channels(name):
    net = build_baseline(name, in_channels=3, **TINY[name]).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 23, 41))
    assert out.shape == (1, 1, 23, 41)


@pytest.mark.parametrize("name", BASELINES)
def test_gradients_reach_first_layer(name):
    net = build_baseline(name, **TINY[name])
    net(torch.rand(2, 1, 37, 53)).mean().backward()
    grad = _first_conv(net).weight.grad
    assert grad is not None and grad.abs().sum() > 0
    # U-Net++ without deep supervision leaves MONAI's three intermediate 1x1 heads unused
    unused = {n for n, p in net.named_parameters() if p.grad is None}
    assert all(".final_conv_0_" in n and not n.startswith("net.final_conv_0_4") for n in unused), unused


def test_unknown_name():
    with pytest.raises(ValueError, match="unet, unetpp, cenet"):
        build_baseline("segformer")


@pytest.mark.parametrize("name", ["unet", "unetpp"])
def test_table1_widths_by_default(name):
    net = build_baseline(name)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].out_channels == TABLE1_CHANNELS[0] == 16
    assert max(c.out_channels for c in convs) == TABLE1_CHANNELS[-1] == 256


def test_parameter_counts():
    unet, unetpp, cenet = (build_baseline(n) for n in BASELINES)
    n_unet, n_unetpp, n_cenet = _n_params(unet), _n_params(unetpp), _n_params(cenet)
    assert 1_000_000 < n_unet < 3_000_000
    assert n_unetpp > n_unet
    assert 20_000_000 < n_cenet < 40_000_000  # ResNet-34 encoder (~21 M) + DAC + decoder
    assert n_cenet > n_unetpp
    assert _n_params(CENet(width=0.25)) < n_cenet / 10


def test_cenet_resnet34_layout():
    net = CENet()
    assert [len(stage) for stage in net.encoder] == [3, 4, 6, 3]
    assert net.channels == (64, 128, 256, 512) and net.multiple == 32
    assert _first_conv(net).kernel_size == (7, 7) and _first_conv(net).stride == (2, 2)


def test_context_blocks():
    x = torch.rand(2, 6, 3, 5)  # smaller than the 5 and 6 pooling kernels: clamped
    assert DACBlock(2, 6)(x).shape == x.shape
    rmp = RMPBlock(2, 6)
    out = rmp(x)
    assert out.shape == (2, 10, 3, 5) and rmp.out_channels == 10
    assert torch.equal(out[:, :6], x)


def test_factory_rejects_bad_widths():
    with pytest.raises(ValueError):
        build_baseline("unet", features=(4, 8, 16))
    with pytest.raises(ValueError):
        build_baseline("cenet", channels=(4, 8), blocks=(1, 1, 1))
