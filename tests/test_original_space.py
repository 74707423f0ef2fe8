"""crop_space original: sub-pixel keypoints, windows cut from the original scan and pasted back onto it,
the keypoint constraint, and a one-epoch run of the bundle with mixed scan sizes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from glsmonai.cli import main as cli_main
from glsmonai.data.io import read_image
from glsmonai.data.synth import write_phantom_dataset
from glsmonai.networks import GLSNet
from glsmonai.transforms import (
    RandKeypointAffined,
    WorkingGrid,
    crop_windows,
    decode_keypoints,
    heatmap_argmax,
    paste_windows,
    refine_peaks,
    window_in_original,
)

from test_bundle import TINY, bundle, check


def gaussian(shape, centre, sigma):
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * sigma**2))


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.5])
def test_refine_peaks_recovers_sub_pixel_centres(sigma):
    rng = np.random.default_rng(1)
    truth = np.stack([rng.uniform(5, 27, 6), rng.uniform(5, 35, 6)], axis=1)  # 6 peaks, off the grid
    heat = torch.tensor(np.stack([gaussian((32, 40), c, sigma) for c in truth]), dtype=torch.float32)[None]
    points, _ = heatmap_argmax(heat)
    refined = refine_peaks(heat, points)[0].numpy()
    assert np.abs(points[0].numpy() - truth).max() > 0.2  # the arg-max alone is off by up to half a pixel
    assert np.abs(refined - truth).max() < 0.02


def test_refine_peaks_stays_put_at_the_border_and_on_flat_tops():
    heat = torch.zeros(1, 2, 10, 10)
    heat[0, 0, 0, 4] = 1.0  # peak on the first row: no neighbour above
    heat[0, 0, 1, 4] = 0.5
    heat[0, 1, 5, 5:7] = 1.0  # flat top of two pixels
    points, _ = heatmap_argmax(heat)
    refined = refine_peaks(heat, points)[0]
    assert refined[0].tolist() == [0.0, 4.0]
    assert abs(float(refined[1, 0]) - 5.0) < 1e-6 and 5.0 <= float(refined[1, 1]) <= 5.5


def test_decode_keypoints_keeps_peaks_near_the_predicted_boundary():
    heat = torch.zeros(2, 1, 40, 40)
    heat[:, 0] = torch.tensor(0.9 * gaussian((40, 40), (30, 30), 1.5) + 0.6 * gaussian((40, 40), (10.3, 14.6), 1.5))
    mask = torch.zeros(2, 1, 40, 40)
    mask[0, 0, 5:11, 5:15] = 1  # image 0: a structure whose corner holds the weaker peak
    heat = torch.logit(heat.clamp(1e-6, 1 - 1e-6))  # decode_keypoints takes logits
    free = decode_keypoints(heat, None, 0)
    assert torch.allclose(free["points"][0, 0], torch.tensor([30.0, 30.0]), atol=0.05)
    found = decode_keypoints(heat, mask, band=2)
    assert torch.allclose(found["points"][0, 0], torch.tensor([10.3, 14.6]), atol=0.1)
    assert 0.5 < float(found["confidence"][0, 0]) < 0.8  # the strongest response was off the structure
    # image 1 has an empty mask: the fallback is the unconstrained peak, with full confidence
    assert torch.allclose(found["points"][1, 0], torch.tensor([30.0, 30.0]), atol=0.05)
    assert float(found["confidence"][1, 0]) == pytest.approx(1.0)


def test_decode_keypoints_finds_the_peak_of_a_saturated_heatmap():
    """A confident decoder's sigmoid is exactly 1.0 over many pixels; the peak must still be found."""
    rows, cols = np.mgrid[:40, :50]
    logits = torch.tensor(40.0 - ((rows - 22.3) ** 2 + (cols - 31.6) ** 2) / 8.0, dtype=torch.float32)[None, None]
    assert (torch.sigmoid(logits) == 1.0).sum() > 20  # ties on the probabilities
    found = decode_keypoints(logits)
    assert torch.allclose(found["points"][0, 0], torch.tensor([22.3, 31.6]), atol=0.05)
    assert float(found["scores"][0, 0]) == pytest.approx(1.0)


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
    from glsmonai.transforms import CropWindowd, ToWorkingSized

    data = ToWorkingSized(["image", "label"], (64, 64), source_keys={"image": "source", "label": "source_label"})(data)
    return CropWindowd((8, 8))(data)


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


