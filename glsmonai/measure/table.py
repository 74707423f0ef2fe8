"""``glsmonai measure``: the measures of every predicted mask (and of its reference), one row per scan.

Tables (``csv`` is the path given, ``<stem>`` its stem, all written beside it):

* ``csv``: one row per prediction ``<name>_seg.<ext>`` of ``pred_dir``: ``image`` (the scan's stem),
  ``units`` (``mm`` or ``px``), ``spacing_row_mm`` / ``spacing_col_mm`` (NaN when unknown),
  ``keypoints`` (where the points came from: ``predicted``, the ``keypoints.csv`` that ``predict``
  wrote; ``predicted+rule``, some were flagged unsure and those came from the rule; ``rule``, the
  task's keypoint rule on the mask; ``datalist``, the references' datalist), for the LV task
  ``patient`` / ``view`` / ``phase`` (CAMUS names, else empty), then the measures, each column named
  with its unit (:mod:`glsmonai.measure.units`);
* ``<stem>_reference.csv``: the same on the references (with ``labels``);
* ``<stem>_agreement.csv``: Bland-Altman statistics per measure (:mod:`glsmonai.measure.agreement`),
  and ``<stem>_bland_altman/<measure>.png``, one plot per measure (with ``labels``);
* LV task, CAMUS names: ``<stem>_patients.csv`` (and ``<stem>_patients_reference.csv``): volumes and
  ejection fractions per patient (:func:`~glsmonai.measure.lv.patient_measures`), whose agreement rows
  are in the agreement table with ``level`` ``patient``.

A file that cannot be read or measured is one failure line (file and reason); the batch goes on.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from glsmonai.data.datalist import datalist_keypoints, load_task
from glsmonai.data.io import list_images, read_image, split_ext
from glsmonai.data.pairs import SEG_SUFFIX, foreground, pair_predictions, reference_name
from glsmonai.data.prediction_folder import KEYPOINTS_FILE, read_keypoints_csv
from glsmonai.keypoints import iris_roots, lv_apex_base
from glsmonai.measure.agreement import agreement_table, bland_altman_plot
from glsmonai.measure.geometry import Spacing
from glsmonai.measure.iris import iris_columns, measure_iris
from glsmonai.measure.lv import LVView, camus_name, lv_columns, measure_lv, patient_columns, patient_measures
from glsmonai.measure.truth import true_measures
from glsmonai.measure.units import spacing_of
from glsmonai.utils import atomic_write

__all__ = ["TASKS", "MeasureResult", "measure_columns", "measure_label", "measure_folder",
           "truth_table"]

logger = logging.getLogger(__name__)

#: task -> number of keypoints it reads
TASKS: dict[str, int] = {"iris": 2, "lv": 3}
_META = ["image", "units", "spacing_row_mm", "spacing_col_mm", "keypoints"]
_LV_META = ["patient", "view", "phase"]


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown measure task {task!r}; known: {', '.join(TASKS)}")


def measure_columns(task: str, physical: bool) -> list[str]:
    """The measure columns of ``task`` in mm (``physical``) or pixels, in order."""
    _check_task(task)
    return iris_columns(physical) if task == "iris" else lv_columns(physical)


def _meta_columns(task: str) -> list[str]:
    return _META + (_LV_META if task == "lv" else [])


def _layout(task: str, rows: list[dict]) -> list[str]:
    """Metadata columns, then the measure columns of each unit present (mm first)."""
    units = {row.get("units") for row in rows}
    if len(units) > 1:
        logger.warning("some scans have a pixel spacing and some have none: the table has both _mm and _px "
                       "columns, each scan filled in its own unit")
    columns = _meta_columns(task)
    for physical, unit in ((True, "mm"), (False, "px")):
        if unit in units or (not rows and not physical):
            columns += measure_columns(task, physical)
    extra = [k for row in rows for k in row if k not in columns]
    return columns + list(dict.fromkeys(extra))


def _rule_points(task: str, label: np.ndarray, label_value: int | None) -> np.ndarray:
    """The task's keypoint rule on a label map: the iris roots, or the LV apex and annulus ends."""
    if task == "iris":
        return iris_roots(_iris_mask(label, label_value))
    return lv_apex_base(label if label_value in (None, 1) else (label == label_value).astype(np.uint8))


