"""``predict`` as a pipeline: workers read ahead, the network takes batches, a thread writes. The result must
not depend on any of that: every scan's mask and keypoints equal what :meth:`Predictor.predict` gives it alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glsmonai.data.io import read_image
from glsmonai.inference import Predictor, run_inference
from tests.helpers import random_scans, untrained_model_folder


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """Seven scans of three sizes and two formats, and one file that is not an image."""
    folder = tmp_path_factory.mktemp("scans")
    random_scans(folder, [(40, 50), (40, 50), (64, 48), (33, 70), (40, 50), (64, 48), (50, 50)])
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


@pytest.mark.parametrize(("crop_space", "tta"), [("working", True), ("original", False), ("original", True)])
def test_batches_workers_and_the_writer_thread_change_nothing(scans, tmp_path, crop_space, tta):
    model = untrained_model_folder(tmp_path / "model", crop_space, tta)
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
    model = untrained_model_folder(tmp_path / "model", "working", False)
    run_inference(scans, tmp_path / "a", model, batch_size=1, num_workers=0, overlays=False, device="cpu")
    run_inference(scans, tmp_path / "b", model, batch_size=4, num_workers=1, overlays=False, device="cpu")
    assert pd.read_csv(tmp_path / "a" / "keypoints.csv").equals(pd.read_csv(tmp_path / "b" / "keypoints.csv"))
    for mask in (tmp_path / "a").glob("*_seg*"):
        assert np.array_equal(read_image(mask)[0], read_image(tmp_path / "b" / mask.name)[0])