def test_network_original_space_outputs():
    net = GLSNet(num_keypoints=2, crop_size=(8, 8), channels=(4, 8, 8, 16, 16), crop_space="original",
                 local_size=(16, 16), keypoint_band=2).eval()
    grid = WorkingGrid((120, 90), (32, 32))
    image, source = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 120, 90)
    to_source = torch.from_numpy(grid.to_original_affine())[None].repeat(2, 1, 1)  # (2, 2, 3)
    window = torch.tensor([[30.0, 30.0], [24.0, 20.0]])
    with torch.no_grad():
        out = net(image, source=source, to_source=to_source, window=window)
    assert out["local"].shape == out["fused"].shape == out["global_windows"].shape == (4, 1, 16, 16)
    assert out["centres"].shape == (2, 2, 2) and out["confidence"].shape == (2, 2)
    assert torch.allclose(out["centres"][0], torch.tensor(grid.to_original(out["keypoints"][0].numpy()), dtype=torch.float32), atol=1e-3)
    # the fusion starts as "the local prediction": the same decision wherever the local one is clear
    local = torch.sigmoid(out["local"])
    clear = (local - 0.5).abs() > 0.05
    assert clear.sum() > 100
    assert ((out["fused"] > 0) == (local > 0.5))[clear].float().mean() > 0.98
    with pytest.raises(ValueError, match="needs source"):
        net(image)


@pytest.fixture(scope="module")
def mixed_sizes(tmp_path_factory):
    """Iris phantoms of two sizes and aspect ratios in one datalist (the batches mix them)."""
    root = tmp_path_factory.mktemp("mixed")
    write_phantom_dataset("iris", root / "a", n=6, seed=5, size=(64, 72))
    write_phantom_dataset("iris", root / "b", n=6, seed=6, size=(90, 70))
    lists = [json.loads((root / p / "datalist.json").read_text()) for p in ("a", "b")]
    merged = dict(lists[0])
    for split in ("training", "validation", "testing"):
        merged[split] = [
            {**e, "image": f"{p}/{e['image']}", "label": f"{p}/{e['label']}"}
            for p, dl in zip(("a", "b"), lists) for e in dl.get(split, [])
        ]
    (root / "datalist.json").write_text(json.dumps(merged))
    return root


def test_one_epoch_with_original_crops(mixed_sizes, tmp_path):
    out = tmp_path / "run"
    proc = bundle("training", ["train.json"], "--dataset_dir", str(mixed_sizes), "--output_dir", str(out), *TINY,
                  "--crop_space", "original", "--local_size", "[32,32]", "--crop_size", "[16,16]")
    check(proc)
    info = json.loads((out / "models" / "gls_model.json").read_text())
    assert info["network"]["crop_space"] == "original" and info["network"]["local_size"] == [32, 32]
    assert (out / "models" / "stage3_best.pt").is_file()
    images = mixed_sizes / "images"
    images.mkdir()
    for sub in ("a", "b"):
        for f in (mixed_sizes / sub / "images").glob("*0001*"):
            shutil.copy(f, images / f"{sub}_{f.name}")
    for extra in ([], ["--no-fusion"], ["--keypoint-band", "2"]):
        pred = tmp_path / ("pred" + "".join(extra))
        assert cli_main(["predict", "-i", str(images), "-o", str(pred), "-m", str(out / "models"), *extra]) == 0
        for f in images.iterdir():
            mask, geometry = read_image(pred / f.name.replace(".nii.gz", "_seg.nii.gz"))
            assert mask.shape == read_image(f)[1].shape
        kp = pd.read_csv(pred / "keypoints.csv")
        assert len(kp) == 4 and kp["confidence"].between(0, 1).all()


def test_compare_working_and_original_crops(tiny_iris, tmp_path):
    rc = cli_main(["compare", "--datalist", str(tiny_iris / "datalist.json"), "--dataset_dir", str(tiny_iris),
                   "--models", "gls_working", "gls_original", "--epochs", "1", "--out", str(tmp_path), "--panels", "1",
                   "--set", "image_size=[48,48]", "crop_size=[16,16]", "channels=[4,8,8,16,16]", "num_workers=0",
                   "batch_size=3", "sigma=2.0"])
    assert rc == 0
    table = pd.read_csv(tmp_path / "table.csv").set_index("model")
    assert list(table.index) == ["gls_working", "gls_original"]
    assert table[["kp_err_mean", "kp_err_median", "kp_err_max"]].ge(0).all().all()
    assert table["kp_missed"].between(0, 1).all() and table["gflops"].gt(0).all()
    assert json.loads((tmp_path / "gls_original" / "models" / "gls_model.json").read_text())["network"]["local_size"] == [32, 32]


def test_decode_keypoints_keeps_two_channels_off_one_spot():
    """Channel 1 answers both roots, the left one more strongly than the right one; channel 0 owns the
    left root. With a separation, channel 1 takes the right root."""
    rows, cols = np.mgrid[:40, :80]
    blob = lambda r, c, h: h - ((rows - r) ** 2 + (cols - c) ** 2) / 4.0  # noqa: E731
    left, right = blob(20, 10, 30.0), blob(22, 70, 10.0)
    logits = torch.tensor(np.stack([left, np.maximum(blob(20, 10, 16.0), right)]), dtype=torch.float32)[None]
    together = decode_keypoints(logits)["points"][0]
    assert torch.allclose(together[1], together[0], atol=0.5)
    apart = decode_keypoints(logits, separation=10.0)["points"][0]
    assert torch.allclose(apart[0], torch.tensor([20.0, 10.0]), atol=0.1)
    assert torch.allclose(apart[1], torch.tensor([22.0, 70.0]), atol=0.1)
