"""The evaluate report: per-case and summary tables, key-region columns, keypoint errors from keypoints.csv."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from glsmonai.data.io import write_mask
from glsmonai.evaluation.reports import evaluate_folder


def test_evaluate_folder_writes_reports(tmp_path):
    pred, labels = tmp_path / "pred", tmp_path / "labels"
    a = np.zeros((4, 4), np.uint8)
    a[:2] = 1
    b = np.zeros((4, 4), np.uint8)
    b[1:3] = 1
    write_mask(pred / "x_seg.nii.gz", a)
    write_mask(labels / "x.nii.gz", b * 3)  # label value 3
    write_mask(pred / "empty_seg.nii.gz", np.zeros((4, 4)))
    write_mask(labels / "empty.nii.gz", np.zeros((4, 4)))
    write_mask(pred / "orphan_seg.nii.gz", a)
    write_mask(pred / "small_seg.png", np.zeros((4, 4)))
    write_mask(labels / "small.png", np.zeros((5, 4)))
    table, summary, failures = evaluate_folder(pred, labels, tmp_path / "out" / "report.csv")
    assert sorted(table["image"]) == ["empty.nii.gz", "x.nii.gz"]
    assert list(table.columns) == ["image", "dice", "iou", "hd95"]
    row = table.set_index("image").loc["x.nii.gz"]
    assert row["dice"] == pytest.approx(0.5) and row["iou"] == pytest.approx(1 / 3)
    assert row["hd95"] == 1.0  # rows 0-1 against rows 1-2: half the edge pixels 1 away (MONAI)
    assert math.isnan(table.set_index("image").loc["empty.nii.gz", "dice"])
    assert math.isnan(table.set_index("image").loc["empty.nii.gz", "hd95"])
    assert {f[0].split("/")[-1] for f in failures} == {"orphan_seg.nii.gz", "small_seg.png"}
    saved = pd.read_csv(tmp_path / "out" / "report_summary.csv").set_index("metric")
    assert saved.loc["dice", "mean"] == pytest.approx(0.5) and saved.loc["dice", "n"] == 1
    assert list(saved.index) == ["dice", "iou", "hd95"] and saved.loc["hd95", "mean"] == 1.0
    assert list(saved.columns) == ["n", "mean", "std", "median", "min", "max"]
    # another label value makes x's reference empty
    table, _, _ = evaluate_folder(pred, labels, tmp_path / "r2.csv", label_value=1)
    assert table.set_index("image").loc["x.nii.gz", "dice"] == 0.0


def test_evaluate_key_region_columns(tmp_path):
    pred, labels = tmp_path / "pred", tmp_path / "labels"
    ref = np.zeros((20, 40), np.uint8)
    ref[8:12, 4:16] = 1  # left segment, root (far end) at col 4
    ref[8:12, 24:36] = 1  # right segment, root at col 35
    out = ref.copy()
    out[8:12, 4:6] = 0  # the prediction misses the left root's two outer columns
    write_mask(labels / "a.nii.gz", ref)
    write_mask(pred / "a_seg.nii.gz", out)
    table, summary, _ = evaluate_folder(pred, labels, tmp_path / "r.csv", key_rule="iris_roots", window=(6, 6))
    row = table.iloc[0]
    # roots at (9.5, 5) and (9.5, 34), rounded to rows 10; 6 x 6 windows: rows 7-12, cols 2-7 and 31-36
    # left window: 4 x 4 reference pixels (cols 4-7), 4 x 2 predicted; right: 4 x 5 in both
    assert row["key_dice"] == pytest.approx(2 * (8 + 20) / ((16 + 20) + (8 + 20)))
    assert row["dice"] == pytest.approx(2 * 88 / (96 + 88))
    assert row["hd95"] == 2.0  # the two missed columns
    assert list(summary["metric"]) == ["dice", "iou", "hd95", "key_dice", "key_iou"]
    with pytest.raises(ValueError, match="both a keypoint rule and a window"):
        evaluate_folder(pred, labels, tmp_path / "r.csv", key_rule="iris_roots")


def test_evaluate_keypoint_errors_from_keypoints_csv(tmp_path):
    """Errors of the predictor's keypoints.csv against the references' rule keypoints, and the missed rate."""
    pred, labels = tmp_path / "pred", tmp_path / "labels"
    ref = np.zeros((20, 40), np.uint8)
    ref[8:12, 4:16] = 1
    ref[8:12, 24:36] = 1
    write_mask(labels / "a.nii.gz", ref)
    write_mask(pred / "a_seg.nii.gz", ref)
    roots = np.array([[9.5, 5.0], [9.5, 34.0]])  # what iris_roots finds on this reference (see above)
    found = roots + np.array([[3.0, 4.0], [0.0, 1.0]])  # errors 5 and 1
    pd.DataFrame({"image": ["a.nii.gz"] * 2, "k": [0, 1], "row": found[:, 0], "col": found[:, 1],
                  "score": 1.0, "confidence": 1.0}).to_csv(pred / "keypoints.csv", index=False)
    _, summary, _ = evaluate_folder(pred, labels, tmp_path / "r.csv", key_rule="iris_roots", window=(8, 8))
    errors = pd.read_csv(tmp_path / "r_keypoints.csv")
    assert errors["error"].round(6).tolist() == [5.0, 1.0]
    stats = summary.set_index("metric")
    assert stats.loc["kp_error", "mean"] == pytest.approx(3.0) and stats.loc["kp_error", "max"] == pytest.approx(5.0)
    assert stats.loc["kp_missed", "mean"] == pytest.approx(0.5)  # 5 > 8 / 2, 1 < 4
    _, summary, _ = evaluate_folder(pred, labels, tmp_path / "r.csv", key_rule="iris_roots", window=(12, 12))
    assert summary.set_index("metric").loc["kp_missed", "mean"] == 0.0
