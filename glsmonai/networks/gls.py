"""The GLS networks (thesis Table 1), built from MONAI ``basic_unet`` blocks.

* :class:`SharedEncoderNet`: one encoder (SE) and several U-Net decoders that share its skips; with a
  segmentation decoder (GSD, 1 channel) and a keypoint decoder (KPLD, K channels) it is the global
  segmentation + keypoint localisation network; with one decoder it is the local U-Net.
* :class:`FusionNet`: conv3-16, conv3-16, conv1-1.
* :class:`GLSNet`: the whole forward pass (global branch, sub-pixel keypoints, batched keypoint-centred
  crops, local branch, fusion) returning a dict of named outputs. With ``crop_space="working"`` (the
  thesis) the crops come from the working-size image and the fusion runs on the whole working image;
  with ``crop_space="original"`` they are resampled from the original-resolution scan and the fusion
  runs inside the windows only (the prediction is assembled on the original grid by the predictor).

All outputs are logits; apply a sigmoid for probabilities. Every network takes ``spatial_dims``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.layers import Conv
from monai.networks.nets.basic_unet import Down, TwoConv, UpCat

from glsmonai.transforms.crop import crop_at_points, crop_windows, paste_at_points
from glsmonai.transforms.heatmap import decode_keypoints

__all__ = ["GLSKeys", "SharedEncoderNet", "FusionNet", "GLSNet", "TABLE1_CHANNELS", "CROP_SPACES"]

#: where the local windows are cut from: the working-size image (thesis) or the original scan
CROP_SPACES = ("working", "original")

#: encoder widths of thesis Table 1 (conv3-16 ... conv3-256); the decoders mirror them.
TABLE1_CHANNELS: tuple[int, ...] = (16, 32, 64, 128, 256)


class GLSKeys(str, Enum):
    """Names of the outputs of :class:`GLSNet`."""

    GLOBAL = "global"  # (B, 1, H, W) logits of the global segmentation decoder
    HEATMAP = "heatmap"  # (B, K, H, W) logits of the keypoint decoder
    KEYPOINTS = "keypoints"  # (B, K, 2) float, (row, col) sub-pixel heatmap peaks, working pixels
    SCORES = "scores"  # (B, K) sigmoid of the heatmap at the peak
    CONFIDENCE = "confidence"  # (B, K) peak near the predicted boundary / free peak (1: they agree)
    CENTRES = "centres"  # (B, K, 2) window centres in original pixels (crop_space original)
    WINDOW = "window"  # (B, 2) window size in original pixels (crop_space original)
    FRAME_CENTRES = "frame_centres"  # (B, K, 2) the same centres on the working grid (crop_space original)
    FRAME_WINDOW = "frame_window"  # (B, 2) the window in working pixels (crop_space original)
    TO_SOURCE = "to_source"  # (B, 2, 3) working -> original pixels (crop_space original)
    LOCAL = "local"  # (B*K, 1, h, w) logits of the local U-Net on the crops
    GLOBAL_WINDOWS = "global_windows"  # (B*K, 1, h, w) global probability in the windows (original)
    LOCAL_PASTED = "local_pasted"  # (B, 1, H, W) local probabilities pasted on an empty canvas (working)
    WINDOWS = "windows"  # (B, 1, H, W) 1 inside any crop window (working)
    FUSED = "fused"  # logits of the fusion network: (B, 1, H, W) working, (B*K, 1, h, w) original


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Zero-pad the trailing spatial dims of ``x`` (end side) to a multiple of ``multiple``, and to at
    least ``2 * multiple`` so the deepest level keeps more than one pixel for instance norm."""
    pads: list[int] = []
    for size in reversed(x.shape[2:]):
        target = max(-(-size // multiple) * multiple, 2 * multiple)
        pads.extend([0, target - size])
    return (F.pad(x, pads) if any(pads) else x), tuple(x.shape[2:])


def _crop_to(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Crop the trailing spatial dims of ``x`` back to ``shape`` (undo :func:`_pad_to_multiple`)."""
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
    ) -> None:
        super().__init__()
        self.coord_head = coord_head
        ups = []
        # channels = (16, 32, 64, 128, 256): up-conv-128 (256 -> 128, skip 128), ..., up-conv-16
        for level in range(len(channels) - 1, 0, -1):
            ups.append(
                UpCat(spatial_dims, channels[level], channels[level - 1], channels[level - 1], act, norm, bias, dropout)
            )
        self.ups = nn.ModuleList(ups)
        extra = spatial_dims if coord_head else 0
        self.head = Conv["conv", spatial_dims](channels[0] + extra, out_channels, kernel_size=1)

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        x = skips[-1]
        for up, skip in zip(self.ups, reversed(skips[:-1])):
            x = up(x, skip)
        if self.coord_head:
            x = torch.cat([x, _coordinates(x)], dim=1)
        return self.head(x)


class SharedEncoderNet(nn.Module):
    """A U-Net encoder shared by several decoders (thesis SE + GSD + KPLD, or the local U-Net).

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        out_channels: one entry per decoder, e.g. ``(1, K)`` for segmentation + K heatmaps.
        channels: encoder widths, one per level (default thesis Table 1).
        act, norm, bias, dropout: as in :class:`monai.networks.nets.BasicUNet`.
        coord_heads: per decoder, whether its head sees pixel coordinates (default: none).

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
    ) -> None:
        super().__init__()
        coord_heads = coord_heads or [False] * len(out_channels)
        if len(channels) < 2:
            raise ValueError(f"channels needs at least two levels, got {channels}")
        self.multiple = 2 ** (len(channels) - 1)
        self.stem = TwoConv(spatial_dims, in_channels, channels[0], act, norm, bias, dropout)
        self.downs = nn.ModuleList(
            Down(spatial_dims, channels[i - 1], channels[i], act, norm, bias, dropout) for i in range(1, len(channels))
        )
        self.decoders = nn.ModuleList(
            _Decoder(spatial_dims, channels, c, act, norm, bias, dropout, coord)
            for c, coord in zip(out_channels, coord_heads)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x, shape = _pad_to_multiple(x, self.multiple)
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        return [_crop_to(decoder(skips), shape) for decoder in self.decoders]


class FusionNet(nn.Module):
    """Fusion network of thesis Table 1: conv3-16, conv3-16, conv1-1 (logits out).

    Input ``(B, in_channels, *S)``: the global probability, the pasted local probability and, by
    default, the crop-window mask; output ``(B, 1, *S)`` logits.
    """

    def __init__(self, spatial_dims: int = 2, in_channels: int = 3, features: int = 16) -> None:
        super().__init__()
        conv = Conv["conv", spatial_dims]
        self.body = nn.Sequential(
            conv(in_channels, features, kernel_size=3, padding=1),
            nn.LeakyReLU(0.1, inplace=True),
            conv(features, features, kernel_size=3, padding=1),
            nn.LeakyReLU(0.1, inplace=True),
            conv(features, 1, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    @torch.no_grad()
    def init_select(self, gain: float = 12.0, noise: float = 0.05) -> None:
        """Start as "the local prediction inside the windows, the global one outside".

        Expects the three inputs (global ``g``, pasted local ``l``, window mask ``w``). Because ``l`` is
        0 outside the windows and ``g <= 1``, ``l + relu(g - w)`` is exactly that selection, so two
        hidden channels compute ``g - w`` and ``l`` (centre taps), and the head maps their sum to
        logits around 0.5. A randomly initialised fusion network starts far from both branches and
        drags the unfrozen global branch with it at the start of stage 3. The other hidden channels
        keep a small random initialisation so training can add to the selection.
        """
        first, second, head = self.body[0], self.body[2], self.body[4]
        if first.in_channels != 3 or first.out_channels < 2:
            raise ValueError("init_select needs the three-channel fusion input and at least 2 features")
        centre = tuple(k // 2 for k in first.kernel_size)
        for conv in (first, second):
            conv.weight.mul_(noise)
            conv.bias.zero_()
        first.weight[(0, 0, *centre)] += 1.0  # g
        first.weight[(0, 2, *centre)] -= 1.0  # - w
        first.weight[(1, 1, *centre)] += 1.0  # l
        second.weight[(0, 0, *centre)] += 1.0
        second.weight[(1, 1, *centre)] += 1.0
        head.weight.mul_(noise)
        head.weight[0, 0] += gain
        head.weight[0, 1] += gain
        head.bias.fill_(-0.5 * gain)

    @torch.no_grad()
    def init_local(self, gain: float = 12.0, noise: float = 0.05) -> None:
        """Start as "the local prediction" for the two inputs (global, local) inside a window.

        One hidden channel passes the local probability ``l`` (centre taps) and the head maps it to
        logits around 0.5, so stage 3 starts from stage 2's result and learns where the global
        prediction should correct it; the other channels keep a small random initialisation.
        """
        first, second, head = self.body[0], self.body[2], self.body[4]
        centre = tuple(k // 2 for k in first.kernel_size)
        for conv in (first, second):
            conv.weight.mul_(noise)
            conv.bias.zero_()
        first.weight[(0, 1, *centre)] += 1.0
        second.weight[(0, 0, *centre)] += 1.0
        head.weight.mul_(noise)
        head.weight[0, 0] += gain
        head.bias.fill_(-0.5 * gain)


class GLSNet(nn.Module):
    """Global-Local Segmentation network.

    Args:
        spatial_dims: 2 (crops are 2D windows; 3 is accepted by the parts but untested end to end).
        in_channels: image channels.
        num_keypoints: K, heatmap channels and crops per image.
        crop_size: local window size in working pixels, e.g. ``(100, 100)`` (with ``crop_space
            original`` the window's default field of view; the window itself comes with each batch).
        crop_space: ``"working"`` (thesis: crops of the working-size image, fusion on the whole working
            image) or ``"original"`` (crops resampled from the original scan to ``local_size``, fusion
            inside the windows; :meth:`forward` then needs ``source``, ``to_source`` and ``window``).
        local_size: the local U-Net's input size with ``crop_space original`` (default ``crop_size``).
        keypoint_band: search each heatmap peak within this many working pixels of the predicted
            mask's boundary (0: anywhere); see :func:`~glsmonai.transforms.heatmap.decode_keypoints`.
        keypoint_jitter: in training, shift each window centre by up to this fraction of the window
            (uniform), so stages 2 and 3 meet the keypoint errors of test time (``crop_space original``).
        channels: encoder widths of the global network (default Table 1).
        local_channels: encoder widths of the local U-Net (default ``channels``).
        fusion_features: width of the fusion network.
        fusion_window_channel: feed the crop-window mask to the fusion network as a third channel. The
            thesis feeds two channels (global, pasted local); with two, "the local net says background"
            and "outside every window" look the same to the fusion network, so it cannot learn to trust
            the local branch inside the windows only. ``False`` gives the thesis' two channels.
        stage: 1, 2 or 3; which outputs are computed (see :meth:`forward`).
        return_key: when set (e.g. ``"fused"``), :meth:`forward` returns that tensor alone instead of
            the dict (for tools that expect one tensor, such as ``monai.bundle verify_net_in_out``).

    ``forward(image)`` with ``image`` of shape ``(B, C, H, W)`` returns a dict keyed by
    :class:`GLSKeys` values. Stage 1 computes the global branch only; stage 2 also the keypoints, the
    crops and the local branch (the global branch runs without gradients); stage 3 everything.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        num_keypoints: int = 2,
        crop_size: Sequence[int] = (100, 100),
        channels: Sequence[int] = TABLE1_CHANNELS,
        local_channels: Sequence[int] | None = None,
        fusion_features: int = 16,
        fusion_window_channel: bool = True,
        crop_space: str = "working",
        local_size: Sequence[int] | None = None,
        keypoint_band: int = 0,
        keypoint_jitter: float = 0.0,
        stage: int = 3,
        return_key: str | None = None,
    ) -> None:
        super().__init__()
        if crop_space not in CROP_SPACES:
            raise ValueError(f"crop_space must be one of {CROP_SPACES}, got {crop_space!r}")
        self.crop_space = crop_space
        self.crop_size = tuple(int(c) for c in crop_size)
        self.local_size = tuple(int(c) for c in (local_size or crop_size))
        # inside an original-space window the window channel is constant: two fusion inputs
        fusion_window_channel = bool(fusion_window_channel) and crop_space == "working"
        self._args = {
            "spatial_dims": spatial_dims, "in_channels": in_channels, "num_keypoints": int(num_keypoints),
            "crop_size": list(self.crop_size), "channels": list(channels),
            "local_channels": list(local_channels) if local_channels else None,
            "fusion_features": fusion_features, "fusion_window_channel": fusion_window_channel,
            "crop_space": crop_space, "local_size": list(self.local_size),
            "keypoint_band": int(keypoint_band), "keypoint_jitter": float(keypoint_jitter),
        }
        self.return_key = return_key
        self.num_keypoints = int(num_keypoints)
        self.fusion_window_channel = fusion_window_channel
        self.keypoint_band = int(keypoint_band)
        # two keypoints closer than half a window would share most of their window: keep them apart
        self.keypoint_separation = min(self.crop_size) / 2.0
        self.keypoint_jitter = float(keypoint_jitter)
        self.global_net = SharedEncoderNet(
            spatial_dims, in_channels, (1, self.num_keypoints), channels, coord_heads=(False, True)
        )
        self.local_net = SharedEncoderNet(spatial_dims, in_channels, (1,), local_channels or channels)
        self.fusion = FusionNet(spatial_dims, 3 if fusion_window_channel else 2, fusion_features)
        if fusion_window_channel:
            self.fusion.init_select()
        elif crop_space == "original":
            self.fusion.init_local()
        self.stage = 3
        self.set_stage(stage)

    def build_args(self) -> dict:
        """What rebuilds this network (recorded in the model folder)."""
        return dict(self._args)

    def set_stage(self, stage: int) -> None:
        """Select what is computed and what trains: stage 2 freezes the global network."""
        if stage not in (1, 2, 3):
            raise ValueError(f"stage must be 1, 2 or 3, got {stage}")
        self.stage = int(stage)
        for p in self.global_net.parameters():
            p.requires_grad_(stage != 2)
        for p in self.local_net.parameters():
            p.requires_grad_(stage != 1)
        for p in self.fusion.parameters():
            p.requires_grad_(stage == 3)
        self.train(self.training)

    def train(self, mode: bool = True) -> GLSNet:
        """Like :meth:`nn.Module.train`, but a frozen global network stays in eval mode."""
        super().train(mode)
        if self.stage == 2:
            self.global_net.eval()
        return self

    def forward(
        self,
        image: torch.Tensor,
        source: torch.Tensor | None = None,
        to_source: torch.Tensor | None = None,
        window: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor] | torch.Tensor:
        """Run the branches that the current stage needs.

        Args:
            image: ``(B, C, H, W)`` working-size images.
            source: ``(B, C, H0, W0)`` the same scans at original resolution (``crop_space original``;
                zero-padded at the end to a common size).
            to_source: ``(B, 2, 3)`` affine ``[M | t]`` from working pixels to original pixels
                (``original = M @ working + t``; a letterbox scale, composed with the augmentation).
            window: ``(B, 2)`` window size in original pixels.

        Returns:
            dict keyed by :class:`GLSKeys` values (see there for shapes), or the ``return_key`` tensor.
        """
        out = self._forward(image, source, to_source, window)
        return out[self.return_key] if self.return_key else out

    def _forward(self, image, source, to_source, window) -> dict[str, torch.Tensor]:
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.stage != 2):
            global_logits, heatmap_logits = self.global_net(image)
        out = {GLSKeys.GLOBAL.value: global_logits, GLSKeys.HEATMAP.value: heatmap_logits}
        if self.stage == 1:
            return out
        mask = (global_logits.detach() > 0).to(heatmap_logits.dtype)
        found = decode_keypoints(heatmap_logits.detach(), mask, self.keypoint_band, self.keypoint_separation)
        out.update(
            {
                GLSKeys.KEYPOINTS.value: found["points"],
                GLSKeys.SCORES.value: found["scores"],
                GLSKeys.CONFIDENCE.value: found["confidence"],
            }
        )
        if self.crop_space == "original":
            return self._original_branch(out, source, to_source, window)
        crops = crop_at_points(image, found["points"], self.crop_size)  # (B*K, C, h, w)
        local_logits = self.local_net(crops)[0]
        out[GLSKeys.LOCAL.value] = local_logits
        if self.stage == 2:
            return out
        points = found["points"]
        spatial = image.shape[2:]
        local_prob = torch.sigmoid(local_logits)
        pasted = paste_at_points(local_prob, points, spatial)
        windows = paste_at_points(torch.ones_like(local_prob), points, spatial)
        parts = [torch.sigmoid(global_logits), pasted] + ([windows] if self.fusion_window_channel else [])
        out.update(
            {
                GLSKeys.LOCAL_PASTED.value: pasted,
                GLSKeys.WINDOWS.value: windows,
                GLSKeys.FUSED.value: self.fusion(torch.cat(parts, dim=1)),
            }
        )
        return out

    def _original_branch(self, out, source, to_source, window) -> dict[str, torch.Tensor]:
        """Stages 2 and 3 with windows sampled from the original scan (see :meth:`forward`).

        Each window is an axis-aligned box of the working grid around the keypoint, as large as
        ``window`` original pixels, sampled from ``source`` through ``to_source`` (which carries any
        augmentation of the working image, so the scan itself is never warped).
        """
        if source is None or to_source is None or window is None:
            raise ValueError("crop_space 'original' needs source, to_source and window with the image")
        linear, shift = to_source[:, :, :2], to_source[:, :, 2]  # (B, 2, 2), (B, 2)
        frame_window = window / linear.norm(dim=1)  # original pixels per working step, per axis
        frame_centres = out[GLSKeys.KEYPOINTS.value]
        if self.training and self.keypoint_jitter > 0:
            jitter = (torch.rand_like(frame_centres) * 2 - 1) * self.keypoint_jitter * frame_window[:, None]
            frame_centres = frame_centres + jitter
        crops = crop_windows(source, frame_centres, frame_window, self.local_size, to_image=to_source)
        local_logits = self.local_net(crops)[0]
        out.update(
            {
                GLSKeys.CENTRES.value: frame_centres @ linear.transpose(1, 2) + shift[:, None],
                GLSKeys.WINDOW.value: window,
                GLSKeys.FRAME_CENTRES.value: frame_centres,
                GLSKeys.FRAME_WINDOW.value: frame_window,
                GLSKeys.TO_SOURCE.value: to_source,
                GLSKeys.LOCAL.value: local_logits,
            }
        )
        if self.stage == 2:
            return out
        # the global probability sampled at the same window pixels, on the working grid
        global_prob = torch.sigmoid(out[GLSKeys.GLOBAL.value])
        global_windows = crop_windows(global_prob, frame_centres, frame_window, self.local_size)
        fused = self.fusion(torch.cat([global_windows, torch.sigmoid(local_logits)], dim=1))
        out.update({GLSKeys.GLOBAL_WINDOWS.value: global_windows, GLSKeys.FUSED.value: fused})
        return out
