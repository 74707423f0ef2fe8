"""``glsmonai bench``: how fast GLS runs on this machine, next to a MONAI ``BasicUNet`` of the same widths.

One process measures:

* **inference** throughput (images/s, ``torch.no_grad``, eval mode) of :class:`~glsmonai.networks.GLSNet`'s
  full forward (``output="fused"``) and of its global branch alone (``output="global"``), with
  ``crop_space`` working and original (the latter with ``local_size`` = ``crop_size`` and with the
  bundle's default, twice ``crop_size``), and of a ``BasicUNet``;
* **training** throughput (forward + loss + backward + Adam step) of each GLS stage (working crop space),
  of stage 1 with the shared heatmap decoders and stage 3 with the global branch frozen (the training-time
  savings, :data:`TRAINING_VARIANTS`), and of the ``BasicUNet`` with ``DiceCELoss``;
* **predict end to end**: ``glsmonai predict`` in a subprocess on N scans of a real scan size (wall
  time, peak resident memory of the process and of its children), against the time the network alone
  takes on the same scans;
* **re-segmentation** of one window on a scan of that size already open (``glsmonai review`` dragging a
  keypoint): :meth:`~glsmonai.inference.session.ScanSession.resegment`, which runs the local branch and the
  fusion of the moved keypoint's window only, pastes it into the kept global probability and post-processes
  the mask, per GLS configuration, plain and with the CPU preset's options (mirror TTA, the task's components).

``sections`` (``--sections``) chooses which of ``inference``, ``training``, ``predict`` and ``resegment`` run
(``glsmonai bench --sections resegment``: that figure alone, in about a minute on two cores).

Micro-benchmark figures are the median over ``repeats`` timed runs after ``warmup`` untimed ones (CUDA
is synchronised before the clock is read). They are measured in each requested precision the machine
supports: ``fp32``, ``bf16`` (autocast) and, on CUDA, ``fp16`` (autocast + ``GradScaler``). Ratios are
ratios of time (seconds per image of A over those of B: above 1, A is slower). The predict end-to-end
run is a single run per N (it is long, and its memory peak is that of one process); the network time
beside it is one pass over the same N scans after ``warmup`` untimed batches.

Results: ``<out>/bench.json`` (machine, settings, inference, training, ratios, predict, resegment) and
``<out>/bench.md`` (the same as markdown tables, the command line at the top).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import logging
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import monai
import numpy as np
import torch
import torch.nn as nn
from monai.losses import DiceCELoss
from monai.networks.nets import BasicUNet

from glsmonai.data.io import read_image
from glsmonai.engines.loss import GLSLoss
from glsmonai.networks import GLSNet
from glsmonai.precision import cpu_bf16_supported
from glsmonai.stages import STAGE_NAMES, enter_stage, get_stage
from glsmonai.utils import atomic_write

logger = logging.getLogger(__name__)

__all__ = ["BenchSettings", "command_line", "markdown_report", "run_bench", "write_report"]

#: autocast dtype of each precision (``fp32``: no autocast)
AUTOCAST_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}

#: distinct phantoms written for the predict runs (copied under new names up to N)
DISTINCT_SCANS = 8

#: what ``glsmonai bench`` can measure (``--sections``), in the order it measures them
SECTIONS: tuple[str, ...] = ("inference", "training", "predict", "resegment")

#: runs ``glsmonai.cli.main`` on its arguments, then prints the peak resident memory (``VmHWM``, else ``ru_maxrss``) of
#: the process and of its waited-for children (DataLoader workers) as JSON on the last stdout line
_PREDICT_WRAPPER = """\
import json, resource, sys
from glsmonai.cli import main
code = main(sys.argv[1:])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:  # Linux keeps ru_maxrss across exec, so it can be the bench's own peak; VmHWM is this process's alone
    peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
except (OSError, StopIteration):
    pass
