"""The predictor: a trained model folder run on scans of any size, one scan or a batch at a time.

One :class:`Predictor` serves ``glsmonai predict``, the bundle's ``inference.json``, ``compare`` and the Python
API (``docs/python-api.md``). A model folder is self-describing (:class:`~glsmonai.model_folder.ModelFolder`):
it records how the network was built, how scans were prepared and how to predict, so nothing else is needed.

The steps, which the folder run (:mod:`glsmonai.inference.folder_run`) spreads over reader processes, the
network and a writer thread: prepare a scan's views (:attr:`Predictor.preparer`), run the network on a batch
of views (:meth:`Predictor.forward`), bring each view's outputs back to its scan's grid
(:meth:`Predictor.assemble`) and average a scan's views and post-process (:meth:`Predictor.combine`).

Several model folders (``Predictor([fold0, fold1, ...])``, ``predict -m FOLD0 FOLD1 ...``) are one fold ensemble,
as nnU-Net predicts with its five folds: the members' global probabilities and keypoint heatmaps are averaged,
the keypoints are decoded once from the averages, each member's local branch and fusion run on the windows at
those shared keypoints, and the members' final probabilities are averaged (per view: with TTA each view has its
own keypoints, and the two views are averaged as for one model). The members must agree on what makes the
average meaningful (:data:`ENSEMBLE_TERMS`); the first member's settings and recorded options serve them all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from glsmonai.data.io import Geometry, read_image
from glsmonai.inference.data_iterators import ScanPreparer
from glsmonai.inference.data_iterators import as_tensor as _tensor
from glsmonai.inference.exported_networks import open_exported
from glsmonai.inference.options import PredictOptions
from glsmonai.model_folder import ModelFolder
from glsmonai.networks import GLSKeys
from glsmonai.precision import autocast
from glsmonai.stages import Stage, later_output
from glsmonai.transforms.crop import paste_at_points, paste_windows, window_weights
from glsmonai.transforms.postprocess import MaskPostprocessing

logger = logging.getLogger(__name__)

__all__ = ["ENSEMBLE_TERMS", "Member", "Prediction", "Predictor", "mean_probability_logits"]


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
        source: ``(K,)`` where each keypoint came from: ``model`` (its heatmap peak) or ``user`` (given as a
            prompt, :mod:`glsmonai.inference.session`); ``None`` at construction: every keypoint the model's.
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
    source: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.source is None:
            self.source = np.full(len(self.keypoints), "model", dtype=object)


class Member(NamedTuple):
    """One model folder of a :class:`Predictor` (of an ensemble's members)."""

    folder: ModelFolder
    network: torch.nn.Module
    stage: Stage


#: what the members of an ensemble must agree on (the first member's values serve them all)
ENSEMBLE_TERMS: tuple[str, ...] = (
    "working size", "intensity percentiles", "input channels", "keypoint count", "keypoint names", "keypoint rule",
    "flip pairs", "crop space", "crop size", "crop window", "crop window (mm)", "keypoint band", "stage",
)


def _ensemble_terms(folder: ModelFolder, network: torch.nn.Module, stage: Stage) -> dict[str, object]:
    """A member's values of :data:`ENSEMBLE_TERMS`: the same preprocessing (so one preparer serves all), keypoints
    of the same meaning (so their heatmaps may be averaged), windows of the same size and place, one stage."""
    settings = folder.settings
    values = (settings.image_size, settings.intensity_percentiles, settings.network.in_channels,
              network.num_keypoints, settings.keypoint_names, settings.keypoint_rule, settings.flip_swap,
              getattr(network, "crop_space", None), tuple(network.crop_size or ()), settings.crop_window,
              settings.crop_window_mm, getattr(network, "keypoint_band", None), stage.name)
    return dict(zip(ENSEMBLE_TERMS, values))


class Predictor:
    """Runs a trained GLS model folder (or a baseline's) on scans of any size.

    Args:
        model_dir: the trained model folder (:data:`~glsmonai.model_folder.MODEL_INFO_FILE` and
            ``stageN_best.pt`` checkpoints; or a folder ``glsmonai export`` wrote, for an exported ``engine``),
            or a list of several: a fold ensemble (engine ``torch`` only; see the module's description).
        device: ``"cpu"`` or ``"cuda"``; default CUDA when available.
        options: how to predict (:class:`~glsmonai.inference.options.PredictOptions`); default: every option
            as the model folder records it.
        **changes: fields of :class:`~glsmonai.inference.options.PredictOptions` changed from ``options``
            (``Predictor(folder, tta=True)`` is ``Predictor(folder, options=PredictOptions(tta=True))``).

    The options are resolved once against the model folder (:meth:`PredictOptions.resolve`: unset ones take
    what it records, else off) and kept as :attr:`options`. An ensemble's options are resolved against its
    first member; a member whose recorded options resolve differently, or that disagrees on one of
    :data:`ENSEMBLE_TERMS`, is refused in one line naming its folder.

    The latest trained stage is used unless ``options.stage`` names one: the fused output of stage 3, else
    the global output. With ``crop_space original`` the mask is assembled on the original grid: the global
    probability resized to it, replaced (or, with ``blend``, feathered) inside the windows by the fused
    (stage 3) or local (stage 2) prediction.

    Attributes:
        folder: the model folder and its settings (an ensemble's first member).
        options: the resolved options.
        network: the network (or the exported file standing in for it), in evaluation mode on ``device``
            (an ensemble's first member's).
        stage: the stage whose checkpoint runs.
        members: every member's folder, network and stage, the first one's being the above (one for one folder).
        transforms: the deterministic preprocessing of a scan (as in training).
    """

    #: the members (class default for predictors made without :meth:`__init__`)
    members: tuple[Member, ...] = ()

    def __init__(
        self,
        model_dir: str | os.PathLike | Sequence[str | os.PathLike],
        device: str | torch.device | None = None,
        options: PredictOptions | None = None,
        **changes: object,
    ) -> None:
        model_dirs = [model_dir] if isinstance(model_dir, str | os.PathLike) else list(model_dir)
        if not model_dirs:
            raise ValueError("no model folder given")
        model_dir = model_dirs[0]
        self.folder = ModelFolder.open(model_dir)
        settings = self.folder.settings
        options = (options or PredictOptions()).replace(**changes)
        self.options = options.resolve(settings, self.folder.path)
        if len(model_dirs) > 1 and self.options.engine != "torch":
            raise ValueError(f"--engine {self.options.engine} predicts with one model folder; an ensemble of "
                             f"{len(model_dirs)} runs with --engine torch")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.postprocess = MaskPostprocessing(self.options.components) if self.options.components else None
        # a left-right flip swaps these keypoint pairs (e.g. the two iris roots); old folders: none recorded
        self.flip_swap = list(settings.flip_swap)
        engine = self.options.engine
        if engine == "torch":
            self.network = self.folder.build_network()
        else:  # an exported file behind the network's contract; it knows its stage
            self.network = open_exported(self.folder, engine, self.options.exported, self.device, self.options.stage)
        self.original = getattr(self.network, "crop_space", "working") == "original"
        if self.options.keypoint_band is not None and hasattr(self.network, "keypoint_band"):
            self.network.keypoint_band = int(self.options.keypoint_band)
        self.stage = self.folder.load(self.network, self.options.stage) if engine == "torch" else self.network.stage
        if self.network.num_keypoints:  # keypoints (and so the local branch) are always reported
            self.network.output = later_output(self.stage.output, GLSKeys.LOCAL.value)
        self.network.to(self.device).eval()
        self.transforms = settings.prediction_transforms(self.network)
        logger.info("model %s (%s, working size %s%s)", self.folder.path, self.stage.name, list(settings.image_size),
                    "" if engine == "torch" else f", {engine}: {self.network.path}")
        self.members = (Member(self.folder, self.network, self.stage),)
        if len(model_dirs) > 1:
            self.members += tuple(self._open_member(path, options) for path in model_dirs[1:])
            logger.info("fold ensemble of %d members", len(self.members))

    @property
    def folders(self) -> tuple:
        """The members' model folders, in order (one for one folder)."""
        return tuple(member.folder.path for member in self.members)

    def _open_member(self, model_dir: str | os.PathLike, options: PredictOptions) -> Member:
        """Another member of the ensemble, its network loaded on the device; refused in one line naming its
        folder when it disagrees with the first member (:data:`ENSEMBLE_TERMS`, the resolved options)."""
        folder = ModelFolder.open(model_dir)
        resolved = options.resolve(folder.settings, folder.path)
        for name in PredictOptions.RECORDED:
            if getattr(resolved, name) != getattr(self.options, name):
                raise ValueError(f"{folder.path}: prediction option {name} is {getattr(resolved, name)!r} as recorded "
                                 f"there, {getattr(self.options, name)!r} for the first member {self.folder.path}; set "
                                 "it explicitly to predict them as one ensemble")
        network = folder.build_network()
        if options.keypoint_band is not None and hasattr(network, "keypoint_band"):
            network.keypoint_band = int(options.keypoint_band)
        stage = folder.load(network, options.stage)
        theirs, ours = _ensemble_terms(folder, network, stage), _ensemble_terms(self.folder, self.network, self.stage)
        for name, value in theirs.items():
            if value != ours[name]:
                raise ValueError(f"{folder.path}: its {name} {value!r} differs from {ours[name]!r} of "
                                 f"{self.folder.path}; the members of an ensemble must agree on it")
        if network.num_keypoints:
            network.output = later_output(stage.output, GLSKeys.LOCAL.value)
        network.to(self.device).eval()
        logger.info("member %s (%s)", folder.path, stage.name)
        return Member(folder, network, stage)

    @property
    def tta(self) -> bool:
        """``options.tta``: the scan is also predicted mirrored."""
        return self.options.tta

    @property
    def blend(self) -> float:
        """``options.blend``."""
        return self.options.blend

    @property
    def min_confidence(self) -> float:
        """``options.min_confidence``."""
        return self.options.min_confidence

    @property
    def preparer(self) -> ScanPreparer:
        """Turns a scan into the network's input views (picklable: DataLoader workers run it)."""
        return ScanPreparer(self.transforms, self.options.tta)

    @torch.no_grad()
    def predict(self, path: str | os.PathLike, keypoints: np.ndarray | None = None) -> Prediction:
        """Predict one scan file; raises ``ValueError``/``FileNotFoundError`` naming the file on bad input.
        ``keypoints``: as for :meth:`predict_array`."""
        raw, geometry = read_image(path)
        return self.predict_array(raw, geometry, keypoints)

    @torch.no_grad()
    def predict_array(self, image: np.ndarray, geometry: Geometry | None = None,
                      keypoints: np.ndarray | None = None) -> Prediction:
        """Predict one ``(rows, cols)`` scan already read (the steps the folder run spreads over reader
        processes, the network and a writer thread, in one call).

        Args:
            image: the scan, rows first (as :func:`~glsmonai.data.io.read_image` gives it).
            geometry: its geometry; ``None``: unknown (unit spacing; a window in mm cannot be used).
            keypoints: ``(K, 2)`` ``[row, col]`` keypoints given as prompts, in the scan's pixels: they replace
                the heatmap peaks, and the local branch and the fusion run in their windows (NaN rows: the
                model's own; :mod:`glsmonai.inference.session`). Their ``source`` is ``user``.
        """
        if keypoints is not None:
            return self.session(image, geometry, keypoints).prediction
        views = self.preparer(image, geometry)
        outputs = self.forward(views)
        return self.combine(image, geometry, [self.assemble(out, view) for out, view in zip(outputs, views)])

    def session(self, image: np.ndarray, geometry: Geometry | None = None, keypoints: np.ndarray | None = None):
        """A scan held open (:class:`~glsmonai.inference.session.ScanSession`): predicted once (at ``keypoints``,
        as :meth:`predict_array`), then :meth:`~glsmonai.inference.session.ScanSession.resegment` moves one
        keypoint and runs only the local branch and the fusion of its window."""
        from glsmonai.inference.session import ScanSession

        return ScanSession(self, image, geometry, keypoints)

    def open(self, path: str | os.PathLike, keypoints: np.ndarray | None = None):
        """:meth:`session` of a scan file (``ValueError`` / ``FileNotFoundError`` naming a bad file)."""
        raw, geometry = read_image(path)
        return self.session(raw, geometry, keypoints)

    @torch.no_grad()
    def forward(self, views: Sequence[dict]) -> list[dict[str, torch.Tensor]] | list[list[dict[str, torch.Tensor]]]:
        """Run the network once on prepared views of any number of scans.

        Args:
            views: dicts from :class:`ScanPreparer` (``image`` ``(1, H, W)``; with ``crop_space original``
                also ``source`` ``(1, H0, W0)``, ``to_source`` ``(2, 3)``, ``window`` ``(2,)``).

        Returns:
            one output dict per view, on the CPU, shaped as for a batch of one (``(1, ...)``; the
            per-window outputs ``(K, ...)``); for an ensemble, one list per view of every member's output
            dict at the keypoints they share (:meth:`_forward_ensemble`).
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
        if len(self.members) > 1:
            return self._forward_ensemble(images, extra, len(views))
        with autocast(self.device, self.options.amp):
            out = self.network(images, **extra)
        return _split_outputs(out, len(views), per_window=_PER_WINDOW | ({GLSKeys.FUSED.value} if self.original else set()))

    def _forward_ensemble(self, images: torch.Tensor, extra: dict, n: int) -> list[list[dict[str, torch.Tensor]]]:
        """The ensemble's forward pass on a batch: every member's global branch; their global probabilities and
        keypoint heatmaps averaged (:func:`mean_probability_logits`) and the keypoints decoded once from the
        averages (the first member's band and separation: the members agree on them); then every member's
        windows, local branch and fusion at those keypoints, the fusion with the member's own global output.
        Baselines (no keypoints) run whole; their probabilities are averaged by :meth:`assemble`."""
        per_window = _PER_WINDOW | ({GLSKeys.FUSED.value} if self.original else set())
        networks = [member.network for member in self.members]
        with autocast(self.device, self.options.amp):
            outs = [network(images) if not network.num_keypoints else network.forward_global(images)
                    for network in networks]
        if self.network.num_keypoints:
            found = self.network.find_keypoints(
                mean_probability_logits([out[GLSKeys.GLOBAL.value] for out in outs]),
                mean_probability_logits([out[GLSKeys.HEATMAP.value] for out in outs]))
            outs = [{**out, **found} for out in outs]
            if self.stage.output != GLSKeys.GLOBAL.value:  # stage 1 uses the global outputs alone
                with autocast(self.device, self.options.amp):
                    outs = [network.forward_local(images, out, **extra) for network, out in zip(networks, outs)]
        members = [_split_outputs(out, n, per_window) for out in outs]
        return [list(views) for views in zip(*members)]

    def assemble(self, out: dict[str, torch.Tensor], view: dict) -> tuple:
        """One view's network outputs -> probability on its scan's grid, keypoints, scores, confidence,
        window size in original pixels. Unsure keypoints' windows are not used.

        ``out`` may be an ensemble's list of member outputs (:meth:`forward`): their probabilities are averaged
        (their keypoints are the same)."""
        if isinstance(out, list):
            results = [self.assemble(member, view) for member in out]
            return (sum(r[0] for r in results) / len(results), *results[0][1:])
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

    def combine(self, raw: np.ndarray, geometry: Geometry | None, results: Sequence[tuple]) -> Prediction:
        """The :meth:`assemble` results of a scan's views (plain, and flipped with ``tta``) -> its prediction."""
        prob, points, scores, confidence, window = results[0]
        unsure = self._unsure(confidence)
        if self.options.tta:
            prob_f, points_f, scores_f, confidence_f, _ = results[1]
            points_f = self._unflip_points(points_f, raw.shape[1])
            order = self._swap_order(len(points_f))
            unsure = unsure | self._unsure(confidence_f[order])
            prob = (prob + prob_f[:, ::-1]) / 2
            points = (points + points_f) / 2
            scores, confidence = (scores + scores_f[order]) / 2, (confidence + confidence_f[order]) / 2
        mask = (prob > self.options.threshold).astype(np.uint8)
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
        return (confidence < self.options.min_confidence) | (confidence <= 0)

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
            if self.options.blend > 0:
                share = _window_map(window_weights(crop, self.options.blend), points[keep], spatial)
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
        ``(K,)`` pasted (``blend`` 0) or feathered (``blend > 0``) over it (a scan held open gives the global
        probability on the original grid with its outputs, as ``global_original``: :mod:`glsmonai.inference.session`)."""
        prob = out.get("global_original")
        if prob is None:
            prob = grid.image_to_original(torch.sigmoid(out[GLSKeys.GLOBAL.value][0]), mode="bilinear")
        if self.stage.output == GLSKeys.GLOBAL.value:
            return prob[0].numpy().astype(np.float32)
        fused = self.stage.output == GLSKeys.FUSED.value and self.options.fusion
        key = GLSKeys.FUSED.value if fused else GLSKeys.LOCAL.value
        windows = torch.sigmoid(out[key])[keep]
        centres, size = out[GLSKeys.CENTRES.value][0][keep], out[GLSKeys.WINDOW.value][0]
        return paste_windows(torch.as_tensor(prob), windows, centres, size, self.options.blend)[0].numpy().astype(np.float32)


def _window_map(weights: torch.Tensor, points: torch.Tensor, spatial: tuple[int, int]) -> torch.Tensor:
    """``(1, H, W)``: the ``(h, w)`` ``weights`` placed as the :func:`~glsmonai.transforms.crop.crop_at_points`
    window of each of ``points`` ``(K, 2)`` (working pixels), the maximum where windows overlap; 0 elsewhere."""
    if len(points) == 0:
        return torch.zeros(1, *spatial)
    return paste_at_points(weights.expand(len(points), 1, *weights.shape), points[None], spatial)[0]


def mean_probability_logits(logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """The logits of the members' mean probability: ``logit(mean_m sigmoid(logits[m]))``.

    Computed in float64 as ``logsumexp_m log sigmoid(l_m) - logsumexp_m log sigmoid(-l_m)`` (the members' count
    cancels), so logits whose sigmoid rounds to 1 in float32 keep their order (the heatmap decoder relies on it),
    and one member's logits come back as they were to float32 precision.

    Args:
        logits: the members' logits, each ``(B, C, H, W)``.

    Returns:
        ``(B, C, H, W)`` float32.
    """
    stacked = torch.stack([x.double() for x in logits])
    return (torch.logsumexp(F.logsigmoid(stacked), 0) - torch.logsumexp(F.logsigmoid(-stacked), 0)).float()


#: outputs with one row per window, ``(B*K, ...)``, instead of one per image (see :class:`GLSKeys`)
_PER_WINDOW = frozenset({GLSKeys.LOCAL.value, GLSKeys.GLOBAL_WINDOWS.value})


def _split_outputs(out: dict[str, torch.Tensor], n: int, per_window: frozenset | set) -> list[dict[str, torch.Tensor]]:
    """A batch's output dict -> ``n`` dicts on the CPU, as if each image had run alone."""
    k = out[GLSKeys.KEYPOINTS.value].shape[1] if GLSKeys.KEYPOINTS.value in out else 0
    cpu = {key: value.detach().float().cpu() for key, value in out.items()}
    return [
        {key: value[i * k:(i + 1) * k] if key in per_window else value[i:i + 1] for key, value in cpu.items()}
        for i in range(n)
    ]
