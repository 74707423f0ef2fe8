"""A trained model folder: the recorded settings and the stage checkpoints, read by training and inference.

::

    <ckpt_dir>/gls_model.json                 how the network was built and how scans were prepared
    <ckpt_dir>/stageN_best.pt                 best validation Dice of stage N (the network's state dict)
    <ckpt_dir>/stageN_best.json               that Dice and its epoch (read back by --resume)
    <ckpt_dir>/stageN_final.pt                after the last epoch of stage N (network, optimizer, scheduler, trainer)
    <ckpt_dir>/stageN_checkpoint_epoch=E.pt   the last epoch (network, optimizer, scheduler, trainer)

Training writes every checkpoint atomically (a temporary file renamed once complete).

This module sits below both the training engines and the predictor; it imports neither.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn

from glsmonai.networks import GLSNet, SegmentationOnly
from glsmonai.stages import STAGE_NAMES, Stage, enter_stage, get_stage
from glsmonai.utils import atomic_write, error_line

logger = logging.getLogger(__name__)

__all__ = [
    "MODEL_INFO_FILE", "load_trained", "network_from_args", "read_model_info", "stage_checkpoint", "trained_stage",
    "write_model_info",
]

#: the settings a model folder records beside its checkpoints (read by the predictor)
MODEL_INFO_FILE = "gls_model.json"


def stage_checkpoint(ckpt_dir: str | os.PathLike, stage: str | int | Stage, kind: str = "best") -> Path:
    """Path of a stage's checkpoint: ``kind`` is ``best`` (by validation Dice) or ``final``."""
    return Path(ckpt_dir) / f"{get_stage(stage).name}_{kind}.pt"


def write_model_info(ckpt_dir: str | os.PathLike, network: nn.Module, settings: Mapping | None = None) -> Path:
    """Record ``settings`` and the network's ``build_args()`` in ``<ckpt_dir>/gls_model.json`` (atomically)."""
    info = {**dict(settings or {}), "network": network.build_args()}
    text = json.dumps(info, indent=1, default=str)
    return atomic_write(Path(ckpt_dir) / MODEL_INFO_FILE, lambda tmp: tmp.write_text(text))


def read_model_info(model_dir: str | os.PathLike) -> dict:
    """The recorded settings of a model folder.

    Raises:
        FileNotFoundError: not a model folder (no settings file).
        ValueError: the settings file is not valid JSON or lacks the network's arguments (names the file).
    """
    path = Path(model_dir) / MODEL_INFO_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a GLS model folder (no {MODEL_INFO_FILE}; train first)")
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a valid settings file ({err})") from None
    if not isinstance(info, dict) or not isinstance(info.get("network"), dict) or "image_size" not in info:
        raise ValueError(f"{path}: settings file without 'network' and 'image_size'")
    return info


def network_from_args(args: Mapping) -> GLSNet | SegmentationOnly:
    """Rebuild a network from what its ``build_args()`` recorded in a model folder."""
    args = dict(args)
    if "baseline" in args:
        return SegmentationOnly(args.pop("baseline"), **args)
    return GLSNet(**args)


def trained_stage(ckpt_dir: str | os.PathLike) -> Stage:
    """The latest stage with a best checkpoint in ``ckpt_dir``.

    Raises:
        FileNotFoundError: no stage checkpoint at all.
    """
    for name in reversed(STAGE_NAMES):
        if stage_checkpoint(ckpt_dir, name).is_file():
            return get_stage(name)
    raise FileNotFoundError(f"{ckpt_dir}: no checkpoint {' / '.join(n + '_best.pt' for n in STAGE_NAMES)}")


def load_trained(network: nn.Module, ckpt_dir: str | os.PathLike, stage: str | int | None = None) -> Stage:
    """Load a stage's best checkpoint into ``network`` and set the network up for that stage.

    Args:
        network: built with :func:`network_from_args` (or the bundle's ``network_def``).
        ckpt_dir: the model folder.
        stage: which stage; default the latest one trained.

    Returns:
        the stage that was loaded.

    Raises:
        FileNotFoundError: no such checkpoint in ``ckpt_dir``.
        ValueError: the checkpoint cannot be read (truncated or corrupt), or does not fit the network the
            settings file describes (names the file).
    """
    loaded = get_stage(stage) if stage else trained_stage(ckpt_dir)
    path = stage_checkpoint(ckpt_dir, loaded)
    if not path.is_file():
        raise FileNotFoundError(f"{ckpt_dir}: no checkpoint {path.name}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or corrupt: torch raises RuntimeError, EOFError, pickle errors...
        raise ValueError(f"{path}: not a readable checkpoint, truncated or corrupt ({error_line(err)})") from None
    try:
        network.load_state_dict(state.get("network", state) if isinstance(state, Mapping) else state)
    except (RuntimeError, AttributeError, TypeError) as err:  # missing / unexpected keys, other shapes, not a state dict
        raise ValueError(f"{path}: does not fit the network {MODEL_INFO_FILE} describes ({error_line(err)})") from None
    enter_stage(network, loaded)
    logger.info("loaded %s", path)
    return loaded