usage = {"self": peak, "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}
print(json.dumps({"rc": code, "maxrss": usage}))
sys.exit(code)
"""


@dataclass
class BenchSettings:
    """What ``glsmonai bench`` measures (the CLI options; see ``glsmonai bench --help``).

    Attributes:
        image_size: working size ``(H, W)`` of the inference and training benchmarks.
        batch: images per forward pass.
        crop_size: GLS local window ``(h, w)`` in working pixels.
        channels: GLS encoder widths; the ``BasicUNet`` gets ``(*channels, channels[0])``.
        device: ``"cpu"`` or ``"cuda"``; ``None``: CUDA when available.
        repeats: timed runs per figure (the median is reported).
        warmup: untimed runs before them.
        predict_scans: scan counts N of the predict runs (none, or only zeros: skipped).
        scan_size: ``(rows, cols)`` of those scans (and of the original-space ``source``).
        predict_batch: scans per forward pass of the predict network time (and ``predict --batch-size``).
        precision: ``fp32``, ``bf16``, ``fp16``; those the machine lacks are skipped with a reason.
        out: folder of ``bench.json`` and ``bench.md``.
        sections: which of :data:`SECTIONS` to measure (the others are empty in the results).
    """

    image_size: tuple[int, int]
    batch: int
    crop_size: tuple[int, int]
    channels: tuple[int, ...]
    device: str | None
    repeats: int
    warmup: int
    predict_scans: tuple[int, ...]
    scan_size: tuple[int, int]
    predict_batch: int
    precision: tuple[str, ...]
    out: str
    sections: tuple[str, ...] = SECTIONS

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> BenchSettings:
        """The settings from parsed ``glsmonai bench`` options (sequences as tuples)."""
        values = {f.name: getattr(args, f.name) for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def check(self) -> None:
        """``ValueError`` naming the first option out of range."""
        positive = {"batch": [self.batch], "repeats": [self.repeats], "predict-batch": [self.predict_batch],
                    "image-size": self.image_size, "crop-size": self.crop_size, "scan-size": self.scan_size,
                    "channels": self.channels or [0]}
        for name, values in positive.items():
            if min(values) < 1:
                raise ValueError(f"--{name} must be positive, got {list(values)}")
        if self.warmup < 0 or any(n < 0 for n in self.predict_scans):
            raise ValueError("--warmup and --predict-scans must not be negative")
        unknown = [s for s in self.sections if s not in SECTIONS]
        if unknown or not self.sections:
            raise ValueError(f"--sections must name some of {list(SECTIONS)}, got {list(self.sections)}")


def command_line(settings: BenchSettings) -> str:
    """``glsmonai bench`` with every option of ``settings`` spelled out (defaults included)."""
    options = [
        ("--image-size", settings.image_size), ("--batch", settings.batch), ("--crop-size", settings.crop_size),
        ("--channels", settings.channels), ("--device", settings.device), ("--repeats", settings.repeats),
        ("--warmup", settings.warmup), ("--predict-scans", settings.predict_scans),
        ("--scan-size", settings.scan_size), ("--predict-batch", settings.predict_batch),
        ("--precision", settings.precision), ("--out", settings.out), ("--sections", settings.sections),
    ]
    words = ["glsmonai", "bench"]
    for flag, value in options:
        if value is not None:
            words += [flag, *(str(v) for v in (value if isinstance(value, (tuple, list)) else [value]))]
    return " ".join(words)


# ------------------------------------------------------------------------------------------ the machine


def resolve_device(name: str | None) -> torch.device:
    """``cpu`` / ``cuda``; ``None``: CUDA when available. ``ValueError`` for CUDA without a GPU."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device available")
    return torch.device(name)


def bf16_supported(device: torch.device) -> bool:
    """Whether the device runs bfloat16 natively (CPU: AVX-512 BF16 or AMX)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return cpu_bf16_supported()


def _cpu_model() -> str:
    """The CPU's ``model name`` from ``/proc/cpuinfo``, else :func:`platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(device: torch.device) -> dict:
    """CPU, thread count, library versions, device name and bfloat16 support."""
    cpu = _cpu_model()
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu,
        "bf16_supported": bf16_supported(device),
    }


def skip_reason(precision: str, device: torch.device) -> str | None:
    """Why ``precision`` cannot be measured on ``device``, or ``None`` when it can."""
    if precision == "fp16" and device.type != "cuda":
        return "fp16 autocast with GradScaler is measured on CUDA only"
    if precision == "bf16" and not bf16_supported(device):
        what = "torch.cuda.is_bf16_supported()" if device.type == "cuda" else "torch.cpu._is_avx512_bf16_supported()"
        return f"no native bfloat16 on this {device.type} ({what} is false)"
    return None


# ---------------------------------------------------------------------------------------------- timing


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``bf16`` / ``fp16``; nothing for ``fp32``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision])


