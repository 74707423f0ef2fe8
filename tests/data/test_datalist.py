"""Datalists: paths resolve against the data set folder, and bad lists name the file and the entry."""

from __future__ import annotations

import json

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


def test_every_bad_entry_is_listed_at_once(tiny_iris, tmp_path):
    content = json.loads((tiny_iris / "datalist.json").read_text())
    entries = content["training"]
    entries[0]["image"] = "images/missing.nii.gz"
    entries[1]["keypoints"] = [[5, 5], [1000, 3]]  # the phantoms are 64 x 72
    entries[2]["keypoints"] = [[5, 5]]
    entries[3]["keypoints"] = [["a", 5], [1, 2]]
    entries[4] = {"label": entries[4]["label"]}
    path = write_datalist(tmp_path / "bad.json", content)
    with pytest.raises(ValueError) as err:
        load_datalist(path, tiny_iris, "training", num_keypoints=2)
    lines = str(err.value).splitlines()
    assert lines[0] == f"{path}: 5 bad entries in 'training':"
    assert lines[1].endswith("images/missing.nii.gz") and "training[0] image file not found" in lines[1]
    assert "training[1]" in lines[2] and "keypoint(s) [1] lie outside the 64 x 72 image" in lines[2]
    assert "training[2]" in lines[3] and "1 keypoint(s), the task has 2" in lines[3]
    assert "training[3]" in lines[4] and "not a list of [row, col] numbers" in lines[4]
    assert lines[5] == "  training[4] has no 'image'"
    assert len(load_datalist(tiny_iris / "datalist.json", tiny_iris, "training", num_keypoints=2)) == 6


def test_datalist_paths_become_absolute(tiny_iris):
    entries = load_datalist(tiny_iris / "datalist.json", tiny_iris, "training")
    assert len(entries) == 6
    assert all(e["image"].startswith(str(tiny_iris)) and len(e["keypoints"]) == 2 for e in entries)
