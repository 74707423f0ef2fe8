"""Export a trained GLS model folder to TorchScript and ONNX (running the files is
:mod:`glsmonai.inference.exported_networks`'s business).

The whole forward pass is exported: the global branch, the keypoint decoding, the windows at the
keypoints, the local U-Net and the fusion network. The architecture comes from the model folder's
recorded settings (:data:`~glsmonai.model_folder.MODEL_INFO_FILE`), so no training override is
retyped::

    glsmonai export -m runs/mine/models                 # -> bundles/gls/models/{model.ts,model.onnx,...}
    glsmonai predict -i SCANS -o OUT -m bundles/gls/models --engine onnx

What an export folder holds:

* ``model.ts``: TorchScript (``torch.jit.trace``; the MONAI blocks and the decoder are written for
  tracing, not for ``torch.jit.script``);
* ``model.onnx``: ONNX (``torch.onnx.export``, the ``torch.export`` based exporter), weights inside;
* ``export.json``: the model settings, the stage exported, the input and output names, the torch and
  onnx versions, and the largest absolute difference of each file's outputs from PyTorch's on check
  inputs (two random scans of different sizes);
* ``gls_model.json``: a copy of the model folder's settings, so that the export folder is a model
  folder for ``glsmonai predict --engine torchscript|onnx`` (scans are prepared as in training).

The exported forward (:class:`ExportableGLS`) takes plain tensors and returns a tuple of tensors in
the order of :func:`output_names` (the names of :class:`~glsmonai.networks.GLSKeys`):

* ``crop_space working``: input ``image`` ``(B, C, H, W)``; outputs ``global`` ``(B, 1, H, W)``,
  ``heatmap`` ``(B, K, H, W)``, ``keypoints`` ``(B, K, 2)``, ``scores`` ``(B, K)``, ``confidence``
  ``(B, K)``, ``fused`` ``(B, 1, H, W)`` (logits of the fused mask on the working grid).
* ``crop_space original``: inputs ``image``, ``source`` ``(B, C, H0, W0)`` (the scans at original
  resolution, zero-padded at the end to a common size), ``to_source`` ``(B, 2, 3)`` and ``window``
  ``(B, 2)`` (see :meth:`~glsmonai.networks.GLSNet.forward`); outputs ``global``, ``heatmap``,
  ``keypoints``, ``scores``, ``confidence``, then ``local`` and ``fused`` ``(B*K, 1, h, w)`` (the windows'
  logits) and ``centres`` ``(B, K, 2)`` (the windows' centres in original pixels), which the predictor
  pastes onto the original grid.

What is fixed in the exported files: the channel count ``C``, the keypoint count ``K``, the window
sizes, the keypoint band and the device of a TorchScript trace (``--device``). Dynamic in both: the
batch size ``B`` and, with ``crop_space original``, the source size ``H0 x W0``. The working size
``H x W`` is the model's ``image_size`` in TorchScript (the trace fixes the global network's padding);
ONNX also takes other working sizes that are multiples of ``2 ** (levels - 1)`` (the global network's
padding multiple), when ``image_size`` is one. Every stage's export computes the whole forward; which
outputs the predictor uses is the stage's business (stage 1 and 2 models use the global or the local
prediction, as in PyTorch).

The MONAI way builds the same module from the bundle's ``inference.json`` (``network_def``: the model
folder ``@model_dir`` read by :func:`exportable_network`) and scripts it, which compiles a small module
around the trace (the file must go into an existing folder)::

    python -m monai.bundle ckpt_export network_def --filepath bundles/gls/models/model.ts \
        --ckpt_file runs/mine/models/stage3_best.pt --model_dir runs/mine/models \
        --config_file bundles/gls/configs/inference.json --meta_file bundles/gls/configs/metadata.json
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from glsmonai.inference.exported_networks import EXPORT_FORMAT, EXPORTED_FILES, load_exported
from glsmonai.model_folder import MODEL_INFO_FILE, ModelFolder, ModelSettings, NetworkArgs
from glsmonai.networks import GLSKeys, GLSNet
from glsmonai.stages import get_stage
from glsmonai.utils import atomic_write

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_EXPORT_DIR", "EXPORT_INFO_FILE", "EXPORTED_FILES", "ExportableGLS", "check_inputs", "export_model",
    "exportable_network", "input_names", "max_abs_diff", "output_names", "trace",
]

#: where ``glsmonai export`` writes by default: the model zoo's place for exported weights
DEFAULT_EXPORT_DIR = Path("bundles") / "gls" / "models"
#: what an export records beside its files
EXPORT_INFO_FILE = "export.json"

_COMMON_OUTPUTS = (GLSKeys.GLOBAL, GLSKeys.HEATMAP, GLSKeys.KEYPOINTS, GLSKeys.SCORES, GLSKeys.CONFIDENCE)


def input_names(crop_space: str) -> tuple[str, ...]:
    """The exported forward's inputs, in order."""
    return ("image",) if crop_space == "working" else ("image", "source", "to_source", "window")


