"""The predictor's mask post-processing: the task's largest pieces kept, their holes filled as MONAI fills them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import FillHoles, KeepLargestConnectedComponent

from glsmonai.transforms.postprocess import MaskPostprocessing, fill_holes, keep_largest


def test_a_ring_is_filled_but_a_bay_open_to_the_border_is_not():
    mask = np.zeros((9, 12), np.uint8)
    mask[1:6, 1:6] = 1
    mask[3, 3] = 0  # a hole: filled
    mask[0:4, 8] = mask[3, 8:12] = 1  # a bay in the top-right corner: it touches the border, stays open
    expected = mask.copy()
    expected[3, 3] = 1
    assert np.array_equal(fill_holes(mask), expected)


def test_a_hole_that_leaks_only_diagonally_is_open_as_in_monai():
    mask = np.ones((5, 5), np.uint8)
    mask[2, 2] = mask[3, 3] = mask[4, 4] = 0  # the hole reaches the corner through diagonal steps only
    assert np.array_equal(fill_holes(mask), mask)


@pytest.mark.parametrize("seed", range(5))
def test_fill_holes_equals_monai_fill_holes_on_random_masks(seed):
    rng = np.random.default_rng(seed)
    mask = (rng.random((40, 57)) < 0.55).astype(np.uint8)
    expected = np.asarray(FillHoles(applied_labels=[1])(torch.from_numpy(mask.copy())[None]))[0]
    assert np.array_equal(fill_holes(mask), expected)


def test_postprocessing_keeps_the_largest_pieces_then_fills_their_holes():
    mask = np.zeros((12, 20), np.uint8)
    mask[1:6, 1:6] = 1  # 25 px with a hole
    mask[3, 3] = 0
    mask[1:5, 10:14] = 1  # 16 px
    mask[9:11, 17:19] = 1  # 4 px: dropped with two components
    expected = mask.copy()
    expected[9:11, 17:19] = 0
    expected[3, 3] = 1
    assert np.array_equal(MaskPostprocessing(2)(mask), expected)
    assert MaskPostprocessing(1)(mask).sum() == 25
    monai = KeepLargestConnectedComponent(applied_labels=[1], num_components=2, independent=True)
    assert np.array_equal(MaskPostprocessing(2)(mask), fill_holes(np.asarray(monai(torch.from_numpy(mask)[None]))[0]))


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("components", [1, 2, 3])
def test_keep_largest_equals_monai_on_random_masks_with_ties(seed, components):
    # sparse random masks: many pieces, many of one size (single pixels, pairs), so the ranking's ties count
    rng = np.random.default_rng(seed)
    mask = (rng.random((37, 53)) < 0.18 + 0.04 * seed).astype(np.uint8)
    monai = KeepLargestConnectedComponent(applied_labels=[1], num_components=components, independent=True)
    expected = np.asarray(monai(torch.from_numpy(mask.copy())[None]))[0]
    assert np.array_equal(keep_largest(mask, components), expected)
    assert np.array_equal(MaskPostprocessing(components)(mask), fill_holes(expected))
