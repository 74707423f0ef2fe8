"""Datalists: paths resolve against the data set folder, and bad lists name the file and the entry."""

from __future__ import annotations

import pytest

from glsmonai.data.datalist import load_datalist, write_datalist


def test_datalist_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="datalist not found"):
        load_datalist(tmp_path / "none.json", tmp_path, "training")
    path = write_datalist(tmp_path / "d.json", {"training": [{"image": "img/x.nii.gz", "label": "lab/x.nii.gz"}]})
    with pytest.raises(FileNotFoundError, match=r"training\[0\] image file not found: .*img/x.nii.gz"):
        load_datalist(path, tmp_path, "training")
    with pytest.raises(ValueError, match="no entries under 'validation'"):
        load_datalist(path, tmp_path, "validation")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        load_datalist(tmp_path / "bad.json", tmp_path, "training")


def test_datalist_paths_become_absolute(tiny_iris):
    entries = load_datalist(tiny_iris / "datalist.json", tiny_iris, "training")
    assert len(entries) == 6
    assert all(e["image"].startswith(str(tiny_iris)) and len(e["keypoints"]) == 2 for e in entries)