def median_seconds(step: Callable[[], object], warmup: int, repeats: int, device: torch.device) -> float:
    """Median wall seconds of ``step()`` over ``repeats`` timed calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _row(name: str, precision: str, seconds: float, batch: int, **extra) -> dict:
    """One result row: ``seconds`` per batch and ``images_per_s``."""
    return {"name": name, "precision": precision, **extra, "batch": batch, "seconds": seconds,
            "images_per_s": batch / seconds}


# -------------------------------------------------------------------------------------------- networks


def gls_variants(crop_size: Sequence[int]) -> list[tuple[str, str, tuple[int, ...]]]:
    """``(label, crop_space, local_size)`` of the GLS configurations measured."""
    crop = tuple(int(c) for c in crop_size)
    return [
        ("working", "working", crop),
        ("original, local = crop", "original", crop),
        ("original, local = 2 x crop (bundle default)", "original", tuple(2 * c for c in crop)),
    ]


def build_gls(settings: BenchSettings, crop_space: str = "working", local_size: Sequence[int] | None = None,
              heatmap_decoder: str = "separate") -> GLSNet:
    """A seeded-random :class:`GLSNet` of the settings' crop size and widths."""
    return GLSNet(crop_size=settings.crop_size, channels=settings.channels, crop_space=crop_space,
                  local_size=local_size, keypoint_band=3, heatmap_decoder=heatmap_decoder)


#: training rows beyond the three stages as the thesis trains them: ``(row name, stage, heatmap_decoder, kept frozen)``
TRAINING_VARIANTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("GLS stage1, shared heatmap decoder", "stage1", "shared", ()),
    ("GLS stage1, shared_deep heatmap decoder", "stage1", "shared_deep", ()),
    ("GLS stage3, global branch frozen", "stage3", "separate", ("global_net",)),
)


def unet_features(channels: Sequence[int]) -> tuple[int, ...]:
    """``BasicUNet``'s six widths, ``(*channels, channels[0])``. ``BasicUNet`` has exactly five levels:
    fewer widths are extended by doubling the last one, more are cut."""
    widths = list(channels)
    while len(widths) < 5:
        widths.append(2 * widths[-1])
    return (*widths[:5], widths[0])


def build_unet(channels: Sequence[int]) -> BasicUNet:
    """MONAI ``BasicUNet`` (2D, one channel in and out) with :func:`unet_features`."""
    return BasicUNet(spatial_dims=2, in_channels=1, out_channels=1, features=unet_features(channels))


def original_inputs(settings: BenchSettings, device: torch.device) -> dict[str, torch.Tensor]:
    """The keyword inputs of an original-space forward: a random ``source`` ``(B, 1, H0, W0)`` of the scan
    size, ``to_source`` ``(B, 2, 3)`` = ``[[s, 0, 0], [0, s, 0]]`` with ``s = max(H0 / H, W0 / W)``, and
    ``window`` ``(B, 2)`` = ``crop_size * s`` original pixels."""
    b, (h, w), (h0, w0) = settings.batch, settings.image_size, settings.scan_size
    s = max(h0 / h, w0 / w)
    affine = torch.tensor([[s, 0.0, 0.0], [0.0, s, 0.0]], device=device)
    return {
        "source": torch.rand(b, 1, h0, w0, device=device),
        "to_source": affine.expand(b, 2, 3).contiguous(),
        "window": (torch.tensor(settings.crop_size, dtype=torch.float32, device=device) * s).expand(b, 2).contiguous(),
    }


def _images(settings: BenchSettings, device: torch.device) -> torch.Tensor:
    """``(B, 1, H, W)`` random working images."""
    return torch.rand(settings.batch, 1, *settings.image_size, device=device)


# ------------------------------------------------------------------------------------------- inference


def _inference_step(net: nn.Module, image: torch.Tensor, extra: dict, precision: str, device: torch.device) -> Callable:
    """One no-grad forward of ``net`` on ``image`` ``(B, 1, H, W)`` (and ``extra`` keyword inputs)."""

    def step() -> None:
        with torch.no_grad(), autocast(precision, device):
            net(image, **extra)

    return step


def inference_rows(settings: BenchSettings, device: torch.device, precision: str) -> list[dict]:
    """Images/s of GLS full and global-only forwards per crop-space variant, and of the BasicUNet."""
    image, rows = _images(settings, device), []
    timing = {"warmup": settings.warmup, "repeats": settings.repeats, "device": device}
    for label, crop_space, local_size in gls_variants(settings.crop_size):
        net = build_gls(settings, crop_space, local_size).to(device).eval()
        extra = original_inputs(settings, device) if crop_space == "original" else {}
        for name, output in (("GLS full", "fused"), ("GLS global", "global")):
            net.output = output
            seconds = median_seconds(_inference_step(net, image, extra, precision, device), **timing)
            rows.append(_row(name, precision, seconds, settings.batch, variant=label, crop_space=crop_space,
                             local_size=list(local_size), output=output))
            logger.info("inference %s %s [%s]: %.1f images/s", name, label, precision, rows[-1]["images_per_s"])
    unet = build_unet(settings.channels).to(device).eval()
    seconds = median_seconds(_inference_step(unet, image, {}, precision, device), **timing)
    rows.append(_row("BasicUNet", precision, seconds, settings.batch, variant="baseline", crop_space=None,
                     local_size=None, output=None))
    logger.info("inference BasicUNet [%s]: %.1f images/s", precision, rows[-1]["images_per_s"])
    return rows


