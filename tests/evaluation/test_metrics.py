"""Dice and IoU on literal cases: overlap, empty masks, mismatched shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glsmonai.evaluation.metrics import dice_iou


@pytest.mark.parametrize(
    "pred, ref, dice, iou",
    [
        ([1, 1, 0, 0], [1, 1, 0, 0], 1.0, 1.0),
        ([1, 1, 0, 0], [0, 1, 1, 0], 0.5, 1 / 3),
        ([1, 1, 1, 1], [1, 0, 0, 0], 0.4, 0.25),
        ([1, 0, 0, 0], [0, 0, 0, 0], 0.0, 0.0),
        ([0, 0, 0, 0], [0, 0, 1, 0], 0.0, 0.0),
    ],
)
def test_literal_cases(pred, ref, dice, iou):
    d, i = dice_iou(np.array(pred), np.array(ref))
    assert d == pytest.approx(dice) and i == pytest.approx(iou)


def test_both_empty_is_nan():
    d, i = dice_iou(np.zeros((3, 3)), np.zeros((3, 3)))
    assert math.isnan(d) and math.isnan(i)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="differs from reference"):
        dice_iou(np.zeros((3, 3)), np.zeros((3, 4)))
