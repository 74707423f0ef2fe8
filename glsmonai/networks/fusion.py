"""The fusion network of thesis Table 1 and the initialisations that make stage 3 start from stage 2's result."""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.networks.layers import Conv

__all__ = ["FusionNet"]


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
    def _start_from(
        self,
        taps: tuple[tuple[int, int, float], ...],
        head_weights: tuple[float, ...],
        biases: tuple[tuple[int, float], ...] = (),
        gain: float = 12.0,
        noise: float = 0.05,
    ) -> None:
        """Start as a fixed blend of the inputs: the random weights shrunk to ``noise``, then hidden channel
        ``h`` of the first layer adds ``sign`` times input ``i`` at its centre tap (``taps``: ``(h, i, sign)``;
        ``biases``: ``(h, bias)``), the second layer passes hidden channels ``0 .. len(head_weights) - 1`` on,
        and the head weighs them by ``head_weights`` times ``gain``, around a logit of 0 at a blend of 0.5.
        The other hidden channels keep a small random initialisation so training can add to the blend."""
        first, second, head = self.body[0], self.body[2], self.body[4]
        centre = tuple(k // 2 for k in first.kernel_size)
        for conv in (first, second):
            conv.weight.mul_(noise)
            conv.bias.zero_()
        head.weight.mul_(noise)
        for hidden, source, sign in taps:
            first.weight[(hidden, source, *centre)] += sign
        for hidden, bias in biases:
            first.bias[hidden] = bias
        for c, weight in enumerate(head_weights):
            second.weight[(c, c, *centre)] += 1.0
            head.weight[0, c] += gain * weight
        head.bias.fill_(-0.5 * gain)

    def init_select(self, gain: float = 12.0, noise: float = 0.05) -> None:
        """Start as "the local prediction inside the windows, the global one outside".

        Expects the three inputs (global ``g``, pasted local ``l``, window mask ``w``). Because ``l`` is
        0 outside the windows and ``g <= 1``, ``l + relu(g - w)`` is exactly that selection, so two
        hidden channels compute ``g - w`` and ``l`` (centre taps), and the head maps their sum to
        logits around 0.5. A randomly initialised fusion network starts far from both branches and
        drags the unfrozen global branch with it at the start of stage 3.
        """
        first = self.body[0]
        if first.in_channels != 3 or first.out_channels < 2:
            raise ValueError("init_select needs the three-channel fusion input and at least 2 features")
        self._start_from(((0, 0, 1.0), (0, 2, -1.0), (1, 1, 1.0)), (1.0, 1.0), gain=gain, noise=noise)

    def init_local(self, gain: float = 12.0, noise: float = 0.05) -> None:
        """Start as "the local prediction" for the two inputs (global, local) inside a window.

        One hidden channel passes the local probability ``l`` (centre taps) and the head maps it to
        logits around 0.5, so stage 3 starts from stage 2's result and learns where the global
        prediction should correct it.
        """
        self._start_from(((0, 1, 1.0),), (1.0,), gain=gain, noise=noise)

    def init_mean(self, gain: float = 12.0, noise: float = 0.05) -> None:
        """Start as "the mean of the local and the global prediction inside the windows, the global one outside".

        With three inputs (global ``g``, pasted local ``l``, window mask ``w``), three hidden channels compute
        ``relu(g - w)`` (``g`` outside the windows), ``l`` and ``relu(g + w - 1)`` (``g`` inside them), and the
        head weighs them 1, 1/2, 1/2; with two inputs (inside a window: ``g``, ``l``) two channels pass them and
        the head weighs them 1/2 each. Unlike :meth:`init_select`, stage 3 then starts from the two branches'
        average in the key regions, which is no worse than the worse of them where they err independently,
        instead of from the local branch alone.
        """
        first = self.body[0]
        windowed = first.in_channels == 3
        if first.in_channels not in (2, 3) or first.out_channels < 2 + windowed:
            raise ValueError("init_mean needs the two- or three-channel fusion input and enough features")
        if windowed:  # g - w, l, g + w - 1
            taps = ((0, 0, 1.0), (0, 2, -1.0), (1, 1, 1.0), (2, 0, 1.0), (2, 2, 1.0))
            self._start_from(taps, (1.0, 0.5, 0.5), biases=((2, -1.0),), gain=gain, noise=noise)
        else:  # g, l
            self._start_from(((0, 0, 1.0), (1, 1, 1.0)), (0.5, 0.5), gain=gain, noise=noise)
