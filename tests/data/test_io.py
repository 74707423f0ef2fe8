"""Readers and writers: rows stay rows, geometry survives, bad files are named."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from glsmonai.data.io import list_images, read_image, split_ext, write_mask


def _asymmetric() -> np.ndarray:
    arr = np.zeros((5, 9), np.uint8)
    arr[0, 8] = 200  # top right corner
    arr[4, 0] = 100  # bottom left corner
    return arr


def test_rows_and_cols_agree_between_nifti_and_png(tmp_path):
    arr = _asymmetric()
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(tmp_path / "a.nii.gz"))
    Image.fromarray(arr).save(tmp_path / "a.png")
    Image.fromarray(np.stack([arr] * 3, -1)).save(tmp_path / "rgb.png")
    for name in ("a.nii.gz", "a.png", "rgb.png"):
        got, geometry = read_image(tmp_path / name)
        assert got.shape == (5, 9) and geometry.shape == (5, 9), name
        assert got[0, 8] == pytest.approx(200, abs=1) and got[4, 0] == pytest.approx(100, abs=1), name


def test_mask_written_with_the_scan_geometry(tmp_path):
    img = sitk.GetImageFromArray(np.zeros((6, 7), np.float32))
    img.SetSpacing((0.5, 0.25))
    img.SetOrigin((10.0, -3.0))
    img.SetDirection((0.0, 1.0, 1.0, 0.0))
    sitk.WriteImage(img, str(tmp_path / "scan.nii.gz"))
    _, geometry = read_image(tmp_path / "scan.nii.gz")
    mask = np.zeros((6, 7), np.uint8)
    mask[1, 2] = 1
    out = write_mask(tmp_path / "scan_seg.nii.gz", mask, geometry)
    back = sitk.ReadImage(str(out))
    assert back.GetSpacing() == pytest.approx((0.5, 0.25))
    assert back.GetOrigin() == pytest.approx((10.0, -3.0))
    assert back.GetDirection() == pytest.approx((0.0, 1.0, 1.0, 0.0))
    assert np.array_equal(sitk.GetArrayFromImage(back), mask)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary file left behind"


def test_single_slice_volume_reads_as_2d_and_writes_back_3d(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((1, 4, 6), np.uint8)), str(tmp_path / "vol.nii.gz"))
    arr, geometry = read_image(tmp_path / "vol.nii.gz")
    assert arr.shape == (4, 6) and geometry.disk_dims == 3
    write_mask(tmp_path / "vol_seg.nii.gz", np.ones((4, 6)), geometry)
    assert sitk.ReadImage(str(tmp_path / "vol_seg.nii.gz")).GetSize() == (6, 4, 1)


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.nii.gz: file not found"):
        read_image(tmp_path / "missing.nii.gz")
    (tmp_path / "corrupt.nii.gz").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="corrupt.nii.gz: cannot be read"):
        read_image(tmp_path / "corrupt.nii.gz")
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((3, 4, 5), np.uint8)), str(tmp_path / "vol.nii.gz"))
    with pytest.raises(ValueError, match="vol.nii.gz: expected a 2D image"):
        read_image(tmp_path / "vol.nii.gz")


def test_split_ext_and_listing(tmp_path):
    assert split_ext("a.b.nii.gz") == ("a.b", ".nii.gz")
    assert split_ext("x.PNG") == ("x", ".PNG")
    for name in ("b.png", "a.nii.gz", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["a.nii.gz", "b.png"]
    with pytest.raises(FileNotFoundError, match="input folder not found"):
        list_images(tmp_path / "nowhere")


def _blocks(dtype=np.uint8, high=200) -> np.ndarray:
    arr = np.zeros((20, 30), dtype)
    arr[:6, -8:] = high  # top right
    arr[-6:, :8] = high // 2  # bottom left
    return arr


@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".png", ".jpg", ".bmp", ".tif", ".dcm"])
def test_every_reader_keeps_rows_and_cols(tmp_path, ext):
    arr = _blocks()
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(tmp_path / f"x{ext}"))
    got, geometry = read_image(tmp_path / f"x{ext}")
    assert got.shape == (20, 30) and geometry.shape == (20, 30)
    assert got[2, -3] == pytest.approx(200, abs=8) and got[-3, 2] == pytest.approx(100, abs=8) and got[2, 2] < 8


def test_16_bit_png(tmp_path):
    arr = _blocks(np.uint16, 60000)
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(tmp_path / "x.png"))
    got, _ = read_image(tmp_path / "x.png")
    assert got.max() == 60000 and got[-3, 2] == 30000


def test_mhd_mask_lands_with_its_data_file(tmp_path):
    write_mask(tmp_path / "m_seg.mhd", np.eye(5, dtype=np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_seg.mhd", "m_seg.raw"]
    assert np.array_equal(read_image(tmp_path / "m_seg.mhd")[0], np.eye(5))
