"""Crops and pastes: fixed-size crops at integer points, and windows sampled (and pasted back) at sub-pixel centres."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glsmonai.transforms import WorkingGrid, crop_at_points, crop_windows, paste_at_points, paste_windows


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
