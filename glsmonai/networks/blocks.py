"""The encoder-decoder blocks of the GLS networks (thesis Table 1), built from MONAI ``basic_unet`` blocks.

:class:`SharedEncoderNet` is one encoder (SE) and several U-Net decoders that share its skips: with a
segmentation decoder (GSD, 1 channel) and a keypoint decoder (KPLD, K channels) it is the global
segmentation + keypoint localisation network; with one decoder it is the local U-Net. With
``shared_levels`` the decoders also share their deepest up-convolutions: the keypoint decoder costs
about half as much again as the encoder and one decoder together, and each level about as much as another.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.layers import Conv
from monai.networks.nets.basic_unet import Down, TwoConv, UpCat

__all__ = ["SharedEncoderNet", "TABLE1_CHANNELS", "pad_to_multiple", "crop_to"]

#: encoder widths of thesis Table 1 (conv3-16 ... conv3-256); the decoders mirror them.
TABLE1_CHANNELS: tuple[int, ...] = (16, 32, 64, 128, 256)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Zero-pad the trailing spatial dims of ``x`` (end side) to a multiple of ``multiple``, and to at
    least ``2 * multiple`` so the deepest level keeps more than one pixel for instance norm."""
    pads: list[int] = []
    for size in reversed(x.shape[2:]):
        target = max(-(-size // multiple) * multiple, 2 * multiple)
        pads.extend([0, target - size])
    return (F.pad(x, pads) if any(pads) else x), tuple(x.shape[2:])


def crop_to(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Crop the trailing spatial dims of ``x`` back to ``shape`` (undo :func:`pad_to_multiple`)."""
    return x[(..., *[slice(0, s) for s in shape])]


def _coordinates(x: torch.Tensor) -> torch.Tensor:
    """``(B, D, *S)`` pixel coordinates of ``x``'s grid, divided by 64 (one channel per axis)."""
    axes = [torch.arange(s, device=x.device, dtype=x.dtype) / 64.0 for s in x.shape[2:]]
    grids = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    return grids.expand(x.shape[0], *grids.shape)


class _Decoder(nn.Module):
    """U-Net decoder: up-conv per level with the encoder's skip, then a 1x1 head.

    With ``coord_head`` the head also sees the pixel coordinates (CoordConv). Keypoint channels must
    tell mirror-image regions apart (the left from the right iris root): their local features are
    alike, and convolutions with zero padding know little of absolute position, so without
    coordinates both channels peak at both roots and the arg-max picks either.

    ``levels``: the decoder's up-convolutions are its ``levels`` shallowest ones (default all); it then
    starts from features of ``channels[levels]`` channels at that depth (another decoder's, when it shares
    the deeper levels) instead of from the deepest skip.
    """

    def __init__(
        self,
        spatial_dims: int,
        channels: Sequence[int],
        out_channels: int,
        act,
        norm,
        bias: bool,
        dropout: float,
        coord_head: bool = False,
        levels: int | None = None,
    ) -> None:
        super().__init__()
        self.coord_head = coord_head
        levels = len(channels) - 1 if levels is None else levels
        # channels = (16, 32, 64, 128, 256): up-conv-128 (256 -> 128, skip 128), ..., up-conv-16
        self.ups = nn.ModuleList(
            UpCat(spatial_dims, channels[level], channels[level - 1], channels[level - 1], act, norm, bias, dropout)
            for level in range(levels, 0, -1)
        )
        extra = spatial_dims if coord_head else 0
        self.head = Conv["conv", spatial_dims](channels[0] + extra, out_channels, kernel_size=1)

    def features(self, skips: list[torch.Tensor], x: torch.Tensor | None = None, start: int = 0,
                 stop: int | None = None) -> torch.Tensor:
        """The up-convolutions ``start:stop`` applied to ``x`` (default: the deepest skip, for ``start`` 0)."""
        x = skips[-1] if x is None else x
        for up, skip in list(zip(self.ups, reversed(skips[: len(self.ups)])))[start:stop]:
            x = up(x, skip)
        return x

    def forward(self, skips: list[torch.Tensor], x: torch.Tensor | None = None, start: int = 0) -> torch.Tensor:
        """The head on :meth:`features` from ``start`` on: ``(B, out_channels, *S)`` logits."""
        features = self.features(skips, x, start)
        if self.coord_head:
            features = torch.cat([features, _coordinates(features)], dim=1)
        return self.head(features)


class SharedEncoderNet(nn.Module):
    """A U-Net encoder shared by several decoders (thesis SE + GSD + KPLD, or the local U-Net).

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        out_channels: one entry per decoder, e.g. ``(1, K)`` for segmentation + K heatmaps.
        channels: encoder widths, one per level (default thesis Table 1).
        act, norm, bias, dropout: as in :class:`monai.networks.nets.BasicUNet`.
        coord_heads: per decoder, whether its head sees pixel coordinates (default: none).
        shared_levels: the other outputs share this many of the first output's up-convolutions, the
            deepest ones, and have their own shallower ones and head: 0 (default), one decoder per output (the
            thesis); ``len(channels) - 1``, the first decoder's features with a 1x1 head each.

    Input ``(B, in_channels, *S)`` of any size ``S`` (padded internally to a multiple of
    ``2 ** (len(channels) - 1)`` and cropped back); returns a list with one ``(B, out_channels[i], *S)``
    logits tensor per decoder.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: Sequence[int] = (1,),
        channels: Sequence[int] = TABLE1_CHANNELS,
        act: str | tuple = ("LeakyReLU", {"negative_slope": 0.1, "inplace": True}),
        norm: str | tuple = ("instance", {"affine": True}),
        bias: bool = True,
        dropout: float = 0.0,
        coord_heads: Sequence[bool] | None = None,
        shared_levels: int = 0,
    ) -> None:
        super().__init__()
        coord_heads = tuple(coord_heads or [False] * len(out_channels))
        if len(channels) < 2:
            raise ValueError(f"channels needs at least two levels, got {channels}")
        self.multiple = 2 ** (len(channels) - 1)
        self.stem = TwoConv(spatial_dims, in_channels, channels[0], act, norm, bias, dropout)
        self.downs = nn.ModuleList(
            Down(spatial_dims, channels[i - 1], channels[i], act, norm, bias, dropout) for i in range(1, len(channels))
        )
        depth = len(channels) - 1
        if not 0 <= shared_levels <= depth:
            raise ValueError(f"shared_levels must be in [0, {depth}] for {len(channels)} levels, got {shared_levels}")
        self.shared_levels = int(shared_levels)
        self.decoders = nn.ModuleList(
            _Decoder(spatial_dims, channels, c, act, norm, bias, dropout, coord, None if i == 0 else depth - shared_levels)
            for i, (c, coord) in enumerate(zip(out_channels, coord_heads))
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x, shape = pad_to_multiple(x, self.multiple)
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        first, *others = self.decoders
        shared = first.features(skips, stop=self.shared_levels)  # the shared deep levels, once (none: the deepest skip)
        outputs = [first(skips, shared, start=self.shared_levels)] + [other(skips, shared) for other in others]
        return [crop_to(out, shape) for out in outputs]
