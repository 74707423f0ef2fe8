"""GLS networks and the baselines it is compared with, built from MONAI blocks."""

from __future__ import annotations

from glsmonai.networks.baselines import BASELINES, SegmentationOnly, build_baseline
from glsmonai.networks.gls import TABLE1_CHANNELS, FusionNet, GLSKeys, GLSNet, SharedEncoderNet

__all__ = [
    "BASELINES", "TABLE1_CHANNELS", "FusionNet", "GLSKeys", "GLSNet", "SegmentationOnly", "SharedEncoderNet",
    "build_baseline", "network_from_args",
]


def network_from_args(args: dict) -> GLSNet | SegmentationOnly:
    """Rebuild a network from what its ``build_args()`` recorded in a model folder."""
    args = dict(args)
    if "baseline" in args:
        return SegmentationOnly(args.pop("baseline"), **args)
    return GLSNet(**args)
