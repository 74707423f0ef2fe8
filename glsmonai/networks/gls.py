"""The Global-Local Segmentation network (thesis Figure 3.1, Table 1).

``image -> global branch (shared encoder; segmentation and keypoint-heatmap decoders) -> keypoints
-> windows at the keypoints -> local U-Net -> fusion``. Where the windows come from is one of two small
strategies (:mod:`glsmonai.networks.windows`): crops of the working-size image (the thesis) or windows
resampled from the original scan. The parts (``global_net``, ``local_net``, ``fusion``) can be frozen
one by one (:class:`~glsmonai.networks.parts.FreezableParts`); which of them train, and which output
a stage trains, is the stage table's business (:mod:`glsmonai.stages`), not the network's.

All outputs are logits; apply a sigmoid for probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from glsmonai.networks.blocks import TABLE1_CHANNELS, SharedEncoderNet
from glsmonai.networks.fusion import FusionNet
from glsmonai.networks.keys import OUTPUT_ORDER, GLSKeys
from glsmonai.networks.parts import FreezableParts
from glsmonai.networks.windows import CROP_SPACES, OriginalWindows, WorkingWindows
from glsmonai.transforms.heatmap import decode_keypoints

__all__ = ["FUSION_INITS", "HEATMAP_DECODERS", "GLSNet"]

#: the fusion network's starting points (:meth:`FusionNet.init_select`, :meth:`FusionNet.init_mean`)
FUSION_INITS = ("select", "mean")
#: where the keypoint heatmaps come from: their own decoder (the thesis' KPLD); a 1x1 head on the segmentation
#: decoder (``shared``); their own last, full-resolution up-convolution on the segmentation decoder's deeper levels
#: (``shared_deep``). Value: the heatmap decoder's own up-convolutions, the shallowest ones (``None``: all of them)
HEATMAP_DECODERS: dict[str, int | None] = {"separate": None, "shared": 0, "shared_deep": 1}


class GLSNet(FreezableParts, nn.Module):
    """Global-Local Segmentation network.

    Args:
        spatial_dims: 2 (crops are 2D windows; 3 is accepted by the parts but untested end to end).
        in_channels: image channels.
        num_keypoints: K, heatmap channels and crops per image.
        crop_size: local window size in working pixels, e.g. ``(100, 100)`` (with ``crop_space
            original`` the window's default field of view; the window itself comes with each batch).
        channels: encoder widths of the global network (default Table 1).
        local_channels: encoder widths of the local U-Net (default ``channels``).
        fusion_features: width of the fusion network.
        fusion_window_channel: feed the crop-window mask to the fusion network as a third channel. The
            thesis feeds two channels (global, pasted local); with two, "the local net says background"
            and "outside every window" look the same to the fusion network, so it cannot learn to trust
            the local branch inside the windows only. ``False`` gives the thesis' two channels.
        crop_space: ``"working"`` (thesis: crops of the working-size image, fusion on the whole working
            image) or ``"original"`` (crops resampled from the original scan to ``local_size``, fusion
            inside the windows; :meth:`forward` then needs ``source``, ``to_source`` and ``window``).
        local_size: the local U-Net's input size with ``crop_space original`` (default ``crop_size``).
        keypoint_band: search each heatmap peak within this many working pixels of the predicted
            mask's boundary (0: anywhere); see :func:`~glsmonai.transforms.heatmap.decode_keypoints`.
        keypoint_jitter: in training, shift each window centre by up to this fraction of the window, in
            either crop space (see :class:`~glsmonai.networks.windows.WorkingWindows`).
        fusion_init: what the fusion network computes before stage 3 trains it: ``"select"`` (the local
            prediction inside the windows; with ``crop_space original`` and two inputs, the local one) or
            ``"mean"`` (the mean of the local and the global prediction there); the global one outside.
        heatmap_decoder: ``"separate"`` (the thesis: the heatmaps have their own decoder), ``"shared"`` (a
            1x1 heatmap head on the segmentation decoder: a stage-1 step costs about what a U-Net's does) or
            ``"shared_deep"`` (the heatmaps share the segmentation decoder's deeper levels and have their own
            last, full-resolution up-convolution); see :class:`~glsmonai.networks.blocks.SharedEncoderNet`.
        output: the last output :meth:`forward` computes: ``"global"`` (global branch only),
            ``"local"`` (also keypoints, windows and the local branch) or ``"fused"`` (everything).
        return_key: when set (e.g. ``"fused"``), :meth:`forward` returns that tensor alone instead of
            the dict (for tools that expect one tensor, such as ``monai.bundle verify_net_in_out``).
    """

    parts = ("global_net", "local_net", "fusion")
    #: the build arguments each part's weights depend on, as built or as trained: what must agree when a part
    #: is taken from another model folder (:func:`~glsmonai.engines.workflow.adopt_stage`)
    part_args = {
        "global_net": ("spatial_dims", "in_channels", "num_keypoints", "channels", "heatmap_decoder"),
        "local_net": ("spatial_dims", "in_channels", "crop_size", "channels", "local_channels", "crop_space",
                      "local_size", "keypoint_band", "keypoint_jitter"),
        "fusion": ("spatial_dims", "fusion_features", "fusion_window_channel", "crop_space", "fusion_init"),
    }

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
        fusion_init: str = "select",
        heatmap_decoder: str = "separate",
        output: str = GLSKeys.FUSED.value,
        return_key: str | None = None,
    ) -> None:
        super().__init__()
        if crop_space not in CROP_SPACES:
            raise ValueError(f"crop_space must be one of {CROP_SPACES}, got {crop_space!r}")
        if fusion_init not in FUSION_INITS:
            raise ValueError(f"fusion_init must be one of {FUSION_INITS}, got {fusion_init!r}")
        if heatmap_decoder not in HEATMAP_DECODERS:
            raise ValueError(f"heatmap_decoder must be one of {list(HEATMAP_DECODERS)}, got {heatmap_decoder!r}")
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
            "keypoint_band": int(keypoint_band), "keypoint_jitter": float(keypoint_jitter), "fusion_init": fusion_init,
            "heatmap_decoder": heatmap_decoder,
        }
        self.return_key = return_key
        self.num_keypoints = int(num_keypoints)
        self.keypoint_band = int(keypoint_band)
        # two keypoints closer than half a window would share most of their window: keep them apart
        self.keypoint_separation = min(self.crop_size) / 2.0
        if crop_space == "original":
            self.windows: WorkingWindows | OriginalWindows = OriginalWindows(self.local_size, keypoint_jitter)
        else:
            self.windows = WorkingWindows(self.crop_size, fusion_window_channel, keypoint_jitter)
        self.global_net = SharedEncoderNet(
            spatial_dims, in_channels, (1, self.num_keypoints), channels, coord_heads=(False, True),
            shared_levels=0 if (own := HEATMAP_DECODERS[heatmap_decoder]) is None else len(channels) - 1 - own,
        )
        self.local_net = SharedEncoderNet(spatial_dims, in_channels, (1,), local_channels or channels)
        self.fusion = FusionNet(spatial_dims, 3 if fusion_window_channel else 2, fusion_features)
        if fusion_init == "mean":
            self.fusion.init_mean()
        elif fusion_window_channel:
            self.fusion.init_select()
        elif crop_space == "original":
            self.fusion.init_local()
        self.output = output

    @property
    def output(self) -> str:
        """The last output the forward pass computes (``"global"``, ``"local"`` or ``"fused"``)."""
        return self._output

    @output.setter
    def output(self, key: str) -> None:
        key = GLSKeys(key).value
        if key not in OUTPUT_ORDER:
            raise ValueError(f"output must be one of {OUTPUT_ORDER}, got {key!r}")
        self._output = key

    def build_args(self) -> dict:
        """What rebuilds this network (recorded in the model folder)."""
        return dict(self._args)

    def forward(
        self,
        image: torch.Tensor,
        source: torch.Tensor | None = None,
        to_source: torch.Tensor | None = None,
        window: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor] | torch.Tensor:
        """Run the branches up to :attr:`output`.

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
        out = self._forward(image, source=source, to_source=to_source, window=window)
        return out[self.return_key] if self.return_key else out

    def _forward(self, image: torch.Tensor, **scan) -> dict[str, torch.Tensor]:
        out = self.forward_global(image)
        if self.output == GLSKeys.GLOBAL.value:
            return out
        out.update(self.find_keypoints(out[GLSKeys.GLOBAL.value], out[GLSKeys.HEATMAP.value]))
        return self.forward_local(image, out, **scan)

    def forward_global(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The global branch alone: ``global`` ``(B, 1, H, W)`` and ``heatmap`` ``(B, K, H, W)`` logits."""
        # a frozen global branch runs without building a graph
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.is_frozen("global_net")):
            global_logits, heatmap_logits = self.global_net(image)
        return {GLSKeys.GLOBAL.value: global_logits, GLSKeys.HEATMAP.value: heatmap_logits}

    def forward_local(self, image: torch.Tensor, out: dict[str, torch.Tensor], **scan) -> dict[str, torch.Tensor]:
        """The windows, the local branch and (up to :attr:`output`) the fusion at ``out``'s keypoints.

        :meth:`forward` is :meth:`forward_global`, :meth:`find_keypoints`, then this; a caller may put other
        keypoints in ``out`` (a fold ensemble's, decoded once from its members' averaged heatmaps).

        Args:
            image: ``(B, C, H, W)`` working-size images.
            out: the outputs so far: at least ``global`` and ``keypoints`` ``(B, K, 2)`` (working pixels).
            scan: ``source``, ``to_source``, ``window`` (``crop_space original``; see :meth:`forward`).

        Returns:
            ``out`` with the window, ``local`` and (output ``fused``) fusion outputs added.
        """
        crops, placed = self.windows.crop(image, out[GLSKeys.KEYPOINTS.value], training=self.training, **scan)
        out.update(placed)
        out[GLSKeys.LOCAL.value] = self.local_net(crops)[0]
        if self.output == GLSKeys.LOCAL.value:
            return out
        fusion_input, placed = self.windows.fusion_input(out)
        out.update(placed)
        out[GLSKeys.FUSED.value] = self.fusion(fusion_input)
        return out

    def find_keypoints(self, global_logits: torch.Tensor, heatmap_logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """Sub-pixel heatmap peaks near the predicted boundary (``keypoints``, ``scores``, ``confidence``)."""
        mask = (global_logits.detach() > 0).to(heatmap_logits.dtype)
        found = decode_keypoints(heatmap_logits.detach(), mask, self.keypoint_band, self.keypoint_separation)
        return {
            GLSKeys.KEYPOINTS.value: found["points"],
            GLSKeys.SCORES.value: found["scores"],
            GLSKeys.CONFIDENCE.value: found["confidence"],
        }