def output_names(crop_space: str) -> tuple[str, ...]:
    """The exported forward's outputs, in order (values of :class:`GLSKeys`)."""
    extra = (GLSKeys.FUSED,) if crop_space == "working" else (GLSKeys.LOCAL, GLSKeys.FUSED, GLSKeys.CENTRES)
    return tuple(key.value for key in (*_COMMON_OUTPUTS, *extra))


class ExportableGLS(GLSNet):
    """:class:`GLSNet` with a forward pass for export: plain tensors in, a fixed tuple of tensors out.

    It has the parameters of :class:`GLSNet` under the same names, so a ``stageN_best.pt`` loads into it
    as it is (``monai.bundle ckpt_export --ckpt_file`` relies on that). It always runs the whole forward
    pass (``output`` is ``fused``). What the export records (:meth:`export_info`: stage, settings, input
    and output names) travels inside the module as the non-persistent ``uint8`` buffer
    ``export_info_json`` (JSON text), which a trace keeps, so a TorchScript file says what it is whoever
    saved it (``glsmonai export`` or ``monai.bundle ckpt_export``).

    ``torch.jit.script`` of this module (what ``monai.bundle ckpt_export`` does without ``--use_trace``)
    compiles a small module around its trace (:meth:`__prepare_scriptable__`): the MONAI blocks and the
    keypoint decoding are traceable, not scriptable.

    Args:
        image_size: the working size ``(H, W)`` the model was trained at (the exported input's size).
        stage: the stage whose checkpoint the module holds (recorded, not used by the forward pass).
        kwargs: :class:`GLSNet`'s arguments, as the model folder records them.
    """

    def __init__(self, image_size: Sequence[int], stage: str = "stage3", **kwargs) -> None:
        super().__init__(**kwargs)
        self.image_size = tuple(int(s) for s in image_size)
        self.stage_name = get_stage(stage).name
        self.output = GLSKeys.FUSED.value
        self.register_buffer("export_info_json", self._info_bytes(), persistent=False)

    def export_info(self) -> dict:
        """What the exported file records: contract version, stage, working size, inputs, outputs, the
        network's arguments and the device the parameters are on (where a trace runs)."""
        return {
            "format": EXPORT_FORMAT, "stage": self.stage_name, "image_size": list(self.image_size),
            "crop_space": self.crop_space, "inputs": list(input_names(self.crop_space)),
            "outputs": list(output_names(self.crop_space)), "network": self.build_args(),
            "device": next(self.parameters()).device.type,
        }

    def _info_bytes(self) -> torch.Tensor:
        """:meth:`export_info` as a ``uint8`` tensor of JSON text."""
        return torch.tensor(list(json.dumps(self.export_info()).encode()), dtype=torch.uint8)

    def forward(  # type: ignore[override]
        self,
        image: torch.Tensor,
        source: torch.Tensor | None = None,
        to_source: torch.Tensor | None = None,
        window: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """The whole GLS forward pass; the outputs in the order of :func:`output_names` (see the module
        docstring for the shapes)."""
        out = self._forward(image, source=source, to_source=to_source, window=window)
        return tuple(out[name] for name in output_names(self.crop_space))

    def __prepare_scriptable__(self) -> nn.Module:
        """What ``torch.jit.script(self)`` compiles: a small scriptable module around the trace of this one
        (on :func:`check_inputs`), with the same inputs, outputs and ``export_info_json``."""
        wrapper = _ScriptedWorking if self.crop_space == "working" else _ScriptedOriginal
        return wrapper(trace(self), self.export_info_json)


class _ScriptedWorking(nn.Module):
    """A traced :class:`ExportableGLS` (``crop_space working``) inside a module ``torch.jit.script`` compiles."""

    def __init__(self, traced: torch.jit.ScriptModule, export_info_json: torch.Tensor) -> None:
        super().__init__()
        self.traced = traced
        self.register_buffer("export_info_json", export_info_json.clone(), persistent=False)

    def forward(self, image: torch.Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        return self.traced(image)


class _ScriptedOriginal(nn.Module):
    """A traced :class:`ExportableGLS` (``crop_space original``) inside a module ``torch.jit.script`` compiles."""

    def __init__(self, traced: torch.jit.ScriptModule, export_info_json: torch.Tensor) -> None:
        super().__init__()
        self.traced = traced
        self.register_buffer("export_info_json", export_info_json.clone(), persistent=False)

    def forward(
        self, image: torch.Tensor, source: torch.Tensor, to_source: torch.Tensor, window: torch.Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        return self.traced(image, source, to_source, window)


def exportable_network(
    model_dir: str | os.PathLike, stage: str | int | None = None, load: bool = True
) -> ExportableGLS:
    """The network of a model folder, as :class:`ExportableGLS`, with a stage's best weights.

    This is the bundle's ``network_def`` for ``python -m monai.bundle ckpt_export`` (the architecture is
    read from ``model_dir``; ``--ckpt_file`` then loads the same or another checkpoint into it).

    Args:
        model_dir: a trained model folder (the bundle's ``model_dir``, alias ``ckpt_dir``).
        stage: the stage; default the latest one trained.
        load: load that stage's ``stageN_best.pt`` (else the weights are the initialisation).

    Raises:
        FileNotFoundError: not a model folder, or no checkpoint.
        ValueError: a baseline's folder, unreadable settings or a checkpoint that does not fit.
    """
    folder = ModelFolder.open(model_dir)
    network = folder.settings.network
    if network.baseline:
        raise ValueError(f"{folder.settings_file}: a {network.baseline} baseline; export takes GLS models only")
    chosen = get_stage(stage) if stage else folder.trained_stage()
    net = ExportableGLS(folder.settings.image_size, chosen.name, **network.to_dict())
    if load:
        folder.load(net, chosen)
    net.output = GLSKeys.FUSED.value
    return net.eval()


def check_inputs(net: ExportableGLS, shapes: Sequence[Sequence[int]] | None = None, seed: int = 0,
                 settings: ModelSettings | None = None) -> tuple[torch.Tensor, ...]:
    """Inputs of the exported forward for a batch of random scans, prepared as ``predict`` prepares them.

    Args:
        net: the network.
        shapes: ``(rows, cols)`` of each scan (default two scans, of sizes that differ from the working
            size and from each other, so the letterbox and, with ``crop_space original``, the source
            padding differ).
        seed: random seed of the scans.
        settings: the model folder's settings (intensity percentiles, window); default the network's own
            (working size and arguments, the other settings at their defaults).

    Returns:
        the inputs in the order of :func:`input_names`, as float32 CPU tensors.
    """
    settings = settings or ModelSettings(tuple(net.image_size), NetworkArgs(net.build_args()))
    h, w = net.image_size
    shapes = shapes or [(int(h * 1.5) + 3, int(w * 2)), (h * 2, int(w * 1.25) + 1)]
    transforms = settings.prediction_transforms(net)
    rng = np.random.default_rng(seed)
    views = []
    for shape in shapes:
        # a smooth random scan: noise blurred, so that the network's keypoints land on varied places
        raw = F.avg_pool2d(torch.from_numpy(rng.random(shape, dtype=np.float32))[None, None], 5, 1, 2)[0]
        views.append(transforms({"image": raw * 255, "geometry": None}))
    plain = [{k: (v.as_tensor() if hasattr(v, "as_tensor") else torch.as_tensor(v)) for k, v in view.items()
              if k in ("image", "source", "to_source", "window")} for view in views]
    image = torch.stack([v["image"].float() for v in plain])
    if net.crop_space == "working":
        return (image,)
    rows, cols = max(v["source"].shape[-2] for v in plain), max(v["source"].shape[-1] for v in plain)
    source = torch.stack([F.pad(v["source"].float(), (0, cols - v["source"].shape[-1], 0, rows - v["source"].shape[-2]))
                          for v in plain])
    return (image, source, torch.stack([v["to_source"].float() for v in plain]),
            torch.stack([v["window"].float() for v in plain]))


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence what tracing and the ONNX exporter report on every export, so a failure stands out.

    ``TracerWarning``: every one of them is about a shape (the input-size checks, the padding of the
    global network, the keypoint count), which the export fixes on purpose; the exported files are then
    checked against PyTorch on inputs of other batch and scan sizes. The exporter's loggers report each
    graph rewrite at INFO level.
    """
    loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir", "torch.onnx")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", module=r"torch\.onnx.*")
            warnings.filterwarnings("ignore", module=r"onnxscript.*")
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*")  # torch's own pytree, during torch.export
            yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)


def trace(net: ExportableGLS) -> torch.jit.ScriptModule:
    """``torch.jit.trace`` of the exported forward on :func:`check_inputs` (a batch of two scans), on the
    device of ``net``'s parameters."""
    net = net.eval()
    device = next(net.parameters()).device
    net.export_info_json = net._info_bytes().to(device)  # records the device the trace runs on
    with torch.no_grad(), _quiet():
        return torch.jit.trace(net, tuple(x.to(device) for x in check_inputs(net, seed=1)), check_trace=False)


def max_abs_diff(
    expected: Sequence[torch.Tensor], got: dict[str, torch.Tensor], names: Sequence[str]
) -> dict[str, float]:
    """Largest absolute difference of each named output of an exported file (``got``) from PyTorch's
    (``expected``, in the order of ``names``).

    Raises:
        ValueError: an output of another shape.
    """
    diffs = {}
    for name, want in zip(names, expected):
        have = got[name]
        if tuple(want.shape) != tuple(have.shape):
            raise ValueError(f"exported output {name!r} has shape {tuple(have.shape)}, PyTorch's {tuple(want.shape)}")
        diffs[name] = float((want.detach().float().cpu() - have.float().cpu()).abs().max()) if want.numel() else 0.0
    return diffs


def _export_onnx(net: ExportableGLS, path: Path) -> None:
    """``torch.onnx.export`` (the ``torch.export`` based exporter) of the exported forward, with a dynamic
    batch, a dynamic source size (``crop_space original``) and, when the working size is a multiple of
    what the global network pads to, dynamic working sizes of such multiples; the export information goes
    to the model's ``metadata_props`` (``glsmonai``)."""
    try:
        import onnxscript  # noqa: F401  (the torch.export based exporter needs it)
    except ImportError:
        raise ValueError("ONNX export needs onnx and onnxscript: pip install 'glsmonai[export]'") from None
    inputs = check_inputs(net, seed=1)
    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes: dict[str, dict[int, object]] = {"image": {0: batch}}
    multiple = net.global_net.multiple
    if all(s % multiple == 0 and s >= 2 * multiple for s in net.image_size):
        # the global network pads its input to a multiple of 2 ** (levels - 1): any such size runs unpadded
        shapes["image"].update({2: multiple * torch.export.Dim("image_rows_blocks", min=2, max=4096),
                                3: multiple * torch.export.Dim("image_cols_blocks", min=2, max=4096)})
    if net.crop_space == "original":
        shapes.update({"source": {0: batch, 2: torch.export.Dim("source_rows", min=2, max=65536),
                                  3: torch.export.Dim("source_cols", min=2, max=65536)},
                       "to_source": {0: batch}, "window": {0: batch}})
    names = input_names(net.crop_space)
    with torch.no_grad(), _quiet():
        program = torch.onnx.export(
            net, inputs, input_names=list(names), output_names=list(output_names(net.crop_space)),
            dynamic_shapes={name: shapes[name] for name in names}, external_data=False, dynamo=True, verbose=False,
        )
    program.model.metadata_props["glsmonai"] = json.dumps(net.export_info())
    atomic_write(path, lambda tmp: program.save(str(tmp), external_data=False))


def export_model(
    model_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    formats: Sequence[str] = tuple(EXPORTED_FILES),
    stage: str | int | None = None,
    device: str | torch.device = "cpu",
) -> dict:
    """Export a trained model folder and check each file against PyTorch.

    Writes ``model.ts`` and/or ``model.onnx``, ``export.json`` and, when ``out_dir`` is not ``model_dir``,
    a copy of ``gls_model.json`` into ``out_dir``. Each file is run on two check batches (two random
    scans, then one of another size, so neither the batch size nor, with ``crop_space original``, the
    source size of the trace is the one checked) and its largest absolute difference from PyTorch's
    outputs, per output, goes to ``export.json``.

    Args:
        model_dir: the trained model folder (``gls_model.json``, ``stageN_best.pt``).
        out_dir: where to write (default :data:`DEFAULT_EXPORT_DIR`).
        formats: ``torchscript`` and/or ``onnx``.
        stage: the stage to export; default the latest one trained.
        device: where the TorchScript trace runs (a trace keeps its device); ONNX is exported on the CPU
            and runs anywhere ONNX Runtime does.

    Returns:
        what ``export.json`` records.

    Raises:
        FileNotFoundError, ValueError: a bad model folder, stage or format (one line, naming it).
    """
    model_dir = Path(model_dir)
    out_dir = Path(out_dir) if out_dir is not None else DEFAULT_EXPORT_DIR
    if not formats or any(f not in EXPORTED_FILES for f in formats):
        raise ValueError(f"export formats must be among {list(EXPORTED_FILES)}, got {list(formats)}")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device here; trace on the CPU (--device cpu) or on a machine with one")
    settings = ModelFolder.open(model_dir).settings
    net = exportable_network(model_dir, stage)
    checks = [check_inputs(net, seed=2, settings=settings),
              check_inputs(net, shapes=[(net.image_size[0] + 7, net.image_size[1] * 3 - 1)], seed=3, settings=settings)]
    names = output_names(net.crop_space)
    record: dict = {
        **net.export_info(), "model_dir": str(model_dir), "settings": settings.to_dict(), "torch": torch.__version__,
        "files": {},
        "check_inputs": [{name: list(t.shape) for name, t in zip(input_names(net.crop_space), inputs)}
                         for inputs in checks],
    }
    for fmt in formats:
        path = out_dir / EXPORTED_FILES[fmt]
        where = torch.device(device) if fmt == "torchscript" else torch.device("cpu")
        net.to(where)
        logger.info("exporting %s (%s) to %s", model_dir, net.stage_name, path)
        if fmt == "torchscript":
            traced = trace(net)
            atomic_write(path, lambda tmp: torch.jit.save(traced, str(tmp)))  # noqa: B023 (called at once)
        else:
            _export_onnx(net, path)
            import onnx
            import onnxruntime

            record.update({"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__})
        exported = load_exported(path, fmt, where)
        diffs: dict[str, float] = {}
        for inputs in checks:
            with torch.no_grad():
                want = net(*[x.to(where) for x in inputs])
            for name, value in max_abs_diff(want, exported.run(inputs), names).items():
                diffs[name] = max(diffs.get(name, 0.0), value)
        record["files"][fmt] = {"file": path.name, "device": where.type, "max_abs_diff": diffs,
                                "max_abs_diff_all": max(diffs.values())}
        logger.info("%s: largest difference from PyTorch %.3g (%s)", path.name, max(diffs.values()),
                    ", ".join(f"{k} {v:.3g}" for k, v in diffs.items()))
    record["device"] = torch.device(device).type
    if out_dir.resolve() != model_dir.resolve():
        copy = json.dumps(settings.to_dict(), indent=1)
        atomic_write(out_dir / MODEL_INFO_FILE, lambda tmp: tmp.write_text(copy))
    text = json.dumps(record, indent=1)
    atomic_write(out_dir / EXPORT_INFO_FILE, lambda tmp: tmp.write_text(text))
    return record
