"""Transforms on hand-made cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai.transforms import GenerateHeatmapd

from glsmonai.keypoints import iris_roots
from glsmonai.transforms import (
    Keypointsd,
    RandKeypointAffined,
    ToWorkingSized,
    WorkingGrid,
    crop_at_points,
    heatmap_argmax,
    paste_at_points,
)


def _peak(arr) -> tuple[int, int]:
    arr = np.asarray(arr)
    return tuple(int(i) for i in np.unravel_index(arr.argmax(), arr.shape))


class TestHeatmap:
    def test_peak_at_each_keypoint(self):
        pts = np.array([[5.0, 7.0], [20.0, 30.0]], dtype=np.float32)
        d = {"image": torch.zeros(1, 32, 40), "label": torch.zeros(1, 32, 40), "keypoints": pts}
        out = GenerateHeatmapd(keys="keypoints", heatmap_keys="heatmap", ref_image_keys="image", sigma=2.0)(d)
        hm = np.asarray(out["heatmap"])
        assert hm.shape == (2, 32, 40)
        assert _peak(hm[0]) == (5, 7) and _peak(hm[1]) == (20, 30)
        assert hm[0].max() == pytest.approx(1.0)
        # Gaussian falls off with the set sigma: one sigma away, exp(-1/2)
        assert hm[0, 5, 9] == pytest.approx(np.exp(-0.5), abs=0.02)

    def test_argmax_recovers_points_and_scores(self):
        hm = torch.zeros(2, 3, 10, 12)
        hm[0, 0, 2, 3], hm[0, 1, 9, 11], hm[0, 2, 0, 0] = 0.9, 0.8, 0.7
        hm[1, :, 4, 5] = 0.5
        points, scores = heatmap_argmax(hm)
        assert points.tolist() == [[[2, 3], [9, 11], [0, 0]], [[4, 5], [4, 5], [4, 5]]]
        assert scores[0].tolist() == pytest.approx([0.9, 0.8, 0.7])


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


class TestWorkingGrid:
    @pytest.mark.parametrize("shape", [(40, 60), (60, 40), (33, 33), (100, 17)])
    def test_points_follow_pixels(self, shape):
        grid = WorkingGrid(shape, (32, 32))
        r, c = shape[0] // 3, shape[1] // 2
        img = torch.zeros(1, *shape)
        img[0, r - 1 : r + 2, c - 1 : c + 2] = 1  # a 3x3 blob survives down-scaling
        work = grid.image_to_working(img)
        assert tuple(work.shape[1:]) == (32, 32)
        expected = grid.to_working(np.array([[r, c]]))[0]
        blob = np.argwhere(np.asarray(work[0]) > 0.5 * float(work.max()))
        assert np.allclose(blob.mean(axis=0), expected, atol=1.0)
        assert np.allclose(grid.to_original(grid.to_working(np.array([[r, c]]))), [[r, c]])

    def test_image_round_trip_shape_and_content(self):
        img = torch.zeros(1, 50, 80)
        img[0, 10:30, 20:60] = 1
        grid = WorkingGrid((50, 80), (64, 64))
        back = grid.image_to_original(grid.image_to_working(img))
        assert tuple(back.shape) == (1, 50, 80)
        assert ((back > 0.5) == (img > 0.5)).float().mean() > 0.98

    def test_dict_version_moves_keypoints(self):
        d = {"image": torch.zeros(1, 40, 80), "label": torch.zeros(1, 40, 80), "keypoints": np.array([[0.0, 0.0], [39.0, 79.0]])}
        out = ToWorkingSized(["image", "label"], (32, 32))(d)
        assert out["image"].shape == (1, 32, 32) and out["label"].shape == (1, 32, 32)
        # aspect kept: 40 x 80 -> 16 x 32, padded by 8 rows above and below
        assert out["working_grid"].resized_shape == (16, 32) and out["working_grid"].pad_before == (8, 0)
        assert np.allclose(out["keypoints"], [[7.7, -0.3], [23.3, 31.3]], atol=0.01)


class TestRandKeypointAffine:
    def _dot_case(self):
        img = torch.zeros(1, 48, 64)
        pts = np.array([[20.0, 15.0], [30.0, 45.0]])
        for r, c in pts.astype(int):
            img[0, r - 1 : r + 2, c - 1 : c + 2] = 1
        return {"image": img, "label": (img > 0).float(), "keypoints": pts.astype(np.float32)}

    @pytest.mark.parametrize("seed", range(6))
    def test_keypoints_follow_the_image(self, seed):
        t = RandKeypointAffined(["image", "label"], prob=1.0, rotate_range=0.5, scale_range=0.2, translate_range=0.1,
                                flip_prob=0.5, flip_swap=[])
        t.set_random_state(seed)
        out = t(self._dot_case())
        img = np.asarray(out["image"][0])
        for r, c in out["keypoints"]:
            window = img[int(round(r)) - 2 : int(round(r)) + 3, int(round(c)) - 2 : int(round(c)) + 3]
            assert window.max() > 0.5, f"no dot near moved keypoint {(r, c)}"

    def test_flip_swaps_left_and_right(self):
        t = RandKeypointAffined(["image", "label"], prob=0.0, flip_prob=1.0, flip_swap=[[0, 1]])
        out = t(self._dot_case())
        # mirrored columns: 15 -> 48, 45 -> 18; swapped so the left point stays first
        assert np.allclose(out["keypoints"], [[30.0, 18.0], [20.0, 48.0]], atol=1e-4)
        assert out["keypoints"][0, 1] < out["keypoints"][1, 1]
        assert float(out["image"][0, 30, 18]) == 1.0 and float(out["label"][0, 20, 48]) == 1.0

    def test_identity_when_nothing_drawn(self):
        case = self._dot_case()
        out = RandKeypointAffined(["image", "label"], prob=0.0, flip_prob=0.0)(case)
        assert torch.equal(out["image"], case["image"]) and np.array_equal(out["keypoints"], case["keypoints"])


class TestKeypointRules:
    def test_iris_roots_on_hand_made_mask(self):
        mask = np.zeros((30, 60), bool)
        mask[10:16, 5:25] = True  # left segment, root at col 5
        mask[10:16, 35:55] = True  # right segment, root at col 54
        roots = iris_roots(mask)
        # pixels within 2 px of each far end: cols 5-7 and 52-54
        assert np.allclose(roots, [[12.5, 6.0], [12.5, 53.0]], atol=0.01)

    def test_order_is_left_first_whatever_the_sizes(self):
        mask = np.zeros((30, 60), bool)
        mask[10:12, 2:10] = True  # small left
        mask[10:20, 30:58] = True  # large right
        roots = iris_roots(mask)
        assert roots[0, 1] < roots[1, 1]

    def test_one_component_is_an_error(self):
        mask = np.zeros((10, 10), bool)
        mask[2:5, 2:5] = True
        with pytest.raises(ValueError, match="1 connected component"):
            iris_roots(mask)

    def test_keypointsd_prefers_datalist_then_rule(self):
        label = torch.zeros(1, 30, 60)
        label[0, 10:16, 5:25] = 1
        label[0, 10:16, 35:55] = 1
        t = Keypointsd("label", 2, "iris_roots")
        given = t({"label": label, "keypoints": [[1, 2], [3, 4]]})["keypoints"]
        assert given.tolist() == [[1, 2], [3, 4]]
        derived = t({"label": label})["keypoints"]
        assert np.allclose(derived, [[12.5, 6.0], [12.5, 53.0]], atol=0.01)

    def test_keypointsd_wrong_count_names_the_file(self):
        t = Keypointsd("label", 3, None)
        with pytest.raises(ValueError, match="case7.nii.gz: expected 3 keypoints"):
            t({"label": torch.zeros(1, 4, 4), "label_path": "case7.nii.gz", "keypoints": [[1, 1]]})
