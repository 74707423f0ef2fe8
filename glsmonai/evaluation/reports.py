"""``glsmonai evaluate``: pair predictions with references and write Dice/IoU/HD95 CSV reports."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from glsmonai.data.datalist import datalist_keypoints, load_task
from glsmonai.data.io import read_image, split_ext
from glsmonai.data.pairs import foreground, pair_predictions, reference_name
from glsmonai.evaluation.scoring import score_case, summarise_cases
from glsmonai.keypoints import get_rule
from glsmonai.utils import atomic_write

logger = logging.getLogger(__name__)

__all__ = ["evaluate_folder", "write_csv"]


def write_csv(table: pd.DataFrame, path: str | os.PathLike, index: bool = False) -> Path:
    """Write a CSV atomically (temporary sibling, then rename)."""
    return atomic_write(path, lambda tmp: table.to_csv(tmp, index=index))


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

    Writes ``csv_path`` (``image, dice, iou, hd95`` per case, scored by
    :func:`~glsmonai.evaluation.scoring.score_case`) and ``<csv stem>_summary.csv`` beside it.
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
    columns = ["image", "dice", "iou", "hd95"] + (["key_dice", "key_iou"] if rule else [])
    predicted = _predicted_keypoints(Path(pred_dir))
    given = datalist_keypoints(labels_dir, split, dataset_dir) if labels_dir.is_file() and predicted else {}
    given = {split_ext(image)[0]: points for image, points in given.items()}
    rows, kp_rows, failures = [], [], []
    for pred_path, ref_path in pairs:
        name = reference_name(pred_path)
        try:
            if ref_path is None:
                raise FileNotFoundError(f"no reference {name}.* in {labels_dir} for {pred_path.name}")
            pred, _ = read_image(pred_path)
            ref_map, _ = read_image(ref_path)
            ref = foreground(ref_map, label_value)
            points = rule(ref_map) if rule is not None else None  # the key-region windows' centres
            try:
                scores = score_case(pred, ref, given.get(name, points), predicted.get(name), window, window_points=points)
            except ValueError as err:
                raise ValueError(f"{pred_path} vs {ref_path}: {err}") from None
            errors = scores.pop("kp_errors", ())
            kp_rows += [{"image": ref_path.name, "k": k, "error": e} for k, e in enumerate(errors)]
            rows.append({"image": ref_path.name, **scores})
        except (OSError, ValueError) as err:
            logger.error("%s", err)
            failures.append((str(pred_path), str(err)))
    table = pd.DataFrame(rows, columns=columns)
    kp_table = pd.DataFrame(kp_rows, columns=["image", "k", "error"])
    if kp_rows:
        write_csv(kp_table, csv_path.with_name(f"{csv_path.stem}_keypoints.csv"))
    summary = summarise_cases(table, columns[1:], kp_table["error"].to_numpy(), window)
    write_csv(table, csv_path)
    write_csv(summary, csv_path.with_name(f"{csv_path.stem}_summary.csv"))
    return table, summary, failures
