"""``predict`` as a pipeline: workers read ahead, the network takes batches, a thread writes. The result must
not depend on any of that: every scan's mask and keypoints equal what :meth:`Predictor.predict` gives it alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from glsmonai.data.io import read_image, write_image
from glsmonai.inference import Predictor, run_inference
from glsmonai.model_folder import stage_checkpoint, write_model_info
from glsmonai.networks import GLSNet


def model_folder(path, crop_space: str, tta: bool):
    """An untrained but complete stage-3 model folder (seeded weights: outputs are arbitrary, yet fixed)."""
    torch.manual_seed(1)
    net = GLSNet(crop_size=(8, 8), channels=(4, 8, 16), crop_space=crop_space, keypoint_band=2)
    write_model_info(path, net, {"image_size": [32, 32], "flip_swap": [[0, 1]], "num_components": 2,
                                 "predict": {"tta": tta, "components": "task"}})
    for stage in ("stage1", "stage2", "stage3"):
        torch.save(net.state_dict(), stage_checkpoint(path, stage))
    return path


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """Seven scans of three sizes and two formats, and one file that is not an image."""
    folder = tmp_path_factory.mktemp("scans")
    rng = np.random.default_rng(0)
    for i, shape in enumerate([(40, 50), (40, 50), (64, 48), (33, 70), (40, 50), (64, 48), (50, 50)]):
        ext = ".png" if i % 2 else ".nii.gz"
        write_image(folder / f"scan{i}{ext}", (rng.random(shape) * 255).astype(np.uint8))
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


@pytest.mark.parametrize(("crop_space", "tta"), [("working", True), ("original", False), ("original", True)])
def test_batches_workers_and_the_writer_thread_change_nothing(scans, tmp_path, crop_space, tta):
    model = model_folder(tmp_path / "model", crop_space, tta)
    failures = run_inference(scans, tmp_path / "out", model, batch_size=3, num_workers=1, device="cpu")
    assert [f for f, _ in failures] == [str(scans / "broken.png")]  # named, and the batch went on
    predictor = Predictor(model, "cpu")
    table = pd.read_csv(tmp_path / "out" / "keypoints.csv")
    images = sorted(p for p in scans.iterdir() if p.name != "broken.png")
    assert sorted(table["image"].unique()) == sorted(p.name for p in images)
    for path in images:
        alone = predictor.predict(path)
        stem = path.name.split(".")[0]
        ext = ".png" if path.name.endswith(".png") else ".nii.gz"
        written, geometry = read_image(tmp_path / "out" / f"{stem}_seg{ext}")
        assert geometry.shape == alone.geometry.shape
        assert np.array_equal(written, alone.mask)
        rows = table[table["image"] == path.name].sort_values("k")
        assert np.allclose(rows[["row", "col"]].to_numpy(), alone.keypoints, atol=2e-3)
        assert (tmp_path / "out" / "overlays" / f"{stem}.png").is_file()


def test_without_workers_the_same_outputs(scans, tmp_path):
    model = model_folder(tmp_path / "model", "working", False)
    run_inference(scans, tmp_path / "a", model, batch_size=1, num_workers=0, overlays=False, device="cpu")
    run_inference(scans, tmp_path / "b", model, batch_size=4, num_workers=1, overlays=False, device="cpu")
    assert pd.read_csv(tmp_path / "a" / "keypoints.csv").equals(pd.read_csv(tmp_path / "b" / "keypoints.csv"))
    for mask in (tmp_path / "a").glob("*_seg*"):
        assert np.array_equal(read_image(mask)[0], read_image(tmp_path / "b" / mask.name)[0])
