"""Prediction: a folder of scans in, masks named like the inputs with their geometry out.

One :class:`Predictor` serves ``glsmonai predict`` and the bundle's ``inference.json``. A model folder
is self-describing: :data:`~glsmonai.model_folder.MODEL_INFO_FILE` records how the network was
built and how scans were prepared, so nothing else is needed.
"""

from __future__ import annotations

import csv
import fcntl
import logging
import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from glsmonai.data.datalist import scan_list
from glsmonai.data.io import IMAGE_EXTENSIONS, Geometry, find_partner, list_images, read_image, split_ext, write_mask
from glsmonai.data.pairs import foreground, prediction_path
from glsmonai.model_folder import load_trained, network_from_args, read_model_info
from glsmonai.networks import GLSKeys
from glsmonai.precision import autocast
from glsmonai.stages import later_output
from glsmonai.transforms.crop import paste_at_points, paste_windows, window_weights
from glsmonai.transforms.pipeline import prediction_transforms
from glsmonai.transforms.postprocess import MaskPostprocessing
from glsmonai.utils import atomic_write, stale_temporaries
from glsmonai.visualize import save_overlay

logger = logging.getLogger(__name__)

__all__ = ["PLAIN_OPTIONS", "Prediction", "Predictor", "run_inference", "PREDICT_EXTENSIONS"]

#: the prediction-time options switched off: the network's output as it is
PLAIN_OPTIONS: dict = {"tta": False, "components": 0, "blend": 0.0, "min_confidence": 0.0}

#: inputs that ``predict`` takes from a folder: every format the readers know
PREDICT_EXTENSIONS: tuple[str, ...] = IMAGE_EXTENSIONS


@dataclass
class Prediction:
    """One scan's prediction on its original grid.

    Attributes:
        mask: ``(rows, cols)`` uint8, 1 = structure.
        probability: ``(rows, cols)`` float32 foreground probability.
        keypoints: ``(K, 2)`` ``[row, col]`` in original pixels.
        scores: ``(K,)`` heatmap peak values.
        confidence: ``(K,)`` agreement of each keypoint with the predicted mask (1: the heatmap's
            strongest response lies on the predicted boundary; see ``decode_keypoints``).
        unsure: ``(K,)`` bool, the keypoints whose ``confidence`` is below the predictor's ``min_confidence``:
            their windows were not used (the global prediction stands there).
        window_size: ``(rows, cols)`` of the local windows in original pixels (``None`` for baselines).
        geometry: the scan's geometry.
        image: ``(rows, cols)`` the scan as read (for overlays).
    """

    mask: np.ndarray
    probability: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    confidence: np.ndarray
    unsure: np.ndarray
    window_size: tuple[float, float] | None
    geometry: Geometry
    image: np.ndarray


