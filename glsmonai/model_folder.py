"""A trained model folder: the recorded settings and the stage checkpoints, read by training and inference.

::

    <model_dir>/gls_model.json                 how the network was built and how scans were prepared
    <model_dir>/stageN_best.pt                 best validation Dice of stage N (the network's state dict)
    <model_dir>/stageN_best.json               that Dice and its epoch (read back by --resume)
    <model_dir>/stageN_final.pt                after the last epoch of stage N (network, optimizer, scheduler, trainer)
    <model_dir>/stageN_checkpoint_epoch=E.pt   the last epoch (network, optimizer, scheduler, trainer)
    <model_dir>/stage_seconds.json             each finished stage's training seconds (a taken stage: its source's)

Training writes every checkpoint atomically (a temporary file renamed once complete).

``gls_model.json`` is read through one typed reader, as nnU-Net's ``PlansManager`` wraps ``plans.json``::

    folder = ModelFolder.open("runs/mine/models")
    folder.settings.image_size            # (256, 256)
    folder.settings.intensity_percentiles # (0.5, 99.5)
    folder.settings.predict.tta           # what the bundle's ``predict`` block recorded, None: nothing
    folder.settings.network.crop_space    # the network's recorded arguments
    network = folder.build_network()
    stage = folder.load(network)          # the latest stage's best checkpoint

The file format does not change: every key is optional but ``image_size`` and ``network`` (old folders
record fewer keys; each setting has the default those folders were made with), and :func:`read_model_info`
still gives the file as a plain dict.

This module sits below both the training engines and the predictor; it imports neither.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
import torch.nn as nn

from glsmonai.networks import GLSNet, SegmentationOnly
from glsmonai.stages import STAGE_NAMES, Stage, enter_stage, get_stage
from glsmonai.transforms.pipeline import DEFAULT_INTENSITY_PERCENTILES, prediction_transforms
from glsmonai.utils import atomic_write, error_line

logger = logging.getLogger(__name__)

__all__ = [
    "MODEL_INFO_FILE", "STAGE_SECONDS_FILE", "ModelFolder", "ModelSettings", "NetworkArgs", "RecordedPredict",
    "load_trained", "network_from_args", "read_model_info", "read_stage_seconds", "record_stage_seconds",
    "stage_checkpoint", "trained_stage", "write_model_info",
]

#: the settings a model folder records beside its checkpoints (read by the predictor)
MODEL_INFO_FILE = "gls_model.json"
#: each finished stage's training seconds, so that a run that takes a stage from another can count its minutes
STAGE_SECONDS_FILE = "stage_seconds.json"


def stage_checkpoint(model_dir: str | os.PathLike, stage: str | int | Stage, kind: str = "best") -> Path:
    """Path of a stage's checkpoint: ``kind`` is ``best`` (by validation Dice) or ``final``."""
    return Path(model_dir) / f"{get_stage(stage).name}_{kind}.pt"


def write_model_info(model_dir: str | os.PathLike, network: nn.Module, settings: Mapping | None = None) -> Path:
    """Record ``settings`` and the network's ``build_args()`` in ``<model_dir>/gls_model.json`` (atomically)."""
    info = {**dict(settings or {}), "network": network.build_args()}
    text = json.dumps(info, indent=1, default=str)
    return atomic_write(Path(model_dir) / MODEL_INFO_FILE, lambda tmp: tmp.write_text(text))


