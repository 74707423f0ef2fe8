"""``glsmonai evaluate``: pair predictions with references and write Dice/IoU CSV reports."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from glsmonai.data.datalist import datalist_keypoints, load_task, scan_list
from glsmonai.data.io import find_partner, list_images, read_image, split_ext
from glsmonai.evaluation.keyregion import key_region_dice_iou, keypoint_errors, summarise_keypoint_errors
from glsmonai.evaluation.metrics import dice_iou
from glsmonai.keypoints import get_rule

logger = logging.getLogger(__name__)

__all__ = ["evaluate_folder", "pair_predictions", "summarise", "write_csv"]

SEG_SUFFIX = "_seg"


def write_csv(table: pd.DataFrame, path: str | os.PathLike, index: bool = False) -> Path:
    """Write a CSV atomically (temporary sibling, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    table.to_csv(tmp, index=index)
    os.replace(tmp, path)
    return path


def summarise(table: pd.DataFrame, columns=("dice", "iou")) -> pd.DataFrame:
    """Mean, std, median, min and max of each metric column (NaN cases left out), one row per metric."""
    stats = table[list(columns)].agg(["mean", "std", "median", "min", "max"]).T
    stats.insert(0, "n", table[list(columns)].notna().sum().values)
    stats.index.name = "metric"
    return stats.reset_index()


def _reference_finder(labels: Path, split: str, dataset_dir: str | os.PathLike | None):
    """``(name, ext) -> reference path or None`` for a label folder or a datalist's split."""
    if labels.is_dir():
        files = list_images(labels)
        return lambda name, ext: find_partner(files, name, ext)
    by_image = {split_ext(image)[0]: label for image, label in scan_list(labels, split, dataset_dir) if label}
    return lambda name, ext: by_image.get(name)


def pair_predictions(
    pred_dir: str | os.PathLike,
    labels: str | os.PathLike,
    split: str = "testing",
    dataset_dir: str | os.PathLike | None = None,
) -> list[tuple[Path, Path | None]]:
    """Every ``<name>_seg.<ext>`` in ``pred_dir`` with its reference (``None`` when there is none).

    Args:
        labels: a folder of references ``<name>.<ext>`` (another extension is used when none has the
            same one), or a datalist JSON whose ``split`` gives the references of its images.

    Raises:
        FileNotFoundError: ``labels`` does not exist, or ``pred_dir`` holds no predictions.
    """
    pred_dir, labels = Path(pred_dir), Path(labels)
    if not labels.exists():
        raise FileNotFoundError(f"labels folder or datalist not found: {labels}")
    preds = [p for p in list_images(pred_dir) if split_ext(p)[0].endswith(SEG_SUFFIX)]
    if not preds:
        raise FileNotFoundError(f"{pred_dir}: no <name>{SEG_SUFFIX}.<ext> predictions")
    reference_of = _reference_finder(labels, split, dataset_dir)
    pairs = []
    for pred_path in preds:
        stem, ext = split_ext(pred_path)
        pairs.append((pred_path, reference_of(stem[: -len(SEG_SUFFIX)], ext)))
    return pairs


def _predicted_keypoints(pred_dir: Path) -> dict[str, np.ndarray]:
    """``{image stem: (K, 2)}`` from the predictor's ``keypoints.csv`` (empty when there is none)."""
    path = pred_dir / "keypoints.csv"
    if not path.is_file():
        return {}
    table = pd.read_csv(path)
    if table.empty:
        return {}
    return {
        split_ext(image)[0]: group.sort_values("k")[["row", "col"]].to_numpy(float)
        for image, group in table.groupby("image")
    }


def evaluate_folder(
    pred_dir: str | os.PathLike,
    labels_dir: str | os.PathLike,
    csv_path: str | os.PathLike,
    label_value: int | None = None,
    split: str = "testing",
    dataset_dir: str | os.PathLike | None = None,
    key_rule: str | None = None,
    window: tuple[int, int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple[str, str]]]:
    """Score every ``<name>_seg.<ext>`` in ``pred_dir`` against ``<name>.<ext>`` in ``labels_dir``
    (a reference ``<name>`` with another extension is used when none has the same one).

    Writes ``csv_path`` (``image, dice, iou`` per case) and ``<csv stem>_summary.csv`` beside it.
    When ``pred_dir`` holds the predictor's ``keypoints.csv`` and references keypoints are known (given
    by the datalist, or found by ``key_rule`` on each reference), also ``<csv stem>_keypoints.csv``
    (``image, k, error`` in original pixels) and summary rows ``kp_error`` and, with ``window``,
    ``kp_missed`` (the rate of errors above half the window's smaller side, in the ``mean`` column).

    Args:
        labels_dir: a folder of references, or a datalist JSON whose ``split`` gives the references
            of its images (then ``label_value`` defaults to the datalist task's).
        label_value: the reference label that is the foreground (default: any value above 0).
        key_rule, window: with both, also Dice and IoU inside the ``window``-sized regions (original
            pixels) centred on the keypoints that the rule finds on each reference (``key_dice``,
            ``key_iou``): where GLS is meant to win.

    Returns:
        ``(per_case, summary, failures)``; a prediction without reference, or with a reference of
        another size, is a failure naming the file, and evaluation goes on.
    """
    labels_dir, csv_path = Path(labels_dir), Path(csv_path)
    pairs = pair_predictions(pred_dir, labels_dir, split, dataset_dir)
    if label_value is None and labels_dir.is_file():
        label_value = load_task(labels_dir).get("label_value")
    if (key_rule is None) != (window is None):
        raise ValueError("key-region metrics need both a keypoint rule and a window size")
    rule = get_rule(key_rule) if key_rule else None
    columns = ["image", "dice", "iou"] + (["key_dice", "key_iou"] if rule else [])
    predicted = _predicted_keypoints(Path(pred_dir))
    given = datalist_keypoints(labels_dir, split, dataset_dir) if labels_dir.is_file() and predicted else {}
    given = {split_ext(image)[0]: points for image, points in given.items()}
    rows, kp_rows, failures = [], [], []
    for pred_path, ref_path in pairs:
        name = split_ext(pred_path)[0][: -len(SEG_SUFFIX)]
        try:
            if ref_path is None:
                raise FileNotFoundError(f"no reference {name}.* in {labels_dir} for {pred_path.name}")
            pred, _ = read_image(pred_path)
            ref_map, _ = read_image(ref_path)
            ref = ref_map > 0 if label_value is None else ref_map == label_value
            try:
                dice, iou = dice_iou(pred > 0, ref)
            except ValueError as err:
                raise ValueError(f"{pred_path} vs {ref_path}: {err}") from None
            row = {"image": ref_path.name, "dice": dice, "iou": iou}
            points = None
            if rule is not None:
                points = rule(ref_map)
                row["key_dice"], row["key_iou"] = key_region_dice_iou(pred > 0, ref, points, window)
            found = predicted.get(name)
            reference_points = given.get(name, points)
            if found is not None and reference_points is not None:
                errors = keypoint_errors(found, np.asarray(reference_points, float))
                kp_rows += [{"image": ref_path.name, "k": k, "error": e} for k, e in enumerate(errors)]
            rows.append(row)
        except (OSError, ValueError) as err:
            logger.error("%s", err)
            failures.append((str(pred_path), str(err)))
    table = pd.DataFrame(rows, columns=columns)
    summary = summarise(table, columns[1:])
    if kp_rows:
        kp_table = pd.DataFrame(kp_rows)
        write_csv(kp_table, csv_path.with_name(f"{csv_path.stem}_keypoints.csv"))
        extra = [summarise(kp_table.rename(columns={"error": "kp_error"}), ["kp_error"])]
        if window is not None:
            missed = summarise_keypoint_errors(kp_table["error"].to_numpy(), window)["missed_rate"]
            extra.append(pd.DataFrame([{"metric": "kp_missed", "n": len(kp_table), "mean": missed}]))
        summary = pd.concat([summary, *extra], ignore_index=True)
    write_csv(table, csv_path)
    write_csv(summary, csv_path.with_name(f"{csv_path.stem}_summary.csv"))
    return table, summary, failures
