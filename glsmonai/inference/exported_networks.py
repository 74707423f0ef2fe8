"""The exported-network backends of ``predict --engine torchscript|onnx``: a file ``glsmonai export`` wrote,
run behind the network contract the predictor uses.

:class:`ExportedNetwork` is called like :class:`~glsmonai.networks.GLSNet` and returns the outputs as a dict
keyed by :class:`~glsmonai.networks.GLSKeys` values; :func:`open_exported` finds the file of a model folder
and checks it was exported from that model. Writing the files is :mod:`glsmonai.export`'s business; what
this module reads of them (the file names, the contract version, the export information each file embeds)
is defined here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from glsmonai.inference.options import ENGINES
from glsmonai.model_folder import MODEL_INFO_FILE, ModelFolder, ModelSettings
from glsmonai.networks import GLSKeys
from glsmonai.stages import Stage, get_stage
from glsmonai.utils import error_line

logger = logging.getLogger(__name__)

__all__ = ["EXPORTED_FILES", "EXPORT_FORMAT", "ExportedNetwork", "load_exported", "open_exported"]

#: the file each exported engine runs (what ``glsmonai export`` writes for each format)
EXPORTED_FILES: dict[str, str] = {"torchscript": "model.ts", "onnx": "model.onnx"}
#: the version of the exported contract (inputs, outputs, embedded information)
EXPORT_FORMAT = 1


class ExportedNetwork:
    """An exported file behind the network contract the predictor uses (the adapter of ``--engine``).

    Called like :class:`GLSNet` (``image`` and, with ``crop_space original``, ``source``, ``to_source``,
    ``window``), it returns the outputs as a dict keyed by :class:`GLSKeys` values, on the CPU. It has
    the attributes the predictor reads (``crop_space``, ``crop_size``, ``num_keypoints``,
    ``keypoint_band``, ``output``) and the :attr:`stage` the file was exported from. Exported files run
    in float32 (mixed precision does not apply to them).

    A TorchScript trace holds the device it was traced on (``glsmonai export --device``); asked for
    another one, it runs on its own and says so. ONNX Runtime runs on the CPU, or with its CUDA
    provider when the device is CUDA and the installed ``onnxruntime`` has it.

    Args:
        path: ``model.ts`` or ``model.onnx``.
        engine: ``torchscript`` or ``onnx``.
        device: where to run.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unreadable file, or one without glsmonai's export information (names the file).
    """

    def __init__(self, path: str | os.PathLike, engine: str, device: str | torch.device = "cpu") -> None:
        if engine not in EXPORTED_FILES:
            raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
        self.path, self.engine = Path(path), engine
        self.device = torch.device(device)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no exported model (write one with glsmonai export -m MODEL_DIR -o "
                                    f"{self.path.parent}, or give --exported PATH)")
        kind = "TorchScript" if engine == "torchscript" else "ONNX"
        try:
            self.info = self._open()
        except Exception as err:  # torch and onnxruntime raise their own types for a damaged file
            raise ValueError(
                f"{self.path}: not a readable {kind} model, truncated or corrupt ({error_line(err)})"
            ) from None
        if self.info.get("format") != EXPORT_FORMAT or not isinstance(self.info.get("network"), dict):
            raise ValueError(f"{self.path}: a {kind} model without glsmonai's export information (write it with "
                             "glsmonai export or the bundle's ckpt_export)")
        args = self.info["network"]
        self.crop_space: str = self.info["crop_space"]
        self.crop_size = tuple(int(c) for c in args["crop_size"])
        self.num_keypoints = int(args["num_keypoints"])
        self._band = int(args["keypoint_band"])
        self.stage: Stage = get_stage(self.info["stage"])
        self.output = GLSKeys.FUSED.value  # the file computes every output; kept for the predictor

    def _open(self) -> dict:
        """Load the file; its embedded export information (``{}`` when it has none)."""
        if self.engine == "torchscript":
            traced_on = self.device
            module = torch.jit.load(str(self.path), map_location="cpu")
            raw = getattr(module, "export_info_json", None)
            info = json.loads(bytes(raw.tolist()).decode()) if isinstance(raw, torch.Tensor) else {}
            traced_on = torch.device(info.get("device", "cpu")) if isinstance(info, dict) else traced_on
            if traced_on.type != self.device.type:
                logger.warning("%s was traced on %s: TorchScript runs it there, not on %s (export with --device %s "
                               "for a trace there)", self.path, traced_on, self.device, self.device.type)
                self.device = traced_on
            self.module = module.to(self.device).eval()
            return info if isinstance(info, dict) else {}
        import onnxruntime

        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            else:
                logger.warning("this onnxruntime has no CUDA provider (onnxruntime-gpu has one): %s runs on the CPU",
                               self.path)
        self.session = onnxruntime.InferenceSession(str(self.path), providers=providers)
        meta = self.session.get_modelmeta().custom_metadata_map.get("glsmonai")
        info = json.loads(meta) if meta else {}
        return info if isinstance(info, dict) else {}

    @property
    def keypoint_band(self) -> int:
        """The keypoint search band the file was exported with (part of the exported graph)."""
        return self._band

    @keypoint_band.setter
    def keypoint_band(self, band: int) -> None:
        if int(band) != self._band:
            raise ValueError(f"{self.path}: exported with keypoint band {self._band}; the band is part of the exported "
                             f"model, so --keypoint-band {band} needs --engine torch (or an export of a model with it)")

    def to(self, device: str | torch.device) -> ExportedNetwork:
        """Kept for the predictor's ``network.to(device)``: the device was chosen when the file was opened."""
        return self

    def eval(self) -> ExportedNetwork:
        """Kept for the predictor's ``network.eval()``: an exported file is always in evaluation mode."""
        return self

    def check(self, settings: ModelSettings, where: str | os.PathLike) -> None:
        """``ValueError`` unless the file was exported from a model with these settings (the scans are prepared
        by them, so they must be the file's); ``where``: the model folder, named in the message."""
        recorded = {"image_size": list(settings.image_size), **settings.network.to_dict()}
        mine = {"image_size": self.info["image_size"], **self.info["network"]}
        for key in ("image_size", "crop_space", "crop_size", "num_keypoints", "in_channels", "local_size"):
            if key in recorded and recorded[key] != mine.get(key):
                settings_file = Path(where) / MODEL_INFO_FILE
                raise ValueError(f"{self.path}: exported with {key} {mine.get(key)}, but {settings_file} records "
                                 f"{recorded[key]}: not an export of this model")

    def run(self, inputs: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The exported forward on ``inputs`` in the order of the file's inputs (:func:`glsmonai.export.input_names`);
        the outputs by name, on the CPU."""
        names = self.info["outputs"]
        if self.engine == "torchscript":
            with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
                out = self.module(*[x.to(self.device, torch.float32) for x in inputs])
            return {name: value.cpu() for name, value in zip(names, out)}
        feed = {name: x.detach().to("cpu", torch.float32).numpy() for name, x in zip(self.info["inputs"], inputs)}
        return {name: torch.from_numpy(value) for name, value in zip(names, self.session.run(names, feed))}

    def __call__(self, image: torch.Tensor, source: torch.Tensor | None = None, to_source: torch.Tensor | None = None,
                 window: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The outputs of the exported forward as the predictor reads them (``window`` passed through)."""
        if self.crop_space == "working":
            return self.run([image])
        if source is None or to_source is None or window is None:
            raise ValueError("crop_space 'original' needs source, to_source and window with the image")
        out = self.run([image, source, to_source, window])
        out[GLSKeys.WINDOW.value] = window.detach().cpu()
        return out


def load_exported(path: str | os.PathLike, engine: str, device: str | torch.device = "cpu") -> ExportedNetwork:
    """Open an exported file (``engine``: ``torchscript`` or ``onnx``); see :class:`ExportedNetwork`."""
    return ExportedNetwork(path, engine, device)


def open_exported(
    model: str | os.PathLike | ModelFolder,
    engine: str,
    path: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    stage: str | int | None = None,
) -> ExportedNetwork:
    """The exported file the predictor runs for ``--engine``: ``path``, else ``model.ts`` / ``model.onnx``
    in the model folder, checked against the folder's settings (and ``stage``, when one is asked for).

    Args:
        model: the model folder (``model_dir``, or one opened already).
        engine: ``torchscript`` or ``onnx``.
        path: the exported file; default the engine's file in the model folder.
        device: where to run.
        stage: the stage the file must have been exported from; ``None``: any.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unknown engine, an unreadable file, or one exported from another model or stage.
    """
    if engine not in EXPORTED_FILES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    folder = model if isinstance(model, ModelFolder) else ModelFolder.open(model)
    path = Path(path) if path is not None else folder.path / EXPORTED_FILES[engine]
    network = ExportedNetwork(path, engine, device)
    network.check(folder.settings, folder.path)
    if stage is not None and get_stage(stage) != network.stage:
        raise ValueError(f"{path}: exported from {network.stage.name}, not {get_stage(stage).name}: export that stage "
                         f"(glsmonai export --stage {get_stage(stage).name})")
    return network
