"""A stage taken from another model folder instead of trained (``train.json``'s ``stage_from``).

Comparing settings of stages 2 and 3 (the fusion's start, window jitter) needs no new stage 1 for each: a run
takes stage 1 from a run that trained it (``--stage_from "{'stage1': 'runs/gls/models'}"``, or ``compare --arm
... stage1_of=gls``). What it takes is the parts the stage and the ones before it train, from that folder's best
checkpoint of the stage; the rest of the network is its own. :func:`run_stage` takes a stage so named instead of
training it, and :class:`~glsmonai.engines.handlers.StageStart` takes an earlier one it starts from when the run
does not hold it yet (a stage run alone).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from glsmonai.engines.distributed import barrier, is_main_process
from glsmonai.model_folder import (
    MODEL_INFO_FILE,
    ModelFolder,
    read_model_info,
    read_stage_seconds,
    record_stage_seconds,
    stage_checkpoint,
)
from glsmonai.stages import STAGES, Stage, get_stage
from glsmonai.utils import atomic_write, error_line

logger = logging.getLogger(__name__)

__all__ = ["SHARED_PREPARATION", "adopt_stage", "take_earlier_stages", "trained_parts"]

#: the recorded scan preparation that a stage taken from another model folder must share with this run
SHARED_PREPARATION = ("image_size", "intensity_percentiles", "keypoint_rule", "label_value", "sigma")


def take_earlier_stages(
    stage: str | int | Stage, network: torch.nn.Module, model_dir: str | os.PathLike,
    taken: Mapping[str, str | os.PathLike] | None, settings: Mapping | None = None,
) -> None:
    """Take each stage before ``stage`` that ``taken`` (``train.json``'s ``stage_from``) names and that this run does
    not hold yet, as when a stage runs alone (``monai.bundle run stage2``): what the stage starts from."""
    number = get_stage(stage).number
    for name, source in (taken or {}).items():
        earlier = get_stage(name)
        if source and earlier.number < number and not stage_checkpoint(model_dir, earlier, "best").is_file():
            adopt_stage(earlier, network, model_dir, source, settings)


def trained_parts(stage: str | int | Stage) -> tuple[str, ...]:
    """The parts trained by ``stage`` and the stages before it (stage 1: ``global_net``; stage 2: also ``local_net``)."""
    number = get_stage(stage).number
    return tuple(dict.fromkeys(p for s in STAGES.values() if s.number <= number for p in s.trains))


def _differences(source: Mapping, own: Mapping, keys: Sequence[str]) -> list[str]:
    return [f"{k} {source.get(k)!r} there, {own.get(k)!r} here" for k in keys if source.get(k) != own.get(k)]


def adopt_stage(
    stage: str | int | Stage,
    network: torch.nn.Module,
    model_dir: str | os.PathLike,
    source: str | os.PathLike,
    settings: Mapping | None = None,
) -> Path:
    """Take ``stage`` from the model folder ``source`` instead of training it: the parts that stage and the ones
    before it train (:func:`trained_parts`) are loaded from ``source``'s best checkpoint of the stage into
    ``network``, and the network is saved as this run's best checkpoint of the stage, so the next stage starts
    from it as from its own. The other parts keep what this run built (e.g. its ``fusion_init``).

    This is how several settings of stages 2 and 3 are compared on one stage 1 (``compare --arm ...
    stage1_of=NAME``): a run that takes stage 1 from a run of the same seed and stage-1 settings holds the very
    checkpoint that training stage 1 itself would have written. Which epochs, learning rate or loss weights
    ``source`` trained with is its own affair; the scan preparation (:data:`SHARED_PREPARATION`) and the
    taken parts' network arguments must be this run's.

    ``settings``: this run's recorded settings (``train.json``'s ``model_info``), else read from ``model_dir``.

    ``source``'s training seconds of the taken stages (its ``stage_seconds.json``) are copied into this run's, marked
    ``taken_from``, so that the minutes a run like this costs can be counted in full.

    Returns:
        this run's checkpoint of the stage.

    Raises:
        FileNotFoundError: ``source`` is not a model folder or has no best checkpoint of the stage.
        ValueError: ``source`` is this run's folder, prepares scans otherwise, or its parts are not this network's.
    """
    stage, model_dir, source = get_stage(stage), Path(model_dir), Path(source)
    if source.resolve() == model_dir.resolve():
        raise ValueError(f"{source}: {stage.name} cannot be taken from the run's own model folder")
    folder = ModelFolder.open(source)
    path = folder.checkpoint(stage)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {stage.name} cannot be taken from {source}: it has no best {stage.name} checkpoint")
    parts = [p for p in trained_parts(stage) if p in network.parts]
    # a folder's recorded settings as this release reads them: arguments a version added take their defaults
    source_args, own_args = folder.build_network().build_args(), network.build_args()
    arg_keys = sorted({a for p in parts for a in getattr(network, "part_args", {}).get(p, own_args)})
    source_info = folder.settings.raw
    own_info = dict(settings) if settings is not None else read_model_info(model_dir)
    recorded = [k for k in SHARED_PREPARATION if k in source_info]  # older folders record fewer
    problems = _differences(source_info, own_info, recorded) + _differences(source_args, own_args, arg_keys)
    if problems:
        raise ValueError(f"{source / MODEL_INFO_FILE}: {stage.name} cannot be taken from it: {'; '.join(problems)}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or corrupt file: one line naming it, as StageStart says it
        why = f"unreadable, truncated or corrupt ({error_line(err)})"
        raise ValueError(f"{path}: {stage.name} cannot be taken from it: {why}") from None
    state = state.get("network", state) if isinstance(state, Mapping) else {}
    own = network.state_dict()
    taken = {k: v for k, v in state.items() if k.split(".")[0] in parts}
    wanted = {k for k in own if k.split(".")[0] in parts}
    mismatched = sorted(wanted ^ set(taken)) + sorted(k for k in wanted & set(taken) if own[k].shape != taken[k].shape)
    if mismatched:
        raise ValueError(f"{path}: {stage.name} cannot be taken from it: its {', '.join(parts)} differ from this "
                         f"network's ({len(mismatched)} tensor(s), e.g. {mismatched[0]})")
    network.load_state_dict(taken, strict=False)
    target = stage_checkpoint(model_dir, stage, "best")
    if is_main_process():
        # as the stage's own saver writes it: MONAI's CheckpointSaver stores a lone network's state dict bare
        atomic_write(target, lambda tmp: torch.save(network.state_dict(), tmp))
        record = path.with_suffix(".json")
        if record.is_file():  # the validation score the checkpoint was chosen by, as the stage's saver records it
            atomic_write(target.with_suffix(".json"), lambda tmp: tmp.write_text(record.read_text()))
        # the minutes the taken stages cost there, so that this run's minutes can count them
        for name, entry in read_stage_seconds(source).items():
            if get_stage(name).number <= stage.number:
                kept = {k: v for k, v in entry.items() if k != "seconds"}
                kept.setdefault("taken_from", str(source))
                record_stage_seconds(model_dir, name, entry["seconds"], **kept)
    barrier()
    logger.info("%s taken from %s (%s), not trained", stage.name, path, ", ".join(parts))
    return target
