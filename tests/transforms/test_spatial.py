"""The working grid and its maps to the original scan, random keypoint-aware augmentation, original-space windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glsmonai.transforms import CropWindowd, RandKeypointAffined, ToWorkingSized, WorkingGrid, crop_windows, window_in_original


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


@pytest.mark.parametrize("shape", [(300, 500), (517, 211), (64, 64), (97, 1003)])
def test_original_windows_land_on_the_right_pixels(shape):
    """A keypoint found on the working grid, mapped as the network maps it, centres its window on the
    original pixel it came from, for scans of several sizes and aspect ratios."""
    grid = WorkingGrid(shape, (64, 64))
    rng = np.random.default_rng(shape[0])
    truth = np.stack([rng.uniform(10, shape[0] - 10, 3), rng.uniform(10, shape[1] - 10, 3)], axis=1)
    working = torch.tensor(grid.to_working(truth), dtype=torch.float32)[None]
    affine = torch.from_numpy(grid.to_original_affine())[None]  # (1, 2, 3)
    centres = working @ affine[:, :, :2].transpose(1, 2) + affine[:, :, 2][:, None]
    assert np.allclose(centres[0].numpy(), truth, atol=1e-3)
    rows, cols = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    ramps = torch.tensor(np.stack([rows, cols]))[None]  # bilinear sampling of a ramp is exact
    window = torch.tensor([[12.0, 18.0]])
    crops = crop_windows(ramps, centres, window, (6, 9))  # 2 original pixels per crop pixel
    for k in range(3):
        expected_rows = truth[k, 0] + (np.arange(6) + 0.5 - 3) * 2
        expected_cols = truth[k, 1] + (np.arange(9) + 0.5 - 4.5) * 2
        assert np.allclose(crops[k, 0, :, 0].numpy(), expected_rows, atol=1e-2)
        assert np.allclose(crops[k, 1, 0, :].numpy(), expected_cols, atol=1e-2)
    # the same windows defined on the working grid and sampled through the map, as the network does
    frame_window = window / affine[:, :, :2].norm(dim=1)
    via_frame = crop_windows(ramps, working, frame_window, (6, 9), to_image=affine)
    assert torch.allclose(via_frame, crops, atol=1e-2)
    # window sizes: the working crop's field of view by default, then pixels, then millimetres
    assert np.allclose(window_in_original(grid, (16, 16)), 16 / grid.scale)
    assert np.allclose(window_in_original(grid, (16, 16), window=(40, 50)), (40, 50))
    assert np.allclose(window_in_original(grid, (16, 16), (40, 50), (3.0, 3.0), (0.1, 0.2)), (30, 15))


def test_augmentation_is_carried_to_the_original_windows():
    """After a random flip / rotation / scaling of the working arrays, a window around the moved keypoint,
    sampled from the untouched original through the composed map, shows what the warped working image
    shows there: the same anatomy, in the same orientation."""
    shape = (240, 200)
    rows, cols = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    smooth = np.sin(rows / 17.0) + np.cos(cols / 11.0) + rows / 100.0  # smooth, not symmetric
    data = {"image": torch.tensor(smooth)[None], "label": torch.tensor(smooth)[None],
            "keypoints": np.array([[100.0, 60.0], [150.0, 140.0]], np.float32)}
    data = load_free_chain(shape, data)
    aug = RandKeypointAffined(["image", "label"], prob=1.0, rotate_range=0.4, scale_range=0.15, flip_prob=1.0)
    aug.set_random_state(3)
    moved = aug(data)
    assert not np.allclose(moved["to_source"], data["to_source"])
    to_source = torch.as_tensor(moved["to_source"])[None]
    frame = torch.as_tensor(moved["keypoints"])[None]
    window_w = torch.tensor([[16.0, 16.0]])
    from_working = crop_windows(torch.as_tensor(moved["image"])[None].float(), frame, window_w, (8, 8))
    from_source = crop_windows(torch.as_tensor(data["source"])[None].float(), frame, window_w, (8, 8), to_image=to_source)
    assert (from_working - from_source).abs().mean() < 0.05
    # and the keypoint's window centre maps back onto the original keypoint (flip swaps the pair)
    centres = frame @ to_source[:, :, :2].transpose(1, 2) + to_source[:, :, 2][:, None]
    assert np.allclose(centres[0].numpy()[::-1], [[100.0, 60.0], [150.0, 140.0]], atol=0.05)


def load_free_chain(shape, data):
    data = ToWorkingSized(["image", "label"], (64, 64), source_keys={"image": "source", "label": "source_label"})(data)
    return CropWindowd((8, 8))(data)