def _iris_mask(label: np.ndarray, label_value: int | None) -> np.ndarray:
    """The iris: ``label == label_value`` when that value is present, else any foreground."""
    if label_value is not None and (label == label_value).any():
        return foreground(label, label_value)
    return label > 0


def measure_label(task: str, label: np.ndarray, points: np.ndarray | None = None, spacing: Spacing = None,
                  label_value: int | None = None) -> tuple[dict[str, float], LVView | None]:
    """The measures of one label map.

    Args:
        task: ``iris`` or ``lv``.
        label: ``(rows, cols)`` label map or binary mask.
        points: ``(K, 2)`` keypoints (iris: 2 roots; LV: apex and annulus ends), or ``None`` for the rule.
        spacing: ``(row mm, col mm)`` or ``None`` (pixels).
        label_value: the structure's value (iris: default any foreground; LV: default 1).

    Returns:
        ``({column: value}, LV view or None)``.
    """
    _check_task(task)
    if task == "iris":
        return measure_iris(_iris_mask(label, label_value), points, spacing), None
    return measure_lv(label, points, spacing, label_value)


def _points(task: str, label: np.ndarray, label_value: int | None, given: tuple[np.ndarray, np.ndarray] | None,
            source: str, where: str) -> tuple[np.ndarray | None, str]:
    """The keypoints to measure with and where they came from (``given`` checked; unsure ones by rule)."""
    if given is None:
        return None, "rule"
    points, unsure = given
    k = TASKS[task]
    if points.shape != (k, 2) or not np.isfinite(points).all():
        logger.warning("%s: %s keypoints %s are not %d [row, col] points: the rule's are used", where, source,
                       points.shape, k)
        return None, "rule"
    if unsure.any():
        points = points.copy()
        points[unsure] = _rule_points(task, label, label_value)[unsure]
        return points, f"{source}+rule"
    return points, source


def _row(task: str, path: Path, stem: str, given, source: str, spacing_override: Spacing,
         label_value: int | None) -> tuple[dict, LVView | None, bool]:
    """Read and measure one file; raises ``OSError`` / ``ValueError`` naming it."""
    label, geometry = read_image(path)
    label = np.rint(label).astype(np.int64)
    spacing = spacing_of(geometry, spacing_override)
    try:
        points, used = _points(task, label, label_value, given, source, str(path))
        values, view = measure_label(task, label, points, spacing, label_value)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    row: dict = {
        "image": stem,
        "units": "px" if spacing is None else "mm",
        "spacing_row_mm": np.nan if spacing is None else spacing[0],
        "spacing_col_mm": np.nan if spacing is None else spacing[1],
        "keypoints": used,
    }
    if task == "lv":
        name = camus_name(stem)
        row.update(dict(zip(_LV_META, name or ("", "", ""))))
    row.update(values)
    return row, view, spacing is not None


@dataclass
class MeasureResult:
    """What :func:`measure_folder` measured and wrote.

    Attributes:
        measures: one row per prediction.
        reference: one row per reference (empty without labels).
        agreement: Bland-Altman statistics per measure (empty without labels).
        patients, patients_reference: LV volumes and EF per patient (empty unless CAMUS names).
        failures: ``(file, reason)`` per file that could not be measured.
        written: the files written.
    """

    measures: pd.DataFrame
    reference: pd.DataFrame
    agreement: pd.DataFrame
    patients: pd.DataFrame
    patients_reference: pd.DataFrame
    failures: list[tuple[str, str]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)


def _write_csv(table: pd.DataFrame, path: Path, written: list[Path]) -> None:
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))
    written.append(path)


