"""Fine-tuning a trained model folder on new data (``bundles/gls/configs/finetune.json``), e.g. a reviewer's
corrections (``glsmonai datalist review``).

The overlay builds the network the folder records (:func:`init_network`), prepares scans as the folder
records (:func:`init_settings`: working size, intensity percentiles, windows, heatmap width, flip pairs, the
recorded prediction options), and runs stage 3 alone, every part training, from the folder's best checkpoint
(:func:`start_checkpoint`) with a short schedule::

    python -m monai.bundle run training \\
        --config_file "['bundles/gls/configs/train.json','bundles/gls/configs/finetune.json']" \\
        --init_model_dir runs/mine/models --datalist reviewed.json --dataset_dir DIR --output_dir runs/mine_ft
"""

from __future__ import annotations

import os

import torch

from glsmonai.model_folder import ModelFolder, stage_checkpoint

__all__ = ["init_network", "init_settings", "start_checkpoint"]


def _folder(model_dir: str | os.PathLike | None) -> ModelFolder:
    if not model_dir:
        raise ValueError("fine-tuning needs the trained model folder to start from: --init_model_dir MODEL_DIR")
    folder = ModelFolder.open(model_dir)
    if folder.settings.network.baseline:
        raise ValueError(f"{folder.path}: a {folder.settings.network.baseline} baseline; finetune.json fine-tunes a GLS "
                         "model folder (its stage 3)")
    return folder


def init_settings(model_dir: str | os.PathLike | None) -> dict:
    """``train.json``'s settings as the model folder ``model_dir`` records them, so that fine-tuning prepares scans
    and windows as its training did: ``image_size``, ``intensity_percentiles``, ``crop_size``, ``crop_space``,
    ``local_size``, ``channels``, ``keypoint_band``, ``keypoint_jitter``, ``fusion_window_channel``, ``crop_window``,
    ``crop_window_mm``, ``sigma``, ``flip_swap``, ``keypoint_rule``, ``predict`` (absent ones: ``None``).

    Raises:
        ValueError: no folder given, or a baseline's; FileNotFoundError: not a model folder.
    """
    folder = _folder(model_dir)
    settings, args = folder.settings, dict(folder.settings.network.args)
    raw = settings.to_dict()
    return {
        "image_size": list(settings.image_size), "intensity_percentiles": list(settings.intensity_percentiles),
        "crop_size": list(args["crop_size"]), "crop_space": args.get("crop_space", "working"),
        "local_size": list(args.get("local_size") or args["crop_size"]), "channels": list(args["channels"]),
        "keypoint_band": int(args.get("keypoint_band", 0)), "keypoint_jitter": float(args.get("keypoint_jitter", 0.0)),
        "fusion_window_channel": bool(args.get("fusion_window_channel", True)),
        "crop_window": raw.get("crop_window"), "crop_window_mm": raw.get("crop_window_mm"), "sigma": raw.get("sigma", 3.0),
        "flip_swap": [list(p) for p in settings.flip_swap], "keypoint_rule": settings.keypoint_rule,
        "predict": raw.get("predict") or {},
    }


def init_network(model_dir: str | os.PathLike | None) -> torch.nn.Module:
    """The network ``model_dir`` records, built afresh (its weights come from :func:`start_checkpoint`)."""
    return _folder(model_dir).build_network()


def start_checkpoint(model_dir: str | os.PathLike | None) -> str:
    """The checkpoint fine-tuning starts from: the best of the latest stage trained in ``model_dir``."""
    folder = _folder(model_dir)
    return str(stage_checkpoint(folder.path, folder.trained_stage().name))