class Predictor:
    """Runs a trained GLS model folder on scans of any size.

    Args:
        model_dir: folder with :data:`MODEL_INFO_FILE` and ``stageN_best.pt`` checkpoints.
        device: ``"cpu"`` or ``"cuda"``; default CUDA when available.
        threshold: probability threshold of the mask.
        fusion: with ``False``, a stage-3 model of ``crop_space original`` puts the local prediction
            inside the windows instead of the fused one (the ablation "local alone vs fused").
        keypoint_band: override the model's keypoint search band (working pixels around the predicted
            boundary; 0: anywhere), e.g. to measure what the constraint does on a trained model.
        tta: mirror test-time augmentation: the scan is also predicted flipped left-right, and the two
            probability maps (and keypoints, with the model's ``flip_swap`` pairs swapped) are averaged.
        stage: predict with this stage's best checkpoint (e.g. ``"stage1"``: the global branch alone, which
            is the GS baseline of the thesis); default the latest stage trained.
        components: keep this many largest connected components of the mask and fill its holes
            (MONAI ``KeepLargestConnectedComponent``, ``FillHoles``); ``"task"``: the number the
            model folder records for its task (LV 1, iris 2); ``0``: no post-processing.
        blend: 0: the window predictions replace the global one inside the windows (a hard edge); ``> 0``
            (at most 0.5): they are blended in with a weight that is 1 in a window's middle and falls by
            a cosine ramp over this fraction of the window, from each side, to 0 at its border
            (:func:`~glsmonai.transforms.crop.feather_profile`; overlapping windows are averaged by their
            weights). With ``crop_space working`` the weight mixes the fused probability with the global
            one, so outside the windows the global probability stands instead of the fused one.
        min_confidence: keypoints whose ``confidence`` is below it are unsure: their windows are not
            used (the global probability stands there; with ``crop_space working``, inside an unsure
            window not covered by a kept one) and :attr:`Prediction.unsure` flags them. 0: off. With
            ``tta``, a keypoint is flagged when either pass dropped its window.
        amp: run the network in mixed precision (bfloat16 on a CPU with bf16 instructions, float16 on
            CUDA); the assembly and post-processing stay in float32. Default: as the model folder's
            ``predict`` block records (``"amp"``), else off.
        engine: ``"torch"`` (the network rebuilt from the settings, with a stage's checkpoint) or an
            exported file run in its place (:class:`~glsmonai.export.ExportedNetwork`): ``"torchscript"``
            (``model.ts``) or ``"onnx"`` (``model.onnx``, ONNX Runtime). Reading, TTA, assembling and
            writing are the same for every engine; exported files run in float32 and carry their stage and
            keypoint band.
        exported: the exported file for ``engine``; default ``model.ts`` / ``model.onnx`` in ``model_dir``
            (``glsmonai export -o DIR`` makes ``DIR`` such a folder).

    ``tta``, ``components``, ``blend`` and ``min_confidence`` left at ``None`` take the values the model
    folder records (the bundle's ``predict`` block; the CPU preset records the measured winner), else
    off (:data:`PLAIN_OPTIONS`); ``False`` / ``0`` switch one off explicitly.

    The latest trained stage is used: the fused output of stage 3, else the global output. With
    ``crop_space original`` the mask is assembled on the original grid: the global probability resized
    to it, replaced (or, with ``blend``, feathered) inside the windows by the fused (stage 3) or local
    (stage 2) prediction.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike,
        device: str | torch.device | None = None,
        threshold: float = 0.5,
        fusion: bool = True,
        keypoint_band: int | None = None,
        tta: bool | None = None,
        components: int | str | None = None,
        stage: str | int | None = None,
        blend: float | None = None,
        min_confidence: float | None = None,
        amp: bool | None = None,
        engine: str = "torch",
        exported: str | os.PathLike | None = None,
    ):
        model_dir = Path(model_dir)
        self.info = read_model_info(model_dir)
        # options left at None take what the model folder records (the bundle's "predict" block, e.g. the
        # CPU preset's), else off; 0 / False switch an option off explicitly
        recorded = {**PLAIN_OPTIONS, **(self.info.get("predict") or {})}
        tta = recorded["tta"] if tta is None else tta
        components = recorded["components"] if components is None else components
        blend = float(recorded["blend"] if blend is None else blend)
        min_confidence = float(recorded["min_confidence"] if min_confidence is None else min_confidence)
        if not 0 <= blend <= 0.5:
            raise ValueError(f"blend must be in [0, 0.5], got {blend}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.threshold = threshold
        self.fusion = fusion
        self.tta = tta
        self.amp = bool(recorded.get("amp", False) if amp is None else amp)
        self.blend, self.min_confidence = float(blend), float(min_confidence)
        if components == "task":
            components = self.info.get("num_components")
            if components is None:
                raise ValueError(f"{model_dir}: the model folder records no num_components for its task; give a number")
        self.postprocess = MaskPostprocessing(int(components)) if components else None
        # a left-right flip swaps these keypoint pairs (e.g. the two iris roots); old folders: none recorded
        self.flip_swap = [tuple(pair) for pair in self.info.get("flip_swap") or ()]
        if engine == "torch":
            self.network = network_from_args(self.info["network"])
        else:  # an exported file behind the network's contract; it knows its stage
            from glsmonai.export import open_exported

            self.network = open_exported(model_dir, engine, exported, self.device, self.info, stage)
        self.original = getattr(self.network, "crop_space", "working") == "original"
        if keypoint_band is not None and hasattr(self.network, "keypoint_band"):
            self.network.keypoint_band = int(keypoint_band)
        self.stage = load_trained(self.network, model_dir, stage) if engine == "torch" else self.network.stage
        if self.network.num_keypoints:  # keypoints (and so the local branch) are always reported
            self.network.output = later_output(self.stage.output, GLSKeys.LOCAL.value)
        self.network.to(self.device).eval()
        self.transforms = prediction_transforms(
            self.info["image_size"],
            self.info.get("intensity_percentiles", (0.5, 99.5)),
            crop_space=self.network.crop_space if self.network.num_keypoints else "working",
            crop_size=self.network.crop_size or None,
            crop_window=self.info.get("crop_window"),
            crop_window_mm=self.info.get("crop_window_mm"),
        )
        logger.info("model %s (%s, working size %s%s)", model_dir, self.stage.name, self.info["image_size"],
                    "" if engine == "torch" else f", {engine}: {self.network.path}")

    @property
    def preparer(self) -> ScanPreparer:
        """Turns a scan into the network's input views (picklable: DataLoader workers run it)."""
        return ScanPreparer(self.transforms, self.tta)

    @torch.no_grad()
    def predict(self, path: str | os.PathLike) -> Prediction:
        """Predict one scan; raises ``ValueError``/``FileNotFoundError`` naming the file on bad input."""
        raw, geometry = read_image(path)
        return self.predict_scan(raw, geometry)

    @torch.no_grad()
    def predict_scan(self, raw: np.ndarray, geometry: Geometry) -> Prediction:
        """Predict one ``(rows, cols)`` scan already read (the steps :func:`run_inference` spreads over
        worker processes, the network and a writer thread, in one call)."""
        views = self.preparer(raw, geometry)
        outputs = self.forward(views)
        return self.combine(raw, geometry, [self.assemble(out, view) for out, view in zip(outputs, views)])

    @torch.no_grad()
    def forward(self, views: Sequence[dict]) -> list[dict[str, torch.Tensor]]:
        """Run the network once on prepared views of any number of scans.

        Args:
            views: dicts from :class:`ScanPreparer` (``image`` ``(1, H, W)``; with ``crop_space original``
                also ``source`` ``(1, H0, W0)``, ``to_source`` ``(2, 3)``, ``window`` ``(2,)``).

        Returns:
            one output dict per view, on the CPU, shaped as for a batch of one (``(1, ...)``; the
            per-window outputs ``(K, ...)``).
        """
        images = torch.stack([_tensor(v["image"]).float() for v in views]).to(self.device)
        extra = {}
        if self.original:
            sources = [_tensor(v["source"]).float() for v in views]
            rows, cols = max(x.shape[-2] for x in sources), max(x.shape[-1] for x in sources)
            # zero-padded at the end to a common size, as training collates them (the windows sample zeros
            # outside a scan either way)
            padded = [F.pad(x, (0, cols - x.shape[-1], 0, rows - x.shape[-2])) for x in sources]
            extra = {
                "source": torch.stack(padded).to(self.device),
                "to_source": torch.stack([_tensor(v["to_source"]).float() for v in views]).to(self.device),
                "window": torch.stack([_tensor(v["window"]).float() for v in views]).to(self.device),
            }
        with autocast(self.device, getattr(self, "amp", False)):
            out = self.network(images, **extra)
        return _split_outputs(out, len(views), per_window=_PER_WINDOW | ({GLSKeys.FUSED.value} if self.original else set()))

    def assemble(self, out: dict[str, torch.Tensor], view: dict) -> tuple:
        """One view's network outputs -> probability on its scan's grid, keypoints, scores, confidence,
        window size in original pixels. Unsure keypoints' windows are not used."""
        grid = view["working_grid"]
        if GLSKeys.KEYPOINTS.value in out:
            points = grid.to_original(out[GLSKeys.KEYPOINTS.value][0].numpy())
            scores = out[GLSKeys.SCORES.value][0].numpy()
            confidence = out[GLSKeys.CONFIDENCE.value][0].numpy().copy()
            # a peak in the letterbox padding maps off the scan: put it on the scan's edge, with confidence
            # 0, so it is flagged unsure and its window is not used, rather than report invented coordinates
            upper = np.asarray(grid.original_shape, dtype=np.float64) - 1
            on_scan = np.clip(points, 0.0, upper)
            confidence[np.abs(on_scan - points).max(axis=1) > 0.5] = 0.0
            points = on_scan
        else:  # a baseline: no keypoints
            points, scores, confidence = np.zeros((0, 2)), np.zeros(0), np.zeros(0)
        keep = torch.from_numpy(~self._unsure(confidence))
        if self.original:
            prob = self._assemble_original(out, grid, keep)
            window = tuple(float(w) for w in _tensor(view["window"]))
        else:
            prob = self._assemble_working(out, grid, keep)
            window = tuple(float(c) / grid.scale for c in self.network.crop_size) if self.network.crop_size else None
        return prob, points, scores, confidence, window

    def combine(self, raw: np.ndarray, geometry: Geometry, results: Sequence[tuple]) -> Prediction:
        """The :meth:`assemble` results of a scan's views (plain, and flipped with ``tta``) -> its prediction."""
        prob, points, scores, confidence, window = results[0]
        unsure = self._unsure(confidence)
        if self.tta:
            prob_f, points_f, scores_f, confidence_f, _ = results[1]
            points_f = self._unflip_points(points_f, raw.shape[1])
            order = self._swap_order(len(points_f))
            unsure = unsure | self._unsure(confidence_f[order])
            prob = (prob + prob_f[:, ::-1]) / 2
            points = (points + points_f) / 2
            scores, confidence = (scores + scores_f[order]) / 2, (confidence + confidence_f[order]) / 2
        mask = (prob > self.threshold).astype(np.uint8)
        if self.postprocess is not None:
            mask = self.postprocess(mask)
        return Prediction(
            mask=mask,
            probability=prob.astype(np.float32),
            keypoints=points,
            scores=scores,
            confidence=confidence,
            unsure=unsure,
            window_size=window,
            geometry=geometry,
            image=raw,
        )

    def _unsure(self, confidence: np.ndarray) -> np.ndarray:
        """``(K,)`` bool: the keypoints of ``(K,)`` confidences whose windows are not used (below
        ``min_confidence``, or 0: a keypoint the network put off the scan)."""
        confidence = np.asarray(confidence)
        return (confidence < self.min_confidence) | (confidence <= 0)

    def _swap_order(self, k: int) -> np.ndarray:
        """Index ``(K,)`` that swaps the ``flip_swap`` pairs."""
        order = np.arange(k)
        for a, b in self.flip_swap:
            if max(a, b) < k:
                order[[a, b]] = order[[b, a]]
        return order

    def _unflip_points(self, points: np.ndarray, cols: int) -> np.ndarray:
        """Keypoints found on the flipped scan, back on the scan: columns mirrored, pairs swapped."""
        back = np.array(points, dtype=np.float64)
        back[:, 1] = cols - 1 - back[:, 1]
        return back[self._swap_order(len(back))]

    def _assemble_working(self, out: dict[str, torch.Tensor], grid, keep: torch.Tensor) -> np.ndarray:
        """The probability on the original grid: the global one, or with stage 3 the fused one mixed with it
        by ``share`` ``(1, H, W)``: 1 everywhere but in the windows of the keypoints not in ``keep`` ``(K,)``
        (where no kept window covers them), or with ``blend`` the kept windows' feather weights."""
        prob = torch.sigmoid(out[GLSKeys.GLOBAL.value][0])
        if self.stage.output == GLSKeys.FUSED.value:
            fused = torch.sigmoid(out[GLSKeys.FUSED.value][0])
            points, spatial = out[GLSKeys.KEYPOINTS.value][0], tuple(prob.shape[1:])
            crop = self.network.crop_size
            if self.blend > 0:
                share = _window_map(window_weights(crop, self.blend), points[keep], spatial)
            elif keep.all():
                share = torch.ones_like(prob)
            else:
                ones = torch.ones(crop)
                # 0 inside an unsure keypoint's window, unless a kept window covers the pixel too
                share = 1 - _window_map(ones, points[~keep], spatial) * (1 - _window_map(ones, points[keep], spatial))
            prob = share * fused + (1 - share) * prob
        return grid.image_to_original(prob, mode="bilinear")[0].numpy().astype(np.float32)

    def _assemble_original(self, out: dict[str, torch.Tensor], grid, keep: torch.Tensor) -> np.ndarray:
        """The global probability on the original grid, the window predictions of the keypoints in ``keep``
        ``(K,)`` pasted (``blend`` 0) or feathered (``blend > 0``) over it."""
        prob = grid.image_to_original(torch.sigmoid(out[GLSKeys.GLOBAL.value][0]), mode="bilinear")
        if self.stage.output == GLSKeys.GLOBAL.value:
            return prob[0].numpy().astype(np.float32)
        key = GLSKeys.FUSED.value if self.stage.output == GLSKeys.FUSED.value and self.fusion else GLSKeys.LOCAL.value
        windows = torch.sigmoid(out[key])[keep]
        centres, size = out[GLSKeys.CENTRES.value][0][keep], out[GLSKeys.WINDOW.value][0]
        return paste_windows(torch.as_tensor(prob), windows, centres, size, self.blend)[0].numpy().astype(np.float32)