# -------------------------------------------------------------------------------------------- training


def _train_step(net: nn.Module, image: torch.Tensor, loss_of: Callable, params: Iterable[nn.Parameter],
                precision: str, device: torch.device) -> Callable:
    """One training step: forward + ``loss_of(output)`` (under autocast), backward, Adam step
    (through a ``GradScaler``, which only scales for ``fp16``)."""
    optimizer = torch.optim.Adam(params, lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(precision, device):
            loss = loss_of(net(image))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


def _targets(settings: BenchSettings, keypoints: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Random valid targets: ``label`` ``(B, 1, H, W)`` 0/1, ``heatmap`` ``(B, K, H, W)`` in [0, 1]."""
    b, size = settings.batch, settings.image_size
    return {"label": (torch.rand(b, 1, *size, device=device) > 0.5).float(),
            "heatmap": torch.rand(b, keypoints, *size, device=device)}


def _gls_training_row(settings: BenchSettings, stage: str, image: torch.Tensor, precision: str,
                      device: torch.device, name: str | None = None, heatmap_decoder: str = "separate",
                      frozen: Sequence[str] = ()) -> dict:
    """Training images/s of one GLS stage (working crop space; the other parts, and ``frozen``, frozen)."""
    net = build_gls(settings, heatmap_decoder=heatmap_decoder).to(device)
    params = enter_stage(net, get_stage(stage), frozen)
    net.train()
    targets = _targets(settings, net.num_keypoints, device)
    loss = GLSLoss(stage, seg_loss=DiceCELoss(sigmoid=True), crop_size=settings.crop_size,
                   heatmap_loss=DiceCELoss(sigmoid=True), aux_weight=0.5)
    step = _train_step(net, image, lambda out: loss(out, targets), params, precision, device)
    seconds = median_seconds(step, settings.warmup, settings.repeats, device)
    return _row(name or f"GLS {stage}", precision, seconds, settings.batch, crop_space="working",
                trainable_params=sum(p.numel() for p in params))


def training_rows(settings: BenchSettings, device: torch.device, precision: str) -> list[dict]:
    """Training images/s of each GLS stage, of :data:`TRAINING_VARIANTS` and of the BasicUNet with ``DiceCELoss``."""
    image = _images(settings, device)
    rows = []
    for stage in STAGE_NAMES:
        rows.append(_gls_training_row(settings, stage, image, precision, device))
        logger.info("training GLS %s [%s]: %.1f images/s", stage, precision, rows[-1]["images_per_s"])
    for name, stage, heatmap_decoder, frozen in TRAINING_VARIANTS:
        rows.append(_gls_training_row(settings, stage, image, precision, device, name, heatmap_decoder, frozen))
        logger.info("training %s [%s]: %.1f images/s", name, precision, rows[-1]["images_per_s"])
    unet = build_unet(settings.channels).to(device).train()
    label, dice = _targets(settings, 1, device)["label"], DiceCELoss(sigmoid=True)
    step = _train_step(unet, image, lambda out: dice(out, label), unet.parameters(), precision, device)
    seconds = median_seconds(step, settings.warmup, settings.repeats, device)
    rows.append(_row("BasicUNet", precision, seconds, settings.batch, crop_space=None,
                     trainable_params=sum(p.numel() for p in unet.parameters())))
    logger.info("training BasicUNet [%s]: %.1f images/s", precision, rows[-1]["images_per_s"])
    return rows


# --------------------------------------------------------------------------------------------- predict


def _write_phantoms(folder: Path, n: int, scan_size: Sequence[int]) -> list[Path]:
    """``n`` distinct iris phantom scans of ``scan_size``; their paths."""
    from glsmonai.data.synth import write_phantom_dataset

    write_phantom_dataset("iris", folder, n, seed=0, size=scan_size)
    return sorted((folder / "images").glob("*.nii.gz"))


def _fill_scans(folder: Path, sources: Sequence[Path], n: int) -> None:
    """Copy ``sources`` cyclically into ``folder`` under new names until it holds ``n`` scans."""
    folder.mkdir(parents=True, exist_ok=True)
    have = len(list(folder.glob("*.nii.gz")))
    for i in range(have, n):
        shutil.copyfile(sources[i % len(sources)], folder / f"scan_{i:05d}.nii.gz")


def _write_untrained_model(folder: Path, settings: BenchSettings, crop_space: str = "working",
                           local_size: Sequence[int] | None = None) -> Path:
    """A model folder whose three stage checkpoints hold one seeded-random (untrained) :class:`GLSNet`."""
    from glsmonai.model_folder import stage_checkpoint, write_model_info
    from glsmonai.transforms.pipeline import DEFAULT_INTENSITY_PERCENTILES

    torch.manual_seed(0)
    net = GLSNet(crop_size=settings.crop_size, channels=settings.channels, keypoint_band=3, crop_space=crop_space,
                 local_size=local_size)
    write_model_info(folder, net, {"image_size": list(settings.image_size),
                                   "intensity_percentiles": list(DEFAULT_INTENSITY_PERCENTILES),
                                   "flip_swap": [[0, 1]], "num_components": 2, "label_value": None})
    for stage in STAGE_NAMES:
        torch.save(net.state_dict(), stage_checkpoint(folder, stage))
    return folder


def _child_env() -> dict[str, str]:
    """The environment of the subprocesses, with this checkout of ``glsmonai`` first on the path."""
    root = str(Path(__file__).resolve().parents[1])
    paths = [root, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def predict_has_batch_size() -> bool:
    """Whether ``glsmonai predict --help`` lists ``--batch-size`` (an option that newer versions add)."""
    help_text = subprocess.run([sys.executable, "-m", "glsmonai", "predict", "--help"], capture_output=True,
                               text=True, env=_child_env()).stdout
    found = "--batch-size" in help_text
    logger.info("glsmonai predict %s --batch-size", "takes" if found else "does not take")
    return found


def _rss_mib(kib_or_bytes: int) -> float:
    """``ru_maxrss`` in MiB (Linux reports KiB, macOS bytes)."""
    return kib_or_bytes / (1024 * 1024 if sys.platform == "darwin" else 1024)


def run_predict(scans: Path, out: Path, model: Path, device: torch.device, batch_size: int | None) -> dict:
    """``glsmonai predict`` in a subprocess: wall seconds, peak RSS (MiB) of it and of its largest child."""
    args = ["predict", "-i", str(scans), "-o", str(out), "-m", str(model), "--device", device.type]
    if batch_size is not None:
        args += ["--batch-size", str(batch_size)]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PREDICT_WRAPPER, *args], capture_output=True, text=True,
                          env=_child_env())
    seconds = time.perf_counter() - start
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"glsmonai predict failed (exit code {done.returncode}):\n{tail}")
    usage = json.loads(lines[-1])["maxrss"]
    return {"seconds": seconds, "peak_rss_main_mib": _rss_mib(usage["self"]),
            "peak_rss_children_mib": _rss_mib(usage["children"])}


def prepare_scan(predictor, path: Path) -> dict[str, torch.Tensor]:
    """A scan as the predictor's network takes it: ``image`` ``(1, H, W)`` and, for ``crop_space original``,
    ``source`` ``(1, H0, W0)``, ``to_source`` ``(2, 3)``, ``window`` ``(2,)`` (plain float tensors)."""
    raw, geometry = read_image(path)
    data = predictor.transforms({"image": torch.from_numpy(raw)[None], "geometry": geometry})
    keys = ("image", "source", "to_source", "window") if predictor.original else ("image",)
    plain = {k: data[k].as_tensor() if hasattr(data[k], "as_tensor") else data[k] for k in keys}
    return {k: torch.as_tensor(v).float() for k, v in plain.items()}


def _batch(prepared: Sequence[dict], indices: Iterable[int], device: torch.device) -> dict[str, torch.Tensor]:
    """The prepared scans at ``indices`` (cyclically) stacked into a batch on ``device``."""
    chosen = [prepared[i % len(prepared)] for i in indices]
    return {k: torch.stack([c[k] for c in chosen]).to(device) for k in chosen[0]}


def network_seconds(predictor, prepared: Sequence[dict], n: int, batch: int, warmup: int, device: torch.device) -> float:
    """Seconds ``predictor.network`` takes on ``n`` scans in batches of ``batch`` (no grad; twice per batch,
    the second flipped left-right, when the predictor mirrors), after ``warmup`` untimed batches."""
    passes = 2 if predictor.options.tta else 1
    starts = list(range(0, n, batch))
    total = 0.0
    with torch.no_grad():
        for i, start in enumerate([0] * warmup + starts):
            inputs = _batch(prepared, range(start, min(start + batch, n)), device)
            image = inputs.pop("image")
            _sync(device)
            began = time.perf_counter()
            for flipped in range(passes):
                predictor.network(image.flip(-1) if flipped else image, **inputs)
            _sync(device)
            total += (time.perf_counter() - began) if i >= warmup else 0.0
    return total


def predict_rows(settings: BenchSettings, device: torch.device, workdir: Path) -> list[dict]:
    """End-to-end ``glsmonai predict`` against the network time, one row per scan count N."""
    from glsmonai.inference import Predictor

    counts = sorted({int(n) for n in settings.predict_scans if n > 0})
    phantoms = _write_phantoms(workdir / "phantoms", min(DISTINCT_SCANS, counts[-1]), settings.scan_size)
    model = _write_untrained_model(workdir / "model", settings)
    batch_size = settings.predict_batch if predict_has_batch_size() else None
    predictor = Predictor(model, device)
    prepared = [prepare_scan(predictor, p) for p in phantoms]  # the copies are byte-identical to these
    rows = []
    for n in counts:
        _fill_scans(workdir / "scans", phantoms, n)
        run = run_predict(workdir / "scans", workdir / f"predicted_{n}", model, device, batch_size)
        network = network_seconds(predictor, prepared, n, settings.predict_batch, settings.warmup, device)
        rows.append({"name": "predict", "scans": n, "scan_size": list(settings.scan_size), "batch_size": batch_size,
                     "tta": predictor.options.tta, **run, "seconds_per_scan": run["seconds"] / n,
                     "network_seconds": network, "network_seconds_per_scan": network / n,
                     "end_to_end_over_network": run["seconds"] / network})
        logger.info("predict %d scans: %.1f s end to end, %.1f s network, peak RSS %.0f MiB", n, run["seconds"],
                    network, run["peak_rss_main_mib"])
    return rows


# ------------------------------------------------------------------------------------------- resegment

#: the prediction options of the re-segmentation rows: every option off, and the CPU preset's (bundles/gls/configs/cpu.json)
RESEGMENT_OPTIONS: dict[str, dict] = {"plain": {}, "tta+components": {"tta": True, "components": "task"}}


def _move(session, targets: Iterator) -> None:
    """Keypoint 0 of ``session`` to the next of ``targets``."""
    session.resegment(0, next(targets))


def resegment_rows(settings: BenchSettings, device: torch.device, workdir: Path) -> list[dict]:
    """Seconds to re-segment one window of an open scan of ``scan_size``, per GLS configuration and options, with
    PyTorch's threads as they are and with one thread (``glsmonai review --threads``, default 1).

    The scan is opened once (read, prepared, the global branch and every window run: ``open_seconds``); then
    keypoint 0 is moved back and forth between two points a tenth of a window either side of the model's own,
    each move one :meth:`~glsmonai.inference.session.ScanSession.resegment` (the median of ``repeats`` after
    ``warmup``), as ``glsmonai review`` does when a keypoint is dragged.
    """
    from glsmonai.inference import PLAIN, Predictor

    scan = _write_phantoms(workdir / "phantoms", 1, settings.scan_size)[0]
    threads = list(dict.fromkeys([torch.get_num_threads(), 1])) if device.type == "cpu" else [torch.get_num_threads()]
    default = torch.get_num_threads()
    rows = []
    try:
        for i, (label, crop_space, local_size) in enumerate(gls_variants(settings.crop_size)):
            model = _write_untrained_model(workdir / f"model_{i}", settings, crop_space, local_size)
            for name, changes in RESEGMENT_OPTIONS.items():
                for count in threads:
                    torch.set_num_threads(count)
                    predictor = Predictor(model, device, options=PLAIN, **changes)
                    began = time.perf_counter()
                    session = predictor.open(scan)
                    opened = time.perf_counter() - began
                    own = session.prediction.keypoints[0]
                    step = np.asarray(session.prediction.window_size or (10.0, 10.0)) / 10
                    upper = np.asarray(session.shape, dtype=np.float64) - 1
                    targets = itertools.cycle([np.clip(own - step, 0, upper), np.clip(own + step, 0, upper)])
                    seconds = median_seconds(functools.partial(_move, session, targets), settings.warmup,
                                             settings.repeats, device)
                    rows.append({"name": "resegment", "variant": label, "crop_space": crop_space,
                                 "local_size": list(local_size), "options": name, "threads": count,
                                 "scan_size": list(settings.scan_size), "precision": "fp32", "open_seconds": opened,
                                 "seconds": seconds})
                    logger.info("resegment %s [%s, %d thread(s)]: %.3f s per window (open %.1f s)", label, name, count,
                                seconds, opened)
    finally:
        torch.set_num_threads(default)
    return rows


# ---------------------------------------------------------------------------------------------- ratios


def _seconds(rows: Sequence[dict], **match) -> float:
    """``seconds`` of the one row whose fields equal ``match``."""
    return next(r["seconds"] for r in rows if all(r.get(k) == v for k, v in match.items()))


def ratios(inference: Sequence[dict], training: Sequence[dict], predict: Sequence[dict]) -> dict:
    """Time ratios (seconds per image of A over B) per precision, and the predict ratios and memory growth."""
    result: dict = {"meaning": "time ratios: seconds per image of A over those of B (above 1: A is slower)",
                    "inference_full_over_global": {}, "inference_global_over_basicunet": {},
                    "training_stage1_over_basicunet": {}}
    for precision in dict.fromkeys(r["precision"] for r in inference):
        rows = [r for r in inference if r["precision"] == precision]
        result["inference_full_over_global"][precision] = {
            v: _seconds(rows, name="GLS full", variant=v) / _seconds(rows, name="GLS global", variant=v)
            for v in dict.fromkeys(r["variant"] for r in rows if r["name"] == "GLS full")}
        result["inference_global_over_basicunet"][precision] = (
            _seconds(rows, name="GLS global", variant="working") / _seconds(rows, name="BasicUNet"))
    for precision in dict.fromkeys(r["precision"] for r in training):
        rows = [r for r in training if r["precision"] == precision]
        result["training_stage1_over_basicunet"][precision] = (
            _seconds(rows, name="GLS stage1") / _seconds(rows, name="BasicUNet"))
    result["predict_end_to_end_over_network"] = {str(r["scans"]): r["end_to_end_over_network"] for r in predict}
    if predict:
        first, last = predict[0], predict[-1]
        result["predict_memory_growth_mib"] = {
            "from_scans": first["scans"], "to_scans": last["scans"],
            "main": last["peak_rss_main_mib"] - first["peak_rss_main_mib"] + 0.0,  # + 0.0: no -0.0
            "children": last["peak_rss_children_mib"] - first["peak_rss_children_mib"] + 0.0}
    return result


# --------------------------------------------------------------------------------------------- running


def _precisions(settings: BenchSettings, device: torch.device) -> tuple[list[str], dict[str, str]]:
    """The requested precisions that run here, and a reason for each skipped one (logged)."""
    run, skipped = [], {}
    for precision in dict.fromkeys(settings.precision):
        reason = skip_reason(precision, device)
        if reason:
            skipped[precision] = reason
            logger.warning("skipping %s: %s", precision, reason)
        else:
            run.append(precision)
    return run, skipped


def run_bench(settings: BenchSettings) -> dict:
    """Run every benchmark of ``settings``; the ``bench.json`` content (see the module docstring)."""
    settings.check()
    device = resolve_device(settings.device)
    settings.device = device.type
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    precisions, skipped = _precisions(settings, device)
    if len(settings.channels) != 5:
        logger.warning("BasicUNet has five levels: widths %s for --channels %s", unet_features(settings.channels),
                       list(settings.channels))
    sections = set(settings.sections)
    inference = [row for p in precisions for row in inference_rows(settings, device, p)] if "inference" in sections else []
    training = [row for p in precisions for row in training_rows(settings, device, p)] if "training" in sections else []
    predict: list[dict] = []
    resegment: list[dict] = []
    if "predict" in sections and any(n > 0 for n in settings.predict_scans):
        Path(settings.out).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".bench-", dir=settings.out) as workdir:
            predict = predict_rows(settings, device, Path(workdir))
    if "resegment" in sections:
        Path(settings.out).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".bench-", dir=settings.out) as workdir:
            resegment = resegment_rows(settings, device, Path(workdir))
    info = {**asdict(settings), "command": command_line(settings), "skipped_precisions": skipped,
            "basicunet_features": list(unet_features(settings.channels)), "predict_weights": "untrained (seeded random)"}
    return {"machine": machine_info(device), "settings": info, "inference": inference, "training": training,
            "ratios": ratios(inference, training, predict), "predict": predict, "resegment": resegment}


# --------------------------------------------------------------------------------------------- reports


def _cell(value) -> str:
    """A table cell: floats to 4 significant digits, sizes as ``HxW``, ``None`` empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return str(value).replace("|", "/")


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """A markdown table of ``columns`` of ``rows`` (missing fields empty)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _ratio_rows(ratio: dict) -> list[dict]:
    """The per-precision time ratios as flat ``measure, precision, ratio`` rows."""
    rows = []
    for precision, by_variant in ratio["inference_full_over_global"].items():
        rows += [{"measure": f"inference: GLS full / GLS global ({v})", "precision": precision, "ratio": r}
                 for v, r in by_variant.items()]
    for key, measure in (("inference_global_over_basicunet", "inference: GLS global / BasicUNet"),
                         ("training_stage1_over_basicunet", "training: GLS stage1 / BasicUNet")):
        rows += [{"measure": measure, "precision": p, "ratio": r} for p, r in ratio[key].items()]
    rows += [{"measure": f"predict {n} scans: end to end / network", "precision": "fp32", "ratio": r}
             for n, r in ratio["predict_end_to_end_over_network"].items()]
    return rows


def _predict_section(result: dict) -> list[str]:
    """The predict part of ``bench.md``."""
    rows, growth = result["predict"], result["ratios"].get("predict_memory_growth_mib")
    if not rows:
        return ["## predict end to end", "", "Skipped (--predict-scans 0 or none, or not in --sections)."]
    lines = ["## predict end to end", "",
             "`glsmonai predict` in a subprocess, one run per N (overlays written), on copies of a few iris phantoms. "
             "The model folder holds untrained, seeded random weights: speed does not depend on the weights. "
             "`network_seconds`: the network alone on the same N scans (prepared beforehand, untimed). "
             "Peak resident memory (`VmHWM` of /proc/self/status; `ru_maxrss` would carry the bench's own peak "
             "across exec) of the predict process and of its largest child process "
             "(a DataLoader worker; 0 without workers).", "",
             markdown_table(rows, ["scans", "scan_size", "batch_size", "tta", "seconds", "seconds_per_scan",
                                   "network_seconds", "end_to_end_over_network", "peak_rss_main_mib",
                                   "peak_rss_children_mib"])]
    if growth:
        lines += ["", f"Peak memory growth from {growth['from_scans']} to {growth['to_scans']} scans: "
                  f"{growth['main']:.1f} MiB (process), {growth['children']:.1f} MiB (children)."]
    return lines


def _resegment_section(result: dict) -> list[str]:
    """The re-segmentation part of ``bench.md``."""
    rows = result.get("resegment") or []
    if not rows:
        return ["## Re-segmentation of one window", "", "Skipped (not in --sections)."]
    return ["## Re-segmentation of one window", "",
            "A scan of the predict size already open (`Predictor.open`: read, prepared, the global branch and every "
            "window run once, `open_seconds`); `seconds`: one `ScanSession.resegment(0, point)`, keypoint 0 moved a "
            "tenth of a window back and forth (the local branch and the fusion of its window, in both views with TTA; "
            "the windows pasted into the kept global probability; the mask thresholded and post-processed), as "
            "`glsmonai review` does when a keypoint is dragged (with one PyTorch thread by default, `--threads`). "
            "Untrained, seeded weights; fp32.", "",
            markdown_table(rows, ["variant", "options", "threads", "scan_size", "local_size", "open_seconds",
                                  "seconds"])]


def markdown_report(result: dict) -> str:
    """``bench.md``: the command, the machine, and the inference, training, ratio and predict tables."""
    s = result["settings"]
    timing = f"median of {s['repeats']} timed runs after {s['warmup']} warm-up runs"
    lines = ["# glsmonai bench", "", "```", s["command"], "```", "", "## Machine", "",
             markdown_table([{"item": k, "value": v} for k, v in result["machine"].items()], ["item", "value"])]
    lines += [f"- skipped {p}: {reason}" for p, reason in s["skipped_precisions"].items()]
    skipped = "Skipped (not in --sections)."
    lines += ["", f"## Inference (batch {s['batch']}, image {_cell(s['image_size'])}, no grad; {timing})", "",
              markdown_table(result["inference"], ["name", "variant", "precision", "output", "local_size", "seconds",
                                                   "images_per_s"]) if result["inference"] else skipped,
              "", f"## Training (forward + loss + backward + Adam step, batch {s['batch']}; {timing})", "",
              markdown_table(result["training"], ["name", "precision", "crop_space", "trainable_params", "seconds",
                                                  "images_per_s"]) if result["training"] else skipped,
              "", "## Ratios", "", result["ratios"]["meaning"] + ".", "",
              markdown_table(_ratio_rows(result["ratios"]), ["measure", "precision", "ratio"]), ""]
    return "\n".join(lines + _predict_section(result) + [""] + _resegment_section(result)) + "\n"


def write_report(result: dict, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``bench.json`` and ``bench.md`` into ``out_dir`` (atomically); their paths."""
    text, markdown = json.dumps(result, indent=1), markdown_report(result)
    json_path = atomic_write(Path(out_dir) / "bench.json", lambda tmp: tmp.write_text(text))
    md_path = atomic_write(Path(out_dir) / "bench.md", lambda tmp: tmp.write_text(markdown))
    logger.info("wrote %s and %s", json_path, md_path)
    return json_path, md_path
