"""The three GLS training stages, one row each: the only place that says what a stage is.

========  ==================================  =======  ======================  ==============
stage     trains (the other parts frozen)      output   loss terms              starts from
========  ==================================  =======  ======================  ==============
stage1    global_net                          global   seg + heatmap           (scratch)
stage2    local_net                           local    seg                     stage1 best
stage3    global_net, local_net, fusion       fused    seg + heatmap + aux     stage2 best
========  ==================================  =======  ======================  ==============

The segmentation term compares the stage's output with the label on that output's pixels (the working
label, or the label in the local windows; see :func:`glsmonai.engines.loss.output_target`). The
heatmap term compares the keypoint heatmaps with the Gaussian targets; ``aux`` adds the global and
local segmentation terms in stage 3 (weight ``stage3_aux_weight``).

The training engines (:mod:`glsmonai.engines`), the predictor, the model folder and ``compare`` all
read this table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch.nn as nn

from glsmonai.networks.keys import OUTPUT_ORDER, GLSKeys

__all__ = ["Stage", "STAGES", "STAGE_NAMES", "get_stage", "enter_stage", "network_for_stage", "stage_of_output"]


@dataclass(frozen=True)
class Stage:
    """One training stage.

    Attributes:
        name: run id and checkpoint prefix (``stage1`` ...).
        number: 1, 2 or 3.
        trains: the network parts that train; every other part is frozen.
        output: the output trained and validated (and the last one the forward pass computes).
        heatmap_loss: add the keypoint heatmap term.
        aux_loss: add the global and local segmentation terms.
        starts_from: the stage whose best checkpoint this one starts from (``None``: from scratch).
    """

    name: str
    number: int
    trains: tuple[str, ...]
    output: str
    heatmap_loss: bool
    aux_loss: bool
    starts_from: str | None


STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        Stage("stage1", 1, ("global_net",), GLSKeys.GLOBAL.value, True, False, None),
        Stage("stage2", 2, ("local_net",), GLSKeys.LOCAL.value, False, False, "stage1"),
        Stage("stage3", 3, ("global_net", "local_net", "fusion"), GLSKeys.FUSED.value, True, True, "stage2"),
    )
}
STAGE_NAMES: tuple[str, ...] = tuple(STAGES)


def get_stage(stage: str | int | Stage) -> Stage:
    """The row for ``stage1`` / ``1`` / a :class:`Stage`; ``ValueError`` naming the known stages."""
    if isinstance(stage, Stage):
        return stage
    name = f"stage{stage}" if isinstance(stage, int) or str(stage).isdigit() else str(stage)
    if name not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose from {list(STAGES)}")
    return STAGES[name]


def stage_of_output(output: str) -> Stage:
    """The stage that trains ``output`` (``global`` -> stage1, ``local`` -> stage2, ``fused`` -> stage3)."""
    found = next((s for s in STAGES.values() if s.output == output), None)
    if found is None:
        raise ValueError(f"no stage trains the output {output!r}; stage outputs: {[s.output for s in STAGES.values()]}")
    return found


def enter_stage(network: nn.Module, stage: str | int | Stage, frozen: Sequence[str] = ()) -> list[nn.Parameter]:
    """Set ``network`` up for ``stage``: its parts frozen or not, its forward pass up to the stage's output.

    Args:
        network: a :class:`~glsmonai.networks.GLSNet` or a one-part baseline (stage 1 only).
        stage: the stage.
        frozen: parts that stay frozen although the stage's row trains them (``train.json``'s
            ``keep_frozen: {"stage3": ["global_net"]}``: stage 3 trains the local branch and the fusion only).

    Returns:
        the parameters that train in this stage, for the optimizer.

    Raises:
        ValueError: ``frozen`` names a part the network does not have, or leaves the stage nothing to train.
    """
    stage = get_stage(stage)
    unknown = [p for p in frozen if p not in network.parts]
    if unknown:
        raise ValueError(f"{stage.name}: cannot keep {unknown} frozen; the network's parts are {list(network.parts)}")
    trains = [p for p in stage.trains if p not in frozen]
    if not trains:
        raise ValueError(f"{stage.name}: keeping {list(frozen)} frozen leaves nothing of {list(stage.trains)} to train")
    network.output = stage.output
    network.unfreeze(*trains)
    others = [p for p in network.parts if p not in trains]
    if others:
        network.freeze(*others)
    return list(network.trainable_parameters())


def network_for_stage(network: nn.Module, stage: str | int | Stage, frozen: Sequence[str] = ()) -> nn.Module:
    """``network`` after :func:`enter_stage`: a stage block of ``train.json`` gives its optimizer this network's
    ``requires_grad`` parameters, in ``network.parameters()`` order (what :func:`enter_stage` returns)."""
    enter_stage(network, stage, frozen)
    return network


def later_output(a: str, b: str) -> str:
    """Of two outputs, the one computed later in the forward pass."""
    return max(a, b, key=OUTPUT_ORDER.index)