def _window_map(weights: torch.Tensor, points: torch.Tensor, spatial: tuple[int, int]) -> torch.Tensor:
    """``(1, H, W)``: the ``(h, w)`` ``weights`` placed as the :func:`~glsmonai.transforms.crop.crop_at_points`
    window of each of ``points`` ``(K, 2)`` (working pixels), the maximum where windows overlap; 0 elsewhere."""
    if len(points) == 0:
        return torch.zeros(1, *spatial)
    return paste_at_points(weights.expand(len(points), 1, *weights.shape), points[None], spatial)[0]


#: outputs with one row per window, ``(B*K, ...)``, instead of one per image (see :class:`GLSKeys`)
_PER_WINDOW = frozenset({GLSKeys.LOCAL.value, GLSKeys.GLOBAL_WINDOWS.value})


def _tensor(value) -> torch.Tensor:
    """A plain tensor of a MetaTensor, array or tensor."""
    return value.as_tensor() if hasattr(value, "as_tensor") else torch.as_tensor(value)


def _split_outputs(out: dict[str, torch.Tensor], n: int, per_window: frozenset | set) -> list[dict[str, torch.Tensor]]:
    """A batch's output dict -> ``n`` dicts on the CPU, as if each image had run alone."""
    k = out[GLSKeys.KEYPOINTS.value].shape[1] if GLSKeys.KEYPOINTS.value in out else 0
    cpu = {key: value.detach().float().cpu() for key, value in out.items()}
    return [
        {key: value[i * k:(i + 1) * k] if key in per_window else value[i:i + 1] for key, value in cpu.items()}
        for i in range(n)
    ]


