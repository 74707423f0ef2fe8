"""Comparison models of the GLS thesis: U-Net, U-Net++ and CE-Net, for binary segmentation.

* ``"unet"`` (:class:`BaselineUNet`): MONAI :class:`~monai.networks.nets.BasicUNet` with the widths of
  thesis Table 1, ``features=(16, 32, 64, 128, 256, 16)``; the same encoder and decoder as the GLS
  global branch, without the keypoint decoder.
* ``"unetpp"`` (:class:`BaselineUNetPlusPlus`): MONAI :class:`~monai.networks.nets.BasicUNetPlusPlus`
  (nested dense skips, Zhou et al. 2018) with the same widths and no deep supervision; MONAI returns a
  list, the wrapper returns its full-resolution output.
* ``"cenet"`` (:class:`CENet`): the Context Encoder Network of Gu et al., "CE-Net: Context Encoder
  Network for 2D Medical Image Segmentation", IEEE TMI 38(10), 2019: a ResNet-34 encoder, a Dense
  Atrous Convolution block (:class:`DACBlock`), a Residual Multi-kernel Pooling block
  (:class:`RMPBlock`) and a decoder with additive skips (:class:`CEDecoderBlock`). MONAI has no CE-Net,
  so it is assembled here from MONAI ``Convolution`` blocks and ``Conv``/``Pool`` layers. The paper
  starts from an ImageNet-pretrained ResNet-34; here the encoder is trained from scratch (nothing is
  downloaded) and its widths and depths are configurable.

Every model maps ``(B, in_channels, *S)`` to ``(B, 1, *S)`` LOGITS for any spatial size ``S``: the input
is zero-padded (end side) to a multiple of the network's total stride, and the output cropped back.
:func:`build_baseline` builds one by name (:data:`BASELINES`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.layers import Conv, Pool
from monai.networks.nets import BasicUNet, BasicUNetPlusPlus

from glsmonai.networks.blocks import TABLE1_CHANNELS, crop_to, pad_to_multiple
from glsmonai.networks.parts import FreezableParts

__all__ = [
    "BASELINES",
    "BaselineUNet",
    "BaselineUNetPlusPlus",
    "CENet",
    "CEDecoderBlock",
    "DACBlock",
    "RMPBlock",
    "ResNetBasicBlock",
    "build_baseline",
    "SegmentationOnly",
]

#: names accepted by :func:`build_baseline`.
BASELINES: tuple[str, ...] = ("unet", "unetpp", "cenet")

#: U-Net / U-Net++ widths: Table 1 encoder (conv3-16 ... conv3-256) and 16 after the last up-conv.
TABLE1_FEATURES: tuple[int, ...] = (*TABLE1_CHANNELS, TABLE1_CHANNELS[0])

_DEFAULT_ACT = ("LeakyReLU", {"negative_slope": 0.1, "inplace": True})
_DEFAULT_NORM = ("instance", {"affine": True})


class BaselineUNet(nn.Module):
    """MONAI ``BasicUNet`` (thesis Table 1 widths) that accepts any input size.

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        out_channels: output channels (1 for binary segmentation).
        features: six widths as in ``BasicUNet`` (five encoder levels, then the last up-conv).
        act, norm, bias, dropout, upsample: as in :class:`monai.networks.nets.BasicUNet`.

    ``forward(x)`` with ``x`` of shape ``(B, in_channels, *S)`` returns ``(B, out_channels, *S)`` logits;
    ``x`` is padded to a multiple of 16 (and at least 32) internally and the output cropped back.
    """

    multiple: int = 16  # four 2x max-pools

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        features: Sequence[int] = TABLE1_FEATURES,
        act: str | tuple = _DEFAULT_ACT,
        norm: str | tuple = _DEFAULT_NORM,
        bias: bool = True,
        dropout: float = 0.0,
        upsample: str = "deconv",
    ) -> None:
        super().__init__()
        if len(features) != 6:
            raise ValueError(f"features needs six widths, got {features}")
        self.net = self._build(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            features=tuple(features),
            act=act,
            norm=norm,
            bias=bias,
            dropout=dropout,
            upsample=upsample,
        )

    def _build(self, **kwargs) -> nn.Module:
        return BasicUNet(**kwargs)

    def _full_resolution(self, out) -> torch.Tensor:
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, shape = pad_to_multiple(x, self.multiple)
        return crop_to(self._full_resolution(self.net(x)), shape)


class BaselineUNetPlusPlus(BaselineUNet):
    """MONAI ``BasicUNetPlusPlus`` (thesis Table 1 widths, no deep supervision), any input size.

    Same arguments as :class:`BaselineUNet`. ``forward(x)`` returns the full-resolution output (the
    last of MONAI's list) as a ``(B, out_channels, *S)`` logits tensor.
    """

    def _build(self, **kwargs) -> nn.Module:
        return BasicUNetPlusPlus(deep_supervision=False, **kwargs)

    def _full_resolution(self, out) -> torch.Tensor:
        return out[-1]


# ----------------------------------------------------------------------------------------------- CE-Net


class ResNetBasicBlock(nn.Module):
    """ResNet basic block: conv3-norm-act, conv3-norm, plus the (projected) input, then act.

    The shortcut is a strided 1x1 conv + norm when the stride or the width changes, else identity.
    ``(B, in_channels, *S) -> (B, out_channels, *S / stride)``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        act: str | tuple = "relu",
        norm: str | tuple = "batch",
    ) -> None:
        super().__init__()
        self.conv1 = Convolution(
            spatial_dims, in_channels, out_channels, strides=stride, kernel_size=3, act=act, norm=norm, bias=False
        )
        self.conv2 = Convolution(
            spatial_dims, out_channels, out_channels, kernel_size=3, act=None, norm=norm, bias=False
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = Convolution(
                spatial_dims, in_channels, out_channels, strides=stride, kernel_size=1, act=None, norm=norm, bias=False
            )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class DACBlock(nn.Module):
    """Dense Atrous Convolution block of CE-Net.

    Four cascaded branches over three 3x3 convs with dilations 1, 3 and 5 (``d1``, ``d3``, ``d5``) and a
    1x1 conv ``c``, all four shared between the branches as in the authors' code:

    ``x + relu(d1(x)) + relu(c(d3(x))) + relu(c(d3(d1(x)))) + relu(c(d5(d3(d1(x)))))``

    (receptive fields 3, 7, 9 and 19). Width and size are kept: ``(B, C, *S) -> (B, C, *S)``.
    """

    def __init__(self, spatial_dims: int, channels: int) -> None:
        super().__init__()
        conv = Conv["conv", spatial_dims]
        self.dilate1 = conv(channels, channels, kernel_size=3, dilation=1, padding=1)
        self.dilate3 = conv(channels, channels, kernel_size=3, dilation=3, padding=3)
        self.dilate5 = conv(channels, channels, kernel_size=3, dilation=5, padding=5)
        self.conv1x1 = conv(channels, channels, kernel_size=1)
        for m in (self.dilate1, self.dilate3, self.dilate5, self.conv1x1):
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.dilate1(x)
        b = self.dilate3(a)
        c = self.dilate5(b)
        return (
            x
            + F.relu(a)
            + F.relu(self.conv1x1(self.dilate3(x)))
            + F.relu(self.conv1x1(b))
            + F.relu(self.conv1x1(c))
        )


class RMPBlock(nn.Module):
    """Residual Multi-kernel Pooling block of CE-Net.

    Max-pools with kernel = stride = 2, 3, 5 and 6, each followed by a 1x1 conv to one channel (shared,
    as in the authors' code), upsampled (linear interpolation) back to the input size and concatenated
    with the input: ``(B, C, *S) -> (B, C + 4, *S)``.

    On a feature map smaller than a kernel (small inputs: CE-Net's bottleneck is the input / 32) the
    kernel is clamped to the map's size along that axis, i.e. that branch pools globally.
    """

    def __init__(self, spatial_dims: int, channels: int, pool_sizes: Sequence[int] = (2, 3, 5, 6)) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        self.pool_sizes = tuple(int(k) for k in pool_sizes)
        self.conv = Conv["conv", spatial_dims](channels, 1, kernel_size=1)
        self.mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[spatial_dims]
        self.out_channels = channels + len(self.pool_sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        pool = Pool["max", self.spatial_dims]
        branches = [x]
        for k in self.pool_sizes:
            kernel = tuple(min(k, s) for s in size)
            pooled = pool(kernel_size=kernel, stride=kernel)(x)
            branches.append(F.interpolate(self.conv(pooled), size=size, mode=self.mode, align_corners=False))
        return torch.cat(branches, dim=1)


class CEDecoderBlock(nn.Module):
    """CE-Net decoder block: conv1 to ``in/4``, 3x3 transposed conv stride 2, conv1 to ``out``.

    Each conv is followed by norm and act. ``(B, in_channels, *S) -> (B, out_channels, *2S)``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        act: str | tuple = "relu",
        norm: str | tuple = "batch",
    ) -> None:
        super().__init__()
        mid = max(in_channels // 4, 1)
        self.body = nn.Sequential(
            Convolution(spatial_dims, in_channels, mid, kernel_size=1, act=act, norm=norm),
            Convolution(spatial_dims, mid, mid, strides=2, kernel_size=3, act=act, norm=norm, is_transposed=True),
            Convolution(spatial_dims, mid, out_channels, kernel_size=1, act=act, norm=norm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class CENet(nn.Module):
    """CE-Net (Gu et al., IEEE TMI 2019) from MONAI blocks, trained from scratch.

    Encoder: 7x7 stride-2 stem and 3x3 stride-2 max-pool, then ``len(channels)`` stages of ResNet basic
    blocks (``blocks[i]`` blocks of width ``channels[i]``; every stage but the first halves the size).
    The default ``channels=(64, 128, 256, 512)``, ``blocks=(3, 4, 6, 3)`` is ResNet-34. Context
    extractor: :class:`DACBlock` then :class:`RMPBlock` on the deepest features. Decoder: one
    :class:`CEDecoderBlock` per stage, the first ones added to the encoder skips of the next shallower
    stage, the last one to ``channels[0]`` at half the input size; then a 4x4 stride-2 transposed conv
    to ``channels[0] // 2``, act, conv3, act, conv3 to ``out_channels`` (logits).

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        out_channels: output channels (1 for binary segmentation).
        channels: encoder stage widths (e.g. ``(4, 8, 8, 16)`` for a tiny test model).
        blocks: basic blocks per stage, same length as ``channels``.
        width: multiplier on ``channels`` (rounded, at least 1 channel per stage).
        act, norm: activation and normalisation of the encoder and decoder (CE-Net uses ReLU and
            batch norm).

    ``forward(x)`` with ``x`` of shape ``(B, in_channels, *S)`` returns ``(B, out_channels, *S)`` logits;
    ``x`` is padded to a multiple of ``2 ** (len(channels) + 1)`` (32 by default, at least twice that)
    and the output cropped back.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: Sequence[int] = (64, 128, 256, 512),
        blocks: Sequence[int] = (3, 4, 6, 3),
        width: float = 1.0,
        act: str | tuple = ("relu", {"inplace": True}),
        norm: str | tuple = "batch",
    ) -> None:
        super().__init__()
        if len(channels) != len(blocks) or len(channels) < 2:
            raise ValueError(f"channels and blocks need the same length >= 2, got {channels} and {blocks}")
        chans = [max(int(round(c * width)), 1) for c in channels]
        self.channels = tuple(chans)
        self.multiple = 2 ** (len(chans) + 1)

        self.stem = nn.Sequential(
            Convolution(spatial_dims, in_channels, chans[0], strides=2, kernel_size=7, act=act, norm=norm, bias=False),
            Pool["max", spatial_dims](kernel_size=3, stride=2, padding=1),
        )
        stages = []
        prev = chans[0]
        for i, (c, n) in enumerate(zip(chans, blocks)):
            stride = 1 if i == 0 else 2
            layers = [ResNetBasicBlock(spatial_dims, prev, c, stride, act, norm)]
            layers += [ResNetBasicBlock(spatial_dims, c, c, 1, act, norm) for _ in range(int(n) - 1)]
            stages.append(nn.Sequential(*layers))
            prev = c
        self.encoder = nn.ModuleList(stages)

        self.dac = DACBlock(spatial_dims, chans[-1])
        self.rmp = RMPBlock(spatial_dims, chans[-1])

        decoders = []
        prev = self.rmp.out_channels
        for i in range(len(chans) - 1, 0, -1):  # to the skip widths channels[-2], ..., channels[0]
            decoders.append(CEDecoderBlock(spatial_dims, prev, chans[i - 1], act, norm))
            prev = chans[i - 1]
        decoders.append(CEDecoderBlock(spatial_dims, prev, chans[0], act, norm))  # to half the input size
        self.decoder = nn.ModuleList(decoders)

        half = max(chans[0] // 2, 1)
        conv = Conv["conv", spatial_dims]
        self.head = nn.Sequential(
            Conv["convtrans", spatial_dims](chans[0], half, kernel_size=4, stride=2, padding=1),
            nn.ReLU(inplace=True),
            conv(half, half, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            conv(half, out_channels, kernel_size=3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, shape = pad_to_multiple(x, self.multiple)
        x = self.stem(x)  # 1/4
        skips = []
        for stage in self.encoder:  # 1/4, 1/8, 1/16, 1/32
            x = stage(x)
            skips.append(x)
        x = self.rmp(self.dac(x))
        for decoder, skip in zip(self.decoder[:-1], reversed(skips[:-1])):
            x = decoder(x) + skip
        x = self.decoder[-1](x)  # 1/2
        return crop_to(self.head(x), shape)


# ---------------------------------------------------------------------------------------------- factory

_REGISTRY: dict[str, type[nn.Module]] = {"unet": BaselineUNet, "unetpp": BaselineUNetPlusPlus, "cenet": CENet}


def build_baseline(name: str, spatial_dims: int = 2, in_channels: int = 1, **kwargs) -> nn.Module:
    """Build a comparison model by name.

    Args:
        name: one of :data:`BASELINES` (``"unet"``, ``"unetpp"``, ``"cenet"``), case-insensitive.
        spatial_dims: 2 or 3.
        in_channels: image channels.
        **kwargs: passed to the model's class (e.g. ``features=`` for the U-Nets, ``channels=``,
            ``blocks=`` or ``width=`` for CE-Net).

    Returns:
        the model; ``model(x)`` maps ``(B, in_channels, *S)`` to ``(B, 1, *S)`` logits.

    Raises:
        ValueError: for an unknown name.
    """
    key = str(name).lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    return _REGISTRY[key](spatial_dims=spatial_dims, in_channels=in_channels, **kwargs)


class SegmentationOnly(FreezableParts, nn.Module):
    """A baseline dressed as a one-stage GLS model, so the same training loop and predictor serve it.

    ``forward`` returns ``{"global": logits}`` (no keypoints); its one part is ``global_net`` and its
    only output ``"global"``, so only stage 1 applies to it.

    Args:
        name: a :data:`BASELINES` name.
        spatial_dims, in_channels: as in :func:`build_baseline`.
        kwargs: passed to the model (e.g. ``features`` or ``channels``).
    """

    num_keypoints = 0
    crop_size: tuple[int, ...] = ()
    parts = ("global_net",)

    def __init__(self, name: str, spatial_dims: int = 2, in_channels: int = 1, **kwargs) -> None:
        super().__init__()
        self.net = build_baseline(name, spatial_dims, in_channels, **kwargs)
        self._args = {"baseline": name.lower(), "spatial_dims": spatial_dims, "in_channels": in_channels, **kwargs}

    def part(self, name: str) -> nn.Module:
        """``global_net`` is the whole baseline."""
        if name not in self.parts:
            raise ValueError(f"unknown part {name!r}; a baseline has {list(self.parts)}")
        return self.net

    @property
    def output(self) -> str:
        return "global"

    @output.setter
    def output(self, key: str) -> None:
        if key != "global":
            raise ValueError(f"{self._args['baseline']} is a one-stage baseline: it has no {key!r} output")

    def build_args(self) -> dict:
        """What rebuilds this network (recorded in the model folder)."""
        return dict(self._args)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(B, C, *S)`` -> ``{"global": (B, 1, *S)}`` logits."""
        return {"global": self.net(image)}