def read_model_info(model_dir: str | os.PathLike) -> dict:
    """The recorded settings of a model folder, as the plain dict of the file (typed: :meth:`ModelFolder.open`).

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


def read_stage_seconds(model_dir: str | os.PathLike) -> dict[str, dict]:
    """``<model_dir>/stage_seconds.json``: ``{stage name: {"seconds": s, ...}}``, ``{}`` when absent or unreadable
    (folders trained before this record was kept have none)."""
    path = Path(model_dir) / STAGE_SECONDS_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in record.items() if isinstance(v, dict) and isinstance(v.get("seconds"), (int, float))}


def record_stage_seconds(model_dir: str | os.PathLike, stage: str | int | Stage, seconds: float, **extra) -> Path:
    """Add one stage's entry to ``<model_dir>/stage_seconds.json`` (atomically, keeping the other stages').

    Args:
        seconds: the stage's wall-clock training seconds (its epochs and their validation).
        extra: more keys of the entry: ``resumed`` (the seconds count only the run that finished an interrupted
            stage), ``taken_from`` (the model folder a taken stage came from; ``seconds`` are then that folder's).
    """
    record = read_stage_seconds(model_dir)
    record[get_stage(stage).name] = {"seconds": round(float(seconds), 1), **extra}
    path = Path(model_dir) / STAGE_SECONDS_FILE
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(record, indent=1)))


def network_from_args(args: Mapping) -> GLSNet | SegmentationOnly:
    """Rebuild a network from what its ``build_args()`` recorded in a model folder."""
    args = dict(args)
    if "baseline" in args:
        return SegmentationOnly(args.pop("baseline"), **args)
    return GLSNet(**args)


def _tuple(value: object, cast: type = float) -> tuple | None:
    """A recorded list as a tuple of ``cast`` (``None`` stays ``None``)."""
    return None if value is None else tuple(cast(v) for v in value)  # type: ignore[union-attr]


@dataclass(frozen=True)
class NetworkArgs:
    """The network's arguments as the model folder records them (``gls_model.json``'s ``network``): what
    ``build_args()`` returned, kept as recorded (a network version adds arguments; :meth:`build` passes them all).

    Attributes:
        args: the recorded arguments; ``baseline`` names a baseline (``unet`` ...), else the network is GLS.
    """

    args: Mapping = field(default_factory=dict)

    @property
    def baseline(self) -> str | None:
        """The baseline's name, or ``None`` for a GLS network."""
        return self.args.get("baseline")

    @property
    def in_channels(self) -> int:
        return int(self.args.get("in_channels", 1))

    @property
    def crop_space(self) -> str | None:
        """``working`` or ``original`` for a GLS network (as recorded); ``None`` for a baseline."""
        return None if self.baseline else self.args.get("crop_space", "working")

    @property
    def crop_size(self) -> tuple[int, ...] | None:
        """The local window in working pixels (``None`` for a baseline)."""
        return _tuple(self.args.get("crop_size"), int)

    def build(self) -> GLSNet | SegmentationOnly:
        """A fresh network with these arguments (:func:`network_from_args`)."""
        return network_from_args(self.args)

    def to_dict(self) -> dict:
        return dict(self.args)


@dataclass(frozen=True)
class RecordedPredict:
    """The prediction options a model folder records (``gls_model.json``'s ``predict``, from the bundle's
    ``predict`` key, e.g. the CPU preset's ``{"tta": true, "components": "task"}``); ``None``: not recorded.

    The predictor's options left unset take these (``glsmonai.inference.PredictOptions.resolve``).
    """

    tta: bool | None = None
    components: int | str | None = None
    blend: float | None = None
    min_confidence: float | None = None
    amp: bool | None = None

    @classmethod
    def from_dict(cls, block: Mapping | None, source: str | os.PathLike = MODEL_INFO_FILE) -> RecordedPredict:
        """The ``predict`` block (``None`` or ``{}``: nothing recorded); unknown keys are named in a warning."""
        if not isinstance(block, Mapping | None):
            raise ValueError(f"'predict' is not a mapping of prediction options: {block!r}")
        block = dict(block or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(block) - known)
        if unknown:
            logger.warning("%s: unknown prediction option(s) %s in 'predict' (known: %s), not used", source, unknown,
                           sorted(known))
        return cls(**{k: v for k, v in block.items() if k in known})

    def to_dict(self) -> dict:
        """The recorded options only (as the file holds them)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class ModelSettings:
    """``gls_model.json``, typed: how the network was built and how scans were prepared.

    Attributes:
        image_size: the working size ``(rows, cols)`` of the networks.
        network: the network's recorded arguments.
        intensity_percentiles: the scan percentiles mapped to 0 and 1 (then clipped).
        keypoint_rule: the task's keypoint rule (:mod:`glsmonai.keypoints`), if recorded.
        keypoint_names: the keypoints' names, if recorded.
        label_value: the reference label that is the foreground (``None``: any value above 0).
        sigma: the Gaussian heatmaps' width in training, if recorded.
        crop_window, crop_window_mm: a fixed local window in original pixels or in mm (``crop_space original``).
        flip_swap: keypoint index pairs exchanged by a left-right flip (mirror TTA); none in old folders.
        num_components: the structure's connected pieces (LV 1, iris 2; ``--components task``), if recorded.
        predict: the recorded prediction options.
        raw: the file as read (every key, for copies such as an export folder's).
    """

    image_size: tuple[int, ...]
    network: NetworkArgs
    intensity_percentiles: tuple[float, float] = DEFAULT_INTENSITY_PERCENTILES
    keypoint_rule: str | None = None
    keypoint_names: tuple[str, ...] | None = None
    label_value: int | None = None
    sigma: float | None = None
    crop_window: tuple[float, ...] | None = None
    crop_window_mm: tuple[float, ...] | None = None
    flip_swap: tuple[tuple[int, int], ...] = ()
    num_components: int | None = None
    predict: RecordedPredict = RecordedPredict()
    raw: Mapping = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, info: Mapping, source: str | os.PathLike = MODEL_INFO_FILE) -> ModelSettings:
        """Settings from the file's dict (:func:`read_model_info`); ``source`` names the file in errors."""
        try:
            percentiles = info.get("intensity_percentiles")
            if percentiles is not None and len(percentiles) != 2:
                raise ValueError(f"intensity_percentiles must be two numbers, got {percentiles!r}")
            pairs = info.get("flip_swap") or ()
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError(f"flip_swap must be pairs of keypoint indices, got {pairs!r}")
            return cls(
                image_size=tuple(int(s) for s in info["image_size"]),
                network=NetworkArgs(dict(info["network"])),
                intensity_percentiles=DEFAULT_INTENSITY_PERCENTILES if percentiles is None else _tuple(percentiles),
                keypoint_rule=info.get("keypoint_rule"),
                keypoint_names=_tuple(info.get("keypoint_names"), str),
                label_value=info.get("label_value"),
                sigma=info.get("sigma"),
                crop_window=_tuple(info.get("crop_window")),
                crop_window_mm=_tuple(info.get("crop_window_mm")),
                flip_swap=tuple((int(a), int(b)) for a, b in pairs),
                num_components=info.get("num_components"),
                predict=RecordedPredict.from_dict(info.get("predict"), source),
                raw=dict(info),
            )
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"{source}: unreadable settings ({error_line(err)})") from None

    def to_dict(self) -> dict:
        """The settings as the file holds them (every key read, unchanged)."""
        return json.loads(json.dumps(self.raw)) if self.raw else {"image_size": list(self.image_size),
                                                                   "network": self.network.to_dict()}

    def prediction_transforms(self, network: nn.Module | None = None):
        """The deterministic preprocessing of a scan for ``network`` (default: the one these settings build):
        :func:`~glsmonai.transforms.pipeline.prediction_transforms` with these settings and the network's
        crop space and window (a network without keypoints works on the working grid alone).

        ``network`` may be an exported file standing in for the network (it has the same attributes).
        """
        network = network if network is not None else self.network.build()
        keypoints = bool(getattr(network, "num_keypoints", 0))
        return prediction_transforms(
            self.image_size,
            self.intensity_percentiles,
            crop_space=network.crop_space if keypoints else "working",
            crop_size=(network.crop_size or None) if keypoints else None,
            crop_window=self.crop_window,
            crop_window_mm=self.crop_window_mm,
        )