def _measure_all(task: str, items: list[tuple[Path, str, object, str]], spacing: Spacing, label_value: int | None,
                 failures: list[tuple[str, str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measure ``(path, stem, given keypoints, source)`` items into the scan and patient tables."""
    rows, views = [], {}
    for path, stem, given, source in items:
        try:
            row, view, physical = _row(task, path, stem, given, source, spacing, label_value)
        except (OSError, ValueError) as err:
            reason = str(err).removeprefix(f"{path}: ")
            logger.error("%s: %s", path, reason)
            failures.append((str(path), reason))
            continue
        rows.append(row)
        if view is not None:
            views[stem] = (view, physical)
    table = pd.DataFrame(rows, columns=_layout(task, rows))
    patients = pd.DataFrame()
    if task == "lv":
        found = patient_measures(views)
        present = {key for row in found for key in row}
        pairs = [c for both in zip(patient_columns(True), patient_columns(False)) for c in both]
        order = list(dict.fromkeys(["patient", "units"] + pairs))
        patients = pd.DataFrame(found, columns=[c for c in order if c in present])
    return table, patients


def _measure_names(table: pd.DataFrame, task: str) -> list[str]:
    meta = set(_meta_columns(task)) | {"patient", "units"}
    return [c for c in table.columns if c not in meta]


def measure_folder(
    pred_dir: str | os.PathLike,
    task: str,
    csv_path: str | os.PathLike,
    labels: str | os.PathLike | None = None,
    split: str = "testing",
    dataset_dir: str | os.PathLike | None = None,
    spacing: Spacing = None,
    label_value: int | None = None,
    use_keypoints: bool = True,
    plots: bool = True,
) -> MeasureResult:
    """Measure every prediction ``<name>_seg.<ext>`` of ``pred_dir`` (and, with ``labels``, its reference).

    Args:
        pred_dir: a ``predict`` output folder (masks, and ``keypoints.csv`` when the model has keypoints).
        task: ``iris`` or ``lv``.
        csv_path: the predictions' table; the others go beside it (see the module docstring).
        labels: a folder of references ``<name>.<ext>`` or a datalist JSON (its ``split``); the
            references' keypoints are the datalist's when it gives them, else the rule's.
        split, dataset_dir: which datalist split, and what its paths are relative to.
        spacing: ``(row mm, col mm)`` for every file, overriding theirs (see
            :func:`~glsmonai.measure.units.spacing_of` for when a file's own spacing counts).
        label_value: the structure's value in the references (default: the datalist task's; iris any
            foreground, LV 1).
        use_keypoints: use ``pred_dir/keypoints.csv`` (False: the rule on every mask, for comparison).
        plots: write the Bland-Altman PNGs.

    Returns:
        the tables, the failures and the files written.

    Raises:
        FileNotFoundError: ``pred_dir`` or ``labels`` does not exist, or there are no predictions.
        ValueError: unknown task, or a spacing that is not two positive numbers.
    """
    _check_task(task)
    if spacing is not None and not all(np.isfinite(v) and v > 0 for v in spacing):
        raise ValueError(f"the pixel spacing must be two positive numbers (mm), got {list(spacing)}")
    pred_dir, csv_path = Path(pred_dir), Path(csv_path)
    failures: list[tuple[str, str]] = []
    written: list[Path] = []
    if labels is not None:
        pairs = pair_predictions(pred_dir, labels, split, dataset_dir)
        if label_value is None and Path(labels).is_file():
            label_value = load_task(labels).get("label_value")
    else:
        preds = [p for p in list_images(pred_dir) if split_ext(p)[0].endswith(SEG_SUFFIX)]
        if not preds:
            raise FileNotFoundError(f"{pred_dir}: no <name>{SEG_SUFFIX}.<ext> predictions")
        pairs = [(p, None) for p in preds]
    predicted: dict = {}
    kp_path = pred_dir / KEYPOINTS_FILE
    if use_keypoints and kp_path.is_file():
        try:
            predicted = read_keypoints_csv(kp_path)
        except ValueError as err:
            logger.error("%s (the rule's points are used)", err)
            failures.append((str(kp_path), str(err).removeprefix(f"{kp_path}: ")))
    items = [(p, reference_name(p), predicted.get(reference_name(p)), "predicted") for p, _ in pairs]
    measures, patients = _measure_all(task, items, spacing, label_value, failures)

    reference = patients_ref = agreement = pd.DataFrame()
    if labels is not None:
        given = {}
        if Path(labels).is_file():
            given = {split_ext(name)[0]: (np.asarray(points, dtype=float), np.zeros(len(points), bool))
                     for name, points in datalist_keypoints(labels, split, dataset_dir).items()}
        ref_items = []
        for pred_path, ref_path in pairs:
            name = reference_name(pred_path)
            if ref_path is None:
                reason = f"no reference {name}.* in {labels}"
                logger.error("%s: %s", pred_path, reason)
                failures.append((str(pred_path), reason))
                continue
            ref_items.append((Path(ref_path), name, given.get(name), "datalist"))
        reference, patients_ref = _measure_all(task, ref_items, spacing, label_value, failures)
        names = _measure_names(measures, task)
        agreement = agreement_table(measures, reference, names)
        if len(patients):
            agreement = pd.concat([agreement, agreement_table(patients, patients_ref, _measure_names(patients, task),
                                                              key="patient", level="patient")], ignore_index=True)
        unpaired = sorted(set(names) ^ set(_measure_names(reference, task)))
        if unpaired and len(reference):
            logger.warning("measures only on one side (different units?), not compared: %s", ", ".join(unpaired))

    _write_csv(measures, csv_path, written)
    if len(patients):
        _write_csv(patients, csv_path.with_name(f"{csv_path.stem}_patients.csv"), written)
    if labels is not None:
        _write_csv(reference, csv_path.with_name(f"{csv_path.stem}_reference.csv"), written)
        if len(patients_ref):
            _write_csv(patients_ref, csv_path.with_name(f"{csv_path.stem}_patients_reference.csv"), written)
        _write_csv(agreement, csv_path.with_name(f"{csv_path.stem}_agreement.csv"), written)
        if plots:
            folder = csv_path.with_name(f"{csv_path.stem}_bland_altman")
            for stat in agreement.itertuples():
                if stat.n < 1:
                    continue
                pred_t, ref_t, key = ((patients, patients_ref, "patient") if stat.level == "patient"
                                      else (measures, reference, "image"))
                both = pred_t.merge(ref_t, on=key, suffixes=("_pred", "_ref"))
                values = [both[f"{stat.measure}{end}"].to_numpy(float) for end in ("_pred", "_ref")]
                written.append(bland_altman_plot(folder / f"{stat.measure}.png", *values, stat.measure))
    logger.info("measured %d prediction(s)%s into %s", len(measures),
                f" and {len(reference)} reference(s)" if labels is not None else "", csv_path)
    return MeasureResult(measures, reference, agreement, patients, patients_ref, failures, written)


def truth_table(task: str, cases: list[tuple[str, dict]], spacing: Spacing = None) -> pd.DataFrame:
    """The true measures of phantoms, in the columns of the measured table (``keypoints``: ``drawn``).

    Args:
        task: ``iris`` or ``lv``.
        cases: ``(image stem, the generator's info["truth"])`` per phantom.
        spacing: the pixel size to give them, or ``None``: pixels, as their files measure.
    """
    rows = []
    for stem, truth in cases:
        row = {"image": stem, "units": "px" if spacing is None else "mm",
               "spacing_row_mm": np.nan if spacing is None else spacing[0],
               "spacing_col_mm": np.nan if spacing is None else spacing[1], "keypoints": "drawn"}
        if task == "lv":
            row.update(dict(zip(_LV_META, camus_name(stem) or ("", "", ""))))
        row.update(true_measures(task, truth, spacing))
        rows.append(row)
    return pd.DataFrame(rows, columns=_layout(task, rows))
