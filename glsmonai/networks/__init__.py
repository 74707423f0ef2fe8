"""GLS networks and the baselines it is compared with, built from MONAI blocks."""

from __future__ import annotations

from glsmonai.networks.baselines import BASELINES, SegmentationOnly, build_baseline
from glsmonai.networks.blocks import TABLE1_CHANNELS, SharedEncoderNet
from glsmonai.networks.fusion import FusionNet
from glsmonai.networks.gls import GLSNet
from glsmonai.networks.keys import OUTPUT_ORDER, GLSKeys
from glsmonai.networks.parts import FreezableParts
from glsmonai.networks.windows import CROP_SPACES, OriginalWindows, WorkingWindows

__all__ = [
    "BASELINES", "CROP_SPACES", "OUTPUT_ORDER", "TABLE1_CHANNELS", "FreezableParts", "FusionNet", "GLSKeys", "GLSNet",
    "OriginalWindows", "SegmentationOnly", "SharedEncoderNet", "WorkingWindows", "build_baseline",
]
