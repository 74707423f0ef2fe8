"""Crops and pastes: fixed-size crops at integer points, and windows sampled (and pasted back) at sub-pixel centres."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glsmonai.transforms import (
    WorkingGrid,
    crop_at_points,
    crop_windows,
    feather_profile,
    paste_at_points,
    paste_windows,
    window_weights,
)


class TestCrop:
    def test_fixed_size_and_centred_inside(self):
        img = torch.arange(20 * 30, dtype=torch.float32).reshape(1, 1, 20, 30)
        crops = crop_at_points(img, torch.tensor([[[10, 15]]]), (6, 8))
        assert crops.shape == (1, 1, 6, 8)
        assert crops[0, 0, 3, 4] == img[0, 0, 10, 15]  # keypoint at index size // 2
        assert torch.equal(crops[0, 0], img[0, 0, 7:13, 11:19])

    def test_fixed_size_and_centred_at_border(self):
        img = torch.ones(1, 1, 20, 30)
        crops = crop_at_points(img, torch.tensor([[[0, 29]]]), (6, 8))
        assert crops.shape == (1, 1, 6, 8)
        # keypoint still at the centre index; outside the image is zero-padded
        assert crops[0, 0, 3, 4] == 1
        # rows [-3, 3) and cols [25, 33): the image fills crop rows 3..5 and cols 0..4
        assert crops[0, 0, 3:, :5].sum() == 15 and crops.sum() == 15

    def test_crop_then_paste_restores_region(self):
        img = torch.rand(2, 1, 24, 28)
        pts = torch.tensor([[[5, 6], [18, 20]], [[0, 0], [23, 27]]])
        size = (8, 10)
        pasted = paste_at_points(crop_at_points(img, pts, size), pts, (24, 28))
        assert pasted.shape == img.shape
        for b in range(2):
            for r, c in pts[b].tolist():
                rows = slice(max(r - 4, 0), min(r + 4, 24))
                cols = slice(max(c - 5, 0), min(c + 5, 28))
                assert torch.equal(pasted[b, 0, rows, cols], img[b, 0, rows, cols])
        # outside every window the canvas is empty
        mask = paste_at_points(torch.ones(4, 1, *size), pts, (24, 28))
        assert torch.all(pasted[mask == 0] == 0)
        assert mask[0, 0].sum() == 2 * 8 * 10  # two windows fully inside

    def test_paste_is_differentiable(self):
        patches = torch.rand(2, 1, 4, 4, requires_grad=True)
        paste_at_points(patches, torch.tensor([[[3, 3], [10, 10]]]), (16, 16)).sum().backward()
        assert torch.all(patches.grad == 1)

    def test_mismatched_dims_raise(self):
        with pytest.raises(ValueError, match="do not match"):
            crop_at_points(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 3), (4, 4))


def test_crop_windows_samples_the_working_prediction_at_the_same_pixels():
    """A window on the working grid sampled from the working image, and from the original through
    ``to_source``, agree (the global and local inputs of the fusion see the same pixels)."""
    shape = (300, 180)
    grid = WorkingGrid(shape, (64, 64))
    rows, cols = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    original = torch.tensor(rows + 2 * cols)[None, None]
    working = grid.image_to_working(original[0], mode="bilinear")[None]
    affine = torch.from_numpy(grid.to_original_affine())[None]
    centres, window = torch.tensor([[[32.0, 30.0]]]), torch.tensor([[8.0, 8.0]])
    a = crop_windows(working, centres, window, (8, 8))
    b = crop_windows(original, centres, window, (8, 8), to_image=affine)
    assert torch.allclose(a, b, rtol=0.02)


def test_paste_windows_restores_a_known_region():
    image = torch.rand(1, 1, 50, 70)
    # 1:1 windows whose 16 samples fall on pixel centres (centre half-way between two pixels)
    centres, window = torch.tensor([[[20.5, 30.5], [40.5, 10.5]]]), torch.tensor([[16.0, 16.0]])
    crops = crop_windows(image, centres, window, (16, 16))
    assert torch.allclose(crops[0, 0], image[0, 0, 13:29, 23:39], atol=1e-6)
    back = paste_windows(torch.zeros(1, 50, 70), crops, centres[0], window[0])
    assert torch.allclose(back[0, 13:29, 23:39], image[0, 0, 13:29, 23:39], atol=1e-6)
    assert torch.allclose(back[0, 33:49, 3:19], image[0, 0, 33:49, 3:19], atol=1e-6)
    inside = torch.zeros(50, 70, dtype=torch.bool)
    inside[13:29, 23:39] = inside[33:49, 3:19] = True
    assert not back[0][~inside].any()
    # a window that crosses the border pastes only its part inside the image
    edge = paste_windows(torch.zeros(1, 50, 70), torch.ones(1, 1, 8, 8), torch.tensor([[1.0, 68.0]]), torch.tensor([10.0, 10.0]))
    assert edge[0].sum() == 6 * 7 and edge[0, :6, 63:].all()  # rows [-4, 6), cols [63, 73)


# (1 - cos(pi t)) / 2 at t = 1/4 and 3/4 of the ramp
RAMP_QUARTER, RAMP_THREE_QUARTERS = (1 - np.sqrt(0.5)) / 2, (1 + np.sqrt(0.5)) / 2


def test_feather_profile_is_one_in_the_middle_zero_at_the_border_and_monotone():
    offsets = torch.linspace(0.0, 5.0, 51, dtype=torch.float64)  # window 8: border at 4
    w = feather_profile(offsets, 8.0, 0.25)  # ramp of 2 from the border: 1 within 2 of the centre
    assert torch.all(w[offsets <= 2.0] == 1) and torch.all(w[offsets >= 4.0] == 0)
    assert torch.all(w[1:] <= w[:-1])  # never rises away from the centre
    assert torch.equal(feather_profile(-offsets, 8.0, 0.25), w)  # symmetric
    assert torch.allclose(feather_profile(torch.tensor([3.5, 2.5], dtype=torch.float64), 8.0, 0.25),
                          torch.tensor([RAMP_QUARTER, RAMP_THREE_QUARTERS], dtype=torch.float64))
    with pytest.raises(ValueError, match="feather"):
        feather_profile(offsets, 8.0, 0.6)


def test_window_weights_of_a_crop_are_the_product_of_the_axis_profiles():
    # pixel centres 0.5, 1.5, ... from the border; ramps of 2 (8 rows) and 1.5 (6 columns) pixels
    rows = torch.tensor([RAMP_QUARTER, RAMP_THREE_QUARTERS, 1, 1, 1, 1, RAMP_THREE_QUARTERS, RAMP_QUARTER],
                        dtype=torch.float32)
    cols = torch.tensor([0.25, 1, 1, 1, 1, 0.25])  # t = 1/3: (1 - cos(pi / 3)) / 2
    assert torch.allclose(window_weights((8, 6), 0.25), rows[:, None] * cols[None, :])


def test_blending_a_window_of_ones_into_zeros_gives_its_weight_map():
    # window 8 at (10, 10): pixel centres 6 .. 13 lie at -4 .. 3 from its centre; ramp of 2 pixels
    profile = torch.tensor([0.0, 0.5, 1, 1, 1, 1, 1, 0.5])
    expected = torch.zeros(1, 20, 20)
    expected[0, 6:14, 6:14] = profile[:, None] * profile[None, :]
    blended = paste_windows(torch.zeros(1, 20, 20), torch.ones(1, 1, 4, 4), torch.tensor([[10.0, 10.0]]),
                            torch.tensor([8.0, 8.0]), feather=0.25)
    assert torch.allclose(blended, expected, atol=1e-7)


def test_blended_windows_that_overlap_are_averaged_by_their_weights():
    # a window of ones at (10, 10) and one of zeros at (10, 12); along row 10 both row weights are 1
    patches = torch.stack([torch.ones(1, 4, 4), torch.zeros(1, 4, 4)])
    out = paste_windows(torch.zeros(1, 20, 20), patches, torch.tensor([[10.0, 10.0], [10.0, 12.0]]),
                        torch.tensor([8.0, 8.0]), feather=0.25)
    # col 7: ones' weight 0.5, outside the zeros' window: 0.5 * 1 + 0.5 * 0; col 10: weights 1 and 1: 1 * (1 / 2);
    # col 13: weights 0.5 and 1: 1 * (0.5 / 1.5)
    assert torch.allclose(out[0, 10, [7, 10, 13]], torch.tensor([0.5, 0.5, 1 / 3]))


def test_blend_zero_is_the_hard_paste():
    canvas, patches = torch.rand(1, 30, 30), torch.rand(2, 1, 6, 6)
    centres, window = torch.tensor([[9.3, 11.0], [14.0, 15.6]]), torch.tensor([9.0, 7.0])
    hard = paste_windows(canvas, patches, centres, window)
    assert torch.equal(paste_windows(canvas, patches, centres, window, feather=0.0), hard)
    # and a window of ones in a canvas of zeros is 1 everywhere inside: no weight
    box = paste_windows(torch.zeros(1, 20, 20), torch.ones(1, 1, 4, 4), torch.tensor([[10.0, 10.0]]),
                        torch.tensor([8.0, 8.0]))
    assert box[0, 6:14, 6:14].eq(1).all() and box.sum() == 64


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # shape checks, fixed on purpose
def test_crop_and_paste_trace_with_positions_that_follow_the_points():
    """Traced on one set of keypoints, crop and paste cut and place the windows of others (nothing frozen)."""
    def crop_paste(image, points):
        crops = crop_at_points(image, points, (5, 6))
        return crops, paste_at_points(crops, points, image.shape[2:])

    gen = torch.Generator().manual_seed(0)
    traced = torch.jit.trace(crop_paste, (torch.rand(2, 1, 20, 24, generator=gen), torch.rand(2, 3, 2, generator=gen) * 20),
                             check_trace=False)
    image, points = torch.rand(3, 1, 20, 24, generator=gen), torch.rand(3, 3, 2, generator=gen) * 26 - 3
    for got, want in zip(traced(image, points), crop_paste(image, points)):
        assert torch.equal(got, want)
