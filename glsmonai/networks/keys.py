"""The names of the outputs of :class:`~glsmonai.networks.GLSNet` (shared by networks, stages and the predictor)."""

from __future__ import annotations

from enum import Enum

__all__ = ["GLSKeys", "OUTPUT_ORDER"]


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


#: the outputs a forward pass can stop after, in the order they are computed
OUTPUT_ORDER: tuple[str, ...] = (GLSKeys.GLOBAL.value, GLSKeys.LOCAL.value, GLSKeys.FUSED.value)
