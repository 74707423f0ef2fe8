"""GLS networks built from MONAI blocks."""

from glsmonai.networks.gls import TABLE1_CHANNELS, FusionNet, GLSKeys, GLSNet, SharedEncoderNet

__all__ = ["TABLE1_CHANNELS", "FusionNet", "GLSKeys", "GLSNet", "SharedEncoderNet"]
