"""The folder run: every scan of a folder (or of a datalist's split) predicted into an output folder.

:func:`run_inference` is ``glsmonai predict`` and the bundle's ``inference.json``; :func:`predict_folder` is
the same run with a :class:`~glsmonai.inference.predict_from_raw_data.Predictor` built already. The run is a
pipeline: reader processes prepare scans ahead (:mod:`~glsmonai.inference.data_iterators`), the network
takes a batch at a time, and one writer thread assembles each scan's prediction and writes its outputs
(:mod:`~glsmonai.inference.export_prediction`) while the network goes on. It can be split into parts for
several machines (``num_parts``, ``part_id``), and continued after a kill (``resume``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from glsmonai.data.datalist import scan_list
from glsmonai.data.io import IMAGE_EXTENSIONS, find_partner, list_images, split_ext
from glsmonai.data.prediction_folder import (
    ENSEMBLE_FILE,
    KEYPOINTS_FILE,
    OVERLAYS_DIR,
    KeypointTable,
    mask_path,
    overlay_names,
    read_keypoint_prompts,
)
from glsmonai.inference.data_iterators import ReadScan, scan_loader
from glsmonai.inference.export_prediction import write_prediction
from glsmonai.inference.options import PredictOptions
from glsmonai.inference.predict_from_raw_data import Predictor
from glsmonai.inference.session import check_keypoints, mark_given, prompted_forward
from glsmonai.utils import atomic_write, stale_temporaries

logger = logging.getLogger(__name__)

__all__ = ["PREDICT_EXTENSIONS", "predict_folder", "run_inference"]

#: inputs that ``predict`` takes from a folder: every format the readers know
PREDICT_EXTENSIONS: tuple[str, ...] = IMAGE_EXTENSIONS


def run_inference(
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    model_dir: str | os.PathLike | Sequence[str | os.PathLike],
    options: PredictOptions | None = None,
    *,
    device: str | None = None,
    labels_dir: str | os.PathLike | None = None,
    overlays: bool = True,
    raise_on_failure: bool = False,
    split: str = "testing",
    dataset_dir: str | os.PathLike | None = None,
    batch_size: int = 4,
    num_workers: int | None = None,
    num_parts: int = 1,
    part_id: int = 0,
    resume: bool = False,
    keypoints: str | os.PathLike | dict | None = None,
    **changes: object,
) -> list[tuple[str, str]]:
    """Predict every scan in ``input_dir`` with the model folder ``model_dir``: :func:`predict_folder` with a
    :class:`~glsmonai.inference.predict_from_raw_data.Predictor` of ``model_dir``, ``device`` and ``options``
    (``changes``: fields of :class:`~glsmonai.inference.options.PredictOptions` changed from ``options``).
    Several model folders are a fold ensemble (:class:`~glsmonai.inference.predict_from_raw_data.Predictor`).

    The arguments are checked, and the scans listed, before the model is loaded.
    """
    scans = _scans_of_part(input_dir, output_dir, split, dataset_dir, batch_size, num_parts, part_id)
    predictor = Predictor(model_dir, device, options, **changes)
    return _run(predictor, scans, Path(output_dir), labels_dir, overlays, raise_on_failure, batch_size, num_workers,
                resume, keypoints)


def predict_folder(
    predictor: Predictor,
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    labels_dir: str | os.PathLike | None = None,
    overlays: bool = True,
    raise_on_failure: bool = False,
    split: str = "testing",
    dataset_dir: str | os.PathLike | None = None,
    batch_size: int = 4,
    num_workers: int | None = None,
    num_parts: int = 1,
    part_id: int = 0,
    resume: bool = False,
    keypoints: str | os.PathLike | dict | None = None,
) -> list[tuple[str, str]]:
    """Predict every scan in ``input_dir`` (NIfTI, PNG, MetaImage, NRRD, JPEG, BMP, TIFF, DICOM), or every
    image of one ``split`` of a datalist JSON given as ``input_dir``.

    Writes ``<output_dir>/<name>_seg.<ext>`` (input size and geometry; JPEG inputs get PNG masks),
    ``keypoints.csv`` (image, k, row, col in original pixels to 1/1000, heatmap score, confidence, flag:
    ``unsure`` below ``min_confidence``, else ``ok``) and ``overlays/<name>.png`` (references from
    ``labels_dir``, or from the datalist); see :mod:`glsmonai.data.prediction_folder`. A bad file is logged
    and skipped. A fold ensemble also records its member folders and options in ``ensemble.json``.

    The work runs as a pipeline: ``num_workers`` DataLoader workers read and prepare scans ahead
    (default :func:`~glsmonai.inference.data_iterators.default_workers`; 0: in this process), the network
    takes ``batch_size`` scans at a time, and one writer thread assembles each mask on its scan's grid and
    writes it, its overlay and its keypoint rows while the network goes on. At most two batches wait for the
    writer.

    With ``num_parts`` N > 1 this run predicts part ``part_id`` (0 .. N - 1) of the sorted scan list,
    every N-th scan from the ``part_id``-th, so N runs (machines, array jobs) cover every scan once; they
    may share ``output_dir`` (see :class:`~glsmonai.data.prediction_folder.KeypointTable`). With ``resume``
    (``--continue``), scans whose outputs are complete (their rows are in ``keypoints.csv``, written after
    their mask and overlay; for models without keypoints, the mask and overlay exist) are skipped.

    ``keypoints`` (``predict --keypoints``) gives keypoints as prompts: a table in ``keypoints.csv``'s format
    (:func:`~glsmonai.data.prediction_folder.read_keypoint_prompts`), or ``{scan stem: (K, 2)}`` in original
    pixels (NaN rows: the model's own). A scan's given keypoints replace its heatmap peaks, the local branch and
    the fusion run in their windows (:mod:`glsmonai.inference.session`; such scans run one at a time), and its
    rows say ``source`` ``user`` for them. A keypoint off its scan fails that scan.

    Returns:
        ``(file, reason)`` for every file that failed.

    Raises:
        ValueError: ``output_dir`` is ``input_dir`` (outputs would mix with, and could overwrite, inputs); a
            batch size below 1; a part id out of range.
        FileNotFoundError: no scans to predict.
        RuntimeError: with ``raise_on_failure``, after all files, when any failed.
    """
    scans = _scans_of_part(input_dir, output_dir, split, dataset_dir, batch_size, num_parts, part_id)
    return _run(predictor, scans, Path(output_dir), labels_dir, overlays, raise_on_failure, batch_size, num_workers,
                resume, keypoints)


def _prompts(predictor: Predictor, keypoints: str | os.PathLike | dict | None,
             scans: Sequence[Path]) -> dict[str, np.ndarray]:
    """The keypoints given for this run's scans, ``{stem: (K, 2)}`` (``ValueError`` for a model without
    keypoints, or with an exported engine)."""
    if keypoints is None:
        return {}
    if not getattr(predictor.network, "num_keypoints", 0):
        raise ValueError("keypoints were given, but the model finds none (a baseline): predict without --keypoints")
    if predictor.options.engine != "torch":
        raise ValueError(f"--keypoints needs the PyTorch network (--engine torch), not {predictor.options.engine}")
    given = read_keypoint_prompts(keypoints) if isinstance(keypoints, (str, os.PathLike)) else dict(keypoints)
    stems = {split_ext(path)[0] for path in scans}
    prompts = {stem: np.asarray(points, dtype=np.float64) for stem, points in given.items() if stem in stems}
    logger.info("keypoints given for %d of %d scans%s", len(prompts), len(stems),
                f" ({len(given) - len(prompts)} named in the table are not in this run)" if len(given) > len(prompts) else "")
    return prompts


def _check_prompts(predictor: Predictor, scans: list[ReadScan], prompts: dict[str, np.ndarray], failed,
                   progress) -> list[ReadScan]:
    """The scans whose given keypoints fit them (on the scan, at most the model's count); the others fail."""
    kept = []
    for scan in scans:
        stem = split_ext(scan.path)[0]
        if stem in prompts:
            try:
                prompts[stem] = check_keypoints(prompts[stem], scan.raw.shape, predictor.network.num_keypoints,
                                                f"{scan.path}: given keypoints")
            except ValueError as err:
                failed(scan.path, str(err))
                progress.update(1)
                continue
        kept.append(scan)
    return kept


def _forward(predictor: Predictor, scans: list[ReadScan], prompts: dict[str, np.ndarray]) -> list:
    """The network's outputs for every view of ``scans``, in order: the scans without given keypoints in one batch,
    those with them one at a time (:func:`~glsmonai.inference.session.prompted_forward`)."""
    plain = [scan for scan in scans if split_ext(scan.path)[0] not in prompts]
    batch = iter(predictor.forward([view for scan in plain for view in scan.views]) if plain else [])
    outputs: list = []
    for scan in scans:
        stem = split_ext(scan.path)[0]
        if stem in prompts:
            outputs += prompted_forward(predictor, scan.views, prompts[stem])
        else:
            outputs += [next(batch) for _ in scan.views]
    return outputs


def _scans_of_part(
    input_dir: str | os.PathLike, output_dir: str | os.PathLike, split: str, dataset_dir: str | os.PathLike | None,
    batch_size: int, num_parts: int, part_id: int,
) -> list[tuple[Path, Path | None]]:
    """The ``(scan, reference or None)`` of this part of the run, the arguments checked."""
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
    return scans[part_id::num_parts]


def _run(
    predictor: Predictor,
    scans: Sequence[tuple[Path, Path | None]],
    output_dir: Path,
    labels_dir: str | os.PathLike | None,
    overlays: bool,
    raise_on_failure: bool,
    batch_size: int,
    num_workers: int | None,
    resume: bool,
    keypoints: str | os.PathLike | dict | None = None,
) -> list[tuple[str, str]]:
    """The run of :func:`predict_folder` on its part's scans."""
    prompts = _prompts(predictor, keypoints, [path for path, _ in scans])
    output_dir.mkdir(parents=True, exist_ok=True)
    if len(predictor.members) > 1:  # the same record from every part of a shared run
        record = {"members": [str(Path(p).resolve()) for p in predictor.folders], "stage": predictor.stage.name,
                  "options": dataclasses.asdict(predictor.options)}
        text = json.dumps(record, indent=1, default=str)
        atomic_write(output_dir / ENSEMBLE_FILE, lambda tmp: tmp.write_text(text))
    else:  # an earlier ensemble's record would misname this run's model
        (output_dir / ENSEMBLE_FILE).unlink(missing_ok=True)
    references = list_images(labels_dir) if labels_dir else []
    table = KeypointTable(output_dir / KEYPOINTS_FILE)
    label_value = predictor.folder.settings.label_value
    overlay_of = overlay_names([path for path, _ in scans])
    total = len(scans)
    if resume:
        done = table.done()

        def complete(path: Path) -> bool:
            """Rows in the table (written last); for models without keypoints, the mask and overlay exist."""
            if predictor.network.num_keypoints:
                return path.name in done
            written = [mask_path(output_dir, path)] + ([output_dir / OVERLAYS_DIR / overlay_of[path]] if overlays else [])
            return all(p.is_file() for p in written)

        scans = [(path, label) for path, label in scans if not complete(path)]
        logger.info("--continue: %d of %d scans already complete, skipped", total - len(scans), total)
    table.start({path.name for path, _ in scans})
    # a run killed while writing leaves the temporary of that scan's mask or overlay: this run redoes it
    masks = {mask_path(output_dir, path).name for path, _ in scans}
    for leftover in stale_temporaries(output_dir, masks) + stale_temporaries(
            output_dir / OVERLAYS_DIR, {overlay_of[path] for path, _ in scans}):
        leftover.unlink(missing_ok=True)

    def finish(scan: ReadScan, outputs: list[dict]) -> None:
        """On the writer thread: assemble, post-process and write one scan's outputs."""
        results = [predictor.assemble(out, view) for out, view in zip(outputs, scan.views)]
        pred = predictor.combine(scan.raw, scan.geometry, results)
        if split_ext(scan.path)[0] in prompts:
            mark_given(pred, prompts[split_ext(scan.path)[0]])
        reference = None
        if overlays:
            reference = find_partner(references, *split_ext(scan.path)) if references else scans[scan.index][1]
        write_prediction(pred, scan.path, output_dir, table, overlay_of[scan.path] if overlays else None, reference,
                          label_value)

    loader = scan_loader([path for path, _ in scans], predictor.preparer, batch_size, num_workers)
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
            if prompts:
                good = _check_prompts(predictor, good, prompts, failed, progress)
            try:
                outputs = _forward(predictor, good, prompts)
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
