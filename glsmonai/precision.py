"""Mixed precision on the CPU, which MONAI's engines do not offer.

``SupervisedTrainer(amp=True)`` and ``SupervisedEvaluator(amp=True)`` run the network under
``torch.autocast("cuda")``, with the device type written into the engine: on a CPU they change nothing.
:class:`AutocastInferer` is the engines' ``inferer`` (the hook MONAI gives for how the network is
called): with ``enabled`` it runs a network whose input lies on the CPU under
``torch.autocast("cpu", dtype=torch.bfloat16)``, where the CPU has bfloat16 instructions, and hands the
outputs back in float32 so the losses and metrics stay in full precision. On CUDA it leaves the
call alone: the engines' own ``amp`` autocasts there (float16, with a gradient scaler in training).
"""

from __future__ import annotations

import logging

import torch
from monai.inferers import Inferer

__all__ = ["AutocastInferer", "autocast", "cpu_bf16_supported"]

logger = logging.getLogger(__name__)


def cpu_bf16_supported() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX), which make bf16 autocast pay."""
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((check and check()) or (amx and amx()))


def autocast(device: torch.device, enabled: bool = True):
    """The mixed-precision context for running a network on ``device``: bfloat16 on a CPU with bf16
    instructions, float16 on CUDA; a no-op context when not ``enabled`` or on a CPU without bf16."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(enabled and device.type == "cpu" and cpu_bf16_supported()))


def _to_float(out):
    """Floating tensors of a network output (a tensor, dict, list or tuple) back to float32."""
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, dict):
        return {key: _to_float(value) for key, value in out.items()}
    if isinstance(out, (list, tuple)):
        return type(out)(_to_float(value) for value in out)
    return out


class AutocastInferer(Inferer):
    """Call the network, under bfloat16 autocast when enabled and the input is on a CPU with bf16.

    Args:
        enabled: the bundle's ``amp``. On a CPU without bfloat16 instructions it is ignored, with a
            warning (emulated bf16 is slower than float32).
    """

    def __init__(self, enabled: bool = False) -> None:
        super().__init__()
        self.enabled = bool(enabled)
        self._said = False

    def __call__(self, inputs: torch.Tensor, network, *args, **kwargs):
        if not self.enabled or inputs.device.type != "cpu":
            return network(inputs, *args, **kwargs)
        if not cpu_bf16_supported():
            if not self._said:
                logger.warning("amp: this CPU has no bfloat16 instructions; running in float32")
                self._said = True
            return network(inputs, *args, **kwargs)
        if not self._said:
            logger.info("amp: the network runs in bfloat16 on the CPU")
            self._said = True
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = network(inputs, *args, **kwargs)
        return _to_float(out)
