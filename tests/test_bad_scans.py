"""Bad scans for ``predict``: each is named in one line and skipped, and the batch goes on."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from glsmonai.cli import main as cli_main
from glsmonai.data.io import read_image
from tests.helpers import random_scans, untrained_model_folder


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return untrained_model_folder(tmp_path_factory.mktemp("model"))


def write_float(path, array):
    sitk.WriteImage(sitk.GetImageFromArray(np.asarray(array, np.float32)), str(path))


def test_a_truncated_nifti_is_refused_by_name(tmp_path):
    good = random_scans(tmp_path, [(60, 70)])[0]
    data = good.read_bytes()
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(data[: len(data) // 2])
    assert read_image(good)[0].shape == (60, 70)
    with pytest.raises(ValueError, match=r"cut\.nii\.gz: truncated"):
        read_image(cut)
    # the whole stream of a file whose header promises more than it holds is refused too
    short = tmp_path / "short.nii.gz"
    short.write_bytes(gzip.compress(gzip.decompress(data)[:-100]))
    with pytest.raises(ValueError, match="truncated"):
        read_image(short)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_pixels_are_refused(tmp_path, bad):
    image = np.ones((20, 30), np.float32)
    image[3, 4] = bad
    write_float(tmp_path / "x.nii.gz", image)
    with pytest.raises(ValueError, match=r"x\.nii\.gz: 1 pixel\(s\) are NaN or infinite"):
        read_image(tmp_path / "x.nii.gz")


def test_predict_names_each_bad_scan_and_predicts_the_rest(model, tmp_path, capsys):
    folder = tmp_path / "scans"
    random_scans(folder, [(40, 44), (40, 44)])
    image = np.ones((40, 44), np.float32)
    image[0, 0] = np.nan
    write_float(folder / "nan.nii.gz", image)
    (folder / "dangling.png").symlink_to(folder / "gone.png")
    (folder / "text.png").write_text("not an image")
    assert cli_main(["predict", "-i", str(folder), "-o", str(tmp_path / "out"), "-m", str(model)]) == 1
    err = capsys.readouterr().err
    assert "3 file(s) failed" in err
    assert "dangling.png: broken symbolic link" in err and "nan.nii.gz: 1 pixel(s) are NaN" in err
    assert "text.png: cannot be read as an image" in err
    assert "Traceback" not in err
    assert sorted(pd.read_csv(tmp_path / "out" / "keypoints.csv")["image"].unique()) == ["scan000.nii.gz", "scan001.png"]


@pytest.mark.parametrize("shape", [(16, 300), (300, 16), (40, 44)])
def test_keypoints_always_lie_on_the_scan(model, tmp_path, shape):
    folder = tmp_path / "scans"
    folder.mkdir()
    write_float(folder / "constant.nii.gz", np.full(shape, 7.0))  # nothing to find: a constant scan
    random_scans(folder, [shape], seed=3)
    assert cli_main(["predict", "-i", str(folder), "-o", str(tmp_path / "out"), "-m", str(model)]) == 0
    table = pd.read_csv(tmp_path / "out" / "keypoints.csv")
    assert table["row"].between(0, shape[0] - 1).all() and table["col"].between(0, shape[1] - 1).all()
    off = table["confidence"] == 0  # a keypoint put back on the scan has no confidence and is flagged
    assert (table.loc[off, "flag"] == "unsure").all()
    if shape == (16, 300):  # 2 rows of scan in a 32 x 32 letterbox: this network's peaks fall in the padding
        assert off.any()