@dataclass
class ScanPreparer:
    """A scan read -> the network's input views: the scan, and with ``tta`` the scan flipped left-right.

    Small and picklable, so that DataLoader workers prepare scans while the network runs.
    """

    transforms: object
    tta: bool = False

    def __call__(self, raw: np.ndarray, geometry: Geometry) -> list[dict]:
        scans = [raw] + ([np.ascontiguousarray(raw[:, ::-1])] if self.tta else [])
        views = []
        for scan in scans:
            data = self.transforms({"image": torch.from_numpy(scan)[None], "geometry": geometry})
            views.append({key: _tensor(value) if hasattr(value, "as_tensor") else value for key, value in data.items()
                          if key != "geometry"})
        return views


@dataclass
class ReadScan:
    """One scan as a worker read and prepared it, or the reason it could not."""

    index: int
    path: Path
    raw: np.ndarray | None = None
    geometry: Geometry | None = None
    views: list[dict] = field(default_factory=list)
    error: str | None = None


class ScanReader(Dataset):
    """Reads and prepares scans (in DataLoader workers, ahead of the network); a bad file becomes a
    :class:`ReadScan` with its ``error`` instead of an exception, so the batch goes on."""

    def __init__(self, paths: Sequence[Path], preparer: ScanPreparer) -> None:
        self.paths, self.preparer = list(paths), preparer

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> ReadScan:
        path = self.paths[index]
        try:
            raw, geometry = read_image(path)
            return ReadScan(index, path, raw, geometry, self.preparer(raw, geometry))
        except (OSError, ValueError, RuntimeError) as err:
            return ReadScan(index, path, error=str(err))