@dataclass(frozen=True)
class ModelFolder:
    """A trained model folder: its typed settings and its stage checkpoints.

    Attributes:
        path: the folder (``model_dir``).
        settings: its ``gls_model.json``.
    """

    path: Path
    settings: ModelSettings

    @classmethod
    def open(cls, model_dir: str | os.PathLike) -> ModelFolder:
        """Read a model folder's settings.

        Raises:
            FileNotFoundError: not a model folder (no settings file).
            ValueError: the settings file is not valid JSON, lacks ``network`` / ``image_size`` or holds a
                setting of the wrong kind (names the file, one line).
        """
        path = Path(model_dir)
        return cls(path, ModelSettings.from_dict(read_model_info(path), path / MODEL_INFO_FILE))

    @property
    def settings_file(self) -> Path:
        return self.path / MODEL_INFO_FILE

    def checkpoint(self, stage: str | int | Stage, kind: str = "best") -> Path:
        """A stage's checkpoint (:func:`stage_checkpoint`)."""
        return stage_checkpoint(self.path, stage, kind)

    def trained_stage(self) -> Stage:
        """The latest stage with a best checkpoint (:func:`trained_stage`)."""
        return trained_stage(self.path)

    def build_network(self) -> GLSNet | SegmentationOnly:
        """A fresh network as the settings describe it (not loaded: :meth:`load`)."""
        return self.settings.network.build()

    def load(self, network: nn.Module, stage: str | int | Stage | None = None) -> Stage:
        """Load a stage's best checkpoint into ``network`` (:func:`load_trained`); the stage loaded."""
        return load_trained(network, self.path, stage)


def trained_stage(model_dir: str | os.PathLike) -> Stage:
    """The latest stage with a best checkpoint in ``model_dir``.

    Raises:
        FileNotFoundError: no stage checkpoint at all.
    """
    for name in reversed(STAGE_NAMES):
        if stage_checkpoint(model_dir, name).is_file():
            return get_stage(name)
    raise FileNotFoundError(f"{model_dir}: no checkpoint {' / '.join(n + '_best.pt' for n in STAGE_NAMES)}")


def load_trained(network: nn.Module, model_dir: str | os.PathLike, stage: str | int | Stage | None = None) -> Stage:
    """Load a stage's best checkpoint into ``network`` and set the network up for that stage.

    Args:
        network: built with :func:`network_from_args` (or the bundle's ``network_def``).
        model_dir: the model folder.
        stage: which stage; default the latest one trained.

    Returns:
        the stage that was loaded.

    Raises:
        FileNotFoundError: no such checkpoint in ``model_dir``.
        ValueError: the checkpoint cannot be read (truncated or corrupt), or does not fit the network the
            settings file describes (names the file).
    """
    loaded = get_stage(stage) if stage else trained_stage(model_dir)
    path = stage_checkpoint(model_dir, loaded)
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: no checkpoint {path.name}")
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
