"""The bad-input corpus: odd or broken scans, made at run time, predicted in one batch.

Each kind either works (an odd but valid scan: its mask has the scan's size and geometry, its keypoints
lie on it) or fails with one line that names the file and what is wrong; the batch goes on past it and
the inputs are left untouched. docs/prediction.md "Bad input" shows the same table.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from PIL import Image

from glsmonai.cli import main as cli_main
from glsmonai.data.io import read_image
from tests.helpers import untrained_model_folder

RNG = np.random.default_rng(0)


def noise(shape, dtype=np.uint8) -> np.ndarray:
    return (RNG.random(shape) * 200).astype(dtype)


def sitk_write(array: np.ndarray, spacing=None, direction=None):
    def write(path: Path) -> None:
        image = sitk.GetImageFromArray(array)
        if spacing is not None:
            image.SetSpacing(spacing)
        if direction is not None:
            image.SetDirection(direction)
        sitk.WriteImage(image, str(path))
    return write


def nifti_cut_short(path: Path) -> None:
    sitk_write(noise((60, 70)))(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def with_nan(path: Path) -> None:
    image = noise((40, 50)).astype(np.float32)
    image[5, 5] = np.nan
    sitk_write(image)(path)


def with_inf(path: Path) -> None:
    image = noise((40, 50)).astype(np.float32)
    image[7, 9] = np.inf
    sitk_write(image)(path)


def header_without_data(path: Path) -> None:
    sitk_write(noise((40, 50)))(path)
    path.with_suffix(".raw").unlink()


def png(array: np.ndarray) -> Callable[[Path], None]:
    return lambda path: Image.fromarray(array).save(path)


#: name -> (how to make it, None: it works | a regex its one-line failure matches)
CORPUS: dict[str, tuple[Callable[[Path], None], str | None]] = {
    "empty.nii.gz": (lambda p: p.write_bytes(b""), r"cannot be read as an image"),
    "cut_short.nii.gz": (nifti_cut_short, r"truncated or damaged"),
    "text.png": (lambda p: p.write_text("not an image"), r"cannot be read as an image"),
    "three_slices.nii.gz": (sitk_write(noise((3, 40, 50))), r"expected a 2D image"),
    "nan.nii.gz": (with_nan, r"1 pixel\(s\) are NaN or infinite"),
    "inf.mha": (with_inf, r"1 pixel\(s\) are NaN or infinite"),
    "one_pixel.png": (png(noise((1, 1))), r"too small"),
    "folder.png": (lambda p: p.mkdir(), r"is a folder"),
    "dangling.png": (lambda p: p.symlink_to(p.with_name("gone.png")), r"broken symbolic link"),
    "no_data.mhd": (header_without_data, r"its data file no_data.raw is missing"),
    "constant.nii.gz": (sitk_write(np.full((40, 50), 9, np.uint8)), None),
    "strip_16x300.png": (png(noise((16, 300))), None),
    "tall_300x16.png": (png(noise((300, 16))), None),
    "large_2000x2400.nii.gz": (sitk_write(noise((2000, 2400))), None),
    "UPPER.PNG": (png(noise((40, 50))), None),
    "with spaces.png": (png(noise((40, 50))), None),
    "nicht_ascii_äöü.nii.gz": (sitk_write(noise((40, 50))), None),
    "int64.nii.gz": (sitk_write(noise((40, 50), np.int64)), None),
    "float64.nii.gz": (sitk_write(noise((40, 50), np.float64)), None),
    "binary_0_1.nii.gz": (sitk_write((noise((40, 50)) > 100).astype(np.uint8)), None),
    "rgb.png": (png(noise((40, 50, 3))), None),
    "sixteen_bit.png": (png(noise((40, 50), np.uint16) * 300), None),
    "oblique_anisotropic.nii.gz": (sitk_write(noise((40, 50)), spacing=(0.3, 1.7), direction=(0.6, -0.8, 0.8, 0.6)), None),
    "one_slice_volume.nii.gz": (sitk_write(noise((1, 40, 50))), None),
    "same_stem.nii.gz": (sitk_write(noise((40, 50))), None),
    "same_stem.png": (png(noise((44, 52))), None),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    for name, (make, _) in CORPUS.items():
        make(folder / name)
    return folder


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_the_corpus_has_at_least_25_kinds():
    assert len(CORPUS) >= 25


def test_every_kind_works_or_fails_in_one_line_and_the_batch_goes_on(corpus, tmp_path, capsys):
    model = untrained_model_folder(tmp_path / "model")
    before = digest(corpus)
    out = tmp_path / "out"
    code = cli_main(["predict", "-i", str(corpus), "-o", str(out), "-m", str(model), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    failed = dict(re.findall(r"^  (.+?): (.+)$", err, flags=re.M))  # the closing list: "  <file>: <reason>"
    expected_failures = {name: reason for name, (_, reason) in CORPUS.items() if reason is not None}
    assert {Path(f).name for f in failed} == set(expected_failures)
    for path, message in failed.items():
        assert re.search(expected_failures[Path(path).name], message), (path, message)
        assert "\n" not in message
    table = pd.read_csv(out / "keypoints.csv")
    for name, (_, reason) in CORPUS.items():
        if reason is not None:
            continue
        scan, geometry = read_image(corpus / name)
        stem = name.split(".")[0]
        ext = name[len(stem):]
        mask, mask_geometry = read_image(out / f"{stem}_seg{ext}")
        assert mask.shape == scan.shape, name
        assert np.allclose(mask_geometry.spacing, geometry.spacing) and np.allclose(mask_geometry.direction, geometry.direction)
        rows = table[table["image"] == name]
        assert len(rows) == 2, name
        assert rows["row"].between(0, scan.shape[0] - 1).all() and rows["col"].between(0, scan.shape[1] - 1).all(), name
    assert digest(corpus) == before  # inputs never modified