def _as_list(items: list) -> list:
    """DataLoader ``collate_fn``: keep a batch as the list of its scans (their sizes differ)."""
    return items


class KeypointTable:
    """``keypoints.csv``, shared safely by concurrent ``predict`` runs and kept as the scans are done.

    Every change happens under an exclusive lock on a sibling lock file (``fcntl.flock``), so two
    processes writing into one output folder (two parts of a sharded run, say) never lose each other's
    rows. At the start, the rows of the scans this run is about to predict are dropped (they are being
    redone); each finished scan's rows are then appended in one write. A scan's rows are written after
    its mask and overlay, so a scan with rows in the table has all its outputs: ``--continue`` reads that.
    """

    COLUMNS = ("image", "k", "row", "col", "score", "confidence", "flag")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(f".{path.name}.lock")

    @contextmanager
    def _locked(self):
        with open(self.lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> list[list[str]]:
        """The table's data rows (a row cut short by a kill is dropped)."""
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as handle:
            rows = list(csv.reader(handle))
        return [row for row in rows[1:] if len(row) == len(self.COLUMNS)]

    def done(self) -> set[str]:
        """Names of the scans with rows in the table."""
        with self._locked():
            return {row[0] for row in self._read()}

    def start(self, redo: set[str]) -> None:
        """Drop the rows of the scans named in ``redo``; create the table if there is none."""
        with self._locked():
            # every rewrite of the table holds this lock: a temporary of it found now is a killed run's
            for leftover in stale_temporaries(self.path.parent, {self.path.name}):
                leftover.unlink(missing_ok=True)
            rows = [row for row in self._read() if row[0] not in redo]

            def write(tmp: Path) -> None:
                with open(tmp, "w", newline="") as handle:
                    csv.writer(handle).writerows([list(self.COLUMNS), *rows])

            atomic_write(self.path, write)

    def add(self, name: str, pred: Prediction) -> None:
        rows = [
            (name, k, round(float(r), 3), round(float(c), 3), round(float(s), 4), round(float(q), 4),
             "unsure" if u else "ok")
            for k, ((r, c), s, q, u) in enumerate(zip(pred.keypoints, pred.scores, pred.confidence, pred.unsure))
        ]
        with self._locked(), open(self.path, "a", newline="") as handle:  # one write per scan
            csv.writer(handle).writerows(rows)


def _overlay_names(paths: Sequence[Path]) -> dict[Path, str]:
    """``overlays/`` file name of each scan: ``<stem>.png``, or ``<stem>_<format>.png`` when two scans share
    a stem (``a.nii.gz`` and ``a.png`` would otherwise overwrite each other's overlay)."""
    stems = [split_ext(p)[0] for p in paths]
    names = {}
    for path, stem in zip(paths, stems):
        shared = stems.count(stem) > 1
        names[path] = f"{stem}_{split_ext(path)[1].lstrip('.').replace('.', '_').lower()}.png" if shared else f"{stem}.png"
    return names


def default_workers() -> int:
    """DataLoader workers for ``predict``: one core is left to the network (0 on a one-core machine)."""
    return max(0, min(2, (os.cpu_count() or 1) - 1))


def run_inference(
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    ckpt_dir: str | os.PathLike,
    labels_dir: str | os.PathLike | None = None,
    device: str | None = None,
    overlays: bool = True,
    raise_on_failure: bool = False,
    split: str = "testing",
    dataset_dir: str | os.PathLike | None = None,
    fusion: bool = True,
    keypoint_band: int | None = None,
    tta: bool | None = None,
    components: int | str | None = None,
    stage: str | int | None = None,
    blend: float | None = None,
    min_confidence: float | None = None,
    batch_size: int = 4,
    num_workers: int | None = None,
    amp: bool | None = None,
    num_parts: int = 1,
    part_id: int = 0,
    resume: bool = False,
    engine: str = "torch",
    exported: str | os.PathLike | None = None,
) -> list[tuple[str, str]]:
    """Predict every scan in ``input_dir`` (NIfTI, PNG, MetaImage, NRRD, JPEG, BMP, TIFF, DICOM), or
    every image of one ``split`` of a datalist JSON given as ``input_dir``.

    Writes ``<output_dir>/<name>_seg.<ext>`` (input size and geometry; JPEG inputs get PNG masks),
    ``keypoints.csv`` (image, k, row, col in original pixels to 1/1000, heatmap score, confidence, flag:
    ``unsure`` below ``min_confidence``, else ``ok``; see :class:`Predictor` for ``blend`` and ``min_confidence``) and
    ``overlays/<name>.png`` (references from ``labels_dir``, or from the datalist). A bad file is logged and skipped.

    The work runs as a pipeline: ``num_workers`` DataLoader workers read and prepare scans ahead
    (default :func:`default_workers`; 0: in this process), the network takes ``batch_size`` scans at a
    time, and one writer thread assembles each mask on its scan's grid and writes it, its overlay and
    its keypoint rows while the network goes on. At most two batches wait for the writer.

    With ``num_parts`` N > 1 this run predicts part ``part_id`` (0 .. N - 1) of the sorted scan list,
    every N-th scan from the ``part_id``-th, so N runs (machines, array jobs) cover every scan once; they
    may share ``output_dir`` (see :class:`KeypointTable`). With ``resume`` (``--continue``), scans
    whose outputs are complete (their rows are in ``keypoints.csv``, written after their mask and
    overlay; for models without keypoints, the mask and overlay exist) are skipped.

    ``engine`` and ``exported`` choose what runs the network (see :class:`Predictor`): the PyTorch
    network, or the TorchScript / ONNX file that ``glsmonai export`` wrote.

    Returns:
        ``(file, reason)`` for every file that failed.

    Raises:
        ValueError: ``output_dir`` is ``input_dir`` (outputs would mix with, and could overwrite, inputs).
        RuntimeError: with ``raise_on_failure``, after all files, when any failed.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if output_dir.resolve() == input_dir.resolve():
        raise ValueError(f"output folder {output_dir} is the input folder: choose another one")
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    if num_parts < 1 or not 0 <= part_id < num_parts:
        raise ValueError(f"part id {part_id} is not in 0 .. {num_parts - 1} (--num-parts {num_parts})")
    scans = scan_list(input_dir, split, dataset_dir)
    if not scans:
        raise FileNotFoundError(f"{input_dir}: no image files ({', '.join(PREDICT_EXTENSIONS)}) to predict")
    scans = scans[part_id::num_parts]
    predictor = Predictor(ckpt_dir, device, fusion=fusion, keypoint_band=keypoint_band, tta=tta, components=components,
                          stage=stage, blend=blend, min_confidence=min_confidence, amp=amp, engine=engine,
                          exported=exported)
    output_dir.mkdir(parents=True, exist_ok=True)
    references = list_images(labels_dir) if labels_dir else []
    table = KeypointTable(output_dir / "keypoints.csv")
    label_value = predictor.info.get("label_value")
    overlay_names = _overlay_names([path for path, _ in scans])
    total = len(scans)
    if resume:
        done = table.done()

        def complete(path: Path) -> bool:
            """Rows in the table (written last); for models without keypoints, the mask and overlay exist."""
            if predictor.network.num_keypoints:
                return path.name in done
            written = [prediction_path(output_dir, *split_ext(path))]
            return all(p.is_file() for p in written + ([output_dir / "overlays" / overlay_names[path]] if overlays else []))

        scans = [(path, label) for path, label in scans if not complete(path)]
        logger.info("--continue: %d of %d scans already complete, skipped", total - len(scans), total)
    table.start({path.name for path, _ in scans})
    # a run killed while writing leaves the temporary of that scan's mask or overlay: this run redoes it
    masks = {prediction_path(output_dir, *split_ext(path)).name for path, _ in scans}
    for leftover in stale_temporaries(output_dir, masks) + stale_temporaries(
            output_dir / "overlays", {overlay_names[path] for path, _ in scans}):
        leftover.unlink(missing_ok=True)

    def finish(scan: ReadScan, outputs: list[dict]) -> None:
        """On the writer thread: assemble, post-process and write one scan's outputs."""
        results = [predictor.assemble(out, view) for out, view in zip(outputs, scan.views)]
        pred = predictor.combine(scan.raw, scan.geometry, results)
        stem, ext = split_ext(scan.path)
        write_mask(prediction_path(output_dir, stem, ext), pred.mask, pred.geometry)
        if overlays:
            ref_path = find_partner(references, stem, ext) if references else scans[scan.index][1]
            reference = foreground(read_image(ref_path)[0], label_value) if ref_path is not None else None
            save_overlay(output_dir / "overlays" / overlay_names[scan.path], pred.image, pred.mask, reference,
                         pred.keypoints, pred.window_size)
        table.add(scan.path.name, pred)  # last: rows in the table mean the scan's outputs are complete

    workers = default_workers() if num_workers is None else int(num_workers)
    loader = DataLoader(ScanReader([path for path, _ in scans], predictor.preparer), batch_size=batch_size,
                        num_workers=workers, collate_fn=_as_list)
    failures: list[tuple[str, str]] = []

    def failed(path: Path, reason: str) -> None:
        reason = reason.removeprefix(f"{path}: ")  # the readers' messages name the file already
        logger.error("%s: %s", path, reason)
        failures.append((str(path), reason))

    pending: deque[tuple[ReadScan, Future]] = deque()

    def collect() -> None:
        scan, future = pending.popleft()
        try:
            future.result()
        except (OSError, ValueError, RuntimeError) as err:
            failed(scan.path, str(err))
        progress.update(1)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="glsmonai-writer") as writer, \
            tqdm(total=len(scans), desc="predict", unit="scan") as progress:
        for batch in loader:
            for scan in batch:
                if scan.error is not None:
                    failed(scan.path, scan.error)
                    progress.update(1)
            good = [scan for scan in batch if scan.error is None]
            try:
                outputs = predictor.forward([view for scan in good for view in scan.views]) if good else []
            except RuntimeError as err:  # e.g. out of memory: the batch fails, the run goes on
                for scan in good:
                    failed(scan.path, f"the network failed on its batch ({err})")
                progress.update(len(good))
                good = []
            start = 0
            for scan in good:
                pending.append((scan, writer.submit(finish, scan, outputs[start:start + len(scan.views)])))
                start += len(scan.views)
            while len(pending) > 2 * batch_size:
                collect()
        while pending:
            collect()
    logger.info("predicted %d of %d scans into %s%s", len(scans) - len(failures), len(scans), output_dir,
                f" ({total - len(scans)} complete before, skipped)" if resume else "")
    if failures:
        summary = "\n".join(f"  {f}: {r}" for f, r in failures)
        logger.error("%d scan(s) failed:\n%s", len(failures), summary)
        if raise_on_failure:
            raise RuntimeError(f"{len(failures)} scan(s) failed:\n{summary}")
    return failures
