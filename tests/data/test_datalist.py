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


def _without_keypoints(tiny_iris, tmp_path, task: dict | None = None, empty: int | None = None):
    """The phantom datalist as README's Data section allows it: image and label only, no task block; with
    ``empty``, that training entry's label has no foreground."""
    import numpy as np

    from glsmonai.data.io import write_mask

    content = json.loads((tiny_iris / "datalist.json").read_text())
    plain = {split: [{"image": e["image"], "label": e["label"]} for e in content[split]]
             for split in ("training", "validation", "testing")}
    if task is not None:
        plain["task"] = task
    if empty is not None:
        write_mask(tmp_path / "empty.nii.gz", np.zeros((64, 72), np.uint8))
        plain["training"][empty]["label"] = str(tmp_path / "empty.nii.gz")
    return write_datalist(tmp_path / "plain.json", plain)


def test_the_keypoint_rule_is_checked_on_every_label_without_keypoints(tiny_iris, tmp_path):
    from glsmonai.data.io import read_image
    from glsmonai.keypoints import iris_roots

    path = _without_keypoints(tiny_iris, tmp_path)
    entries = load_datalist(path, tiny_iris, "training", num_keypoints=2, keypoint_rule="iris_roots")
    for entry in entries:  # the points the rule finds are kept: Keypointsd does not run the rule again
        assert entry["keypoints"] == pytest.approx(iris_roots(read_image(entry["label"])[0]))
    assert "keypoints" not in load_datalist(path, tiny_iris, "training")[0]  # no rule: nothing run, nothing added
    # a label on which the rule finds nothing is a bad entry named by its file, listed with every other one
    path = _without_keypoints(tiny_iris, tmp_path, empty=2)
    with pytest.raises(ValueError) as err:
        load_datalist(path, tiny_iris, "training", num_keypoints=2, keypoint_rule="iris_roots")
    assert str(err.value) == (f"{path}: training[2] label {tmp_path / 'empty.nii.gz'}: the keypoint rule iris_roots "
                              "finds no keypoints on it: the mask has 0 connected component(s), the rule needs 2")
    with pytest.raises(ValueError) as err:
        load_datalist(path, tiny_iris, "training", num_keypoints=3, keypoint_rule="iris_roots")
    lines = str(err.value).splitlines()
    assert lines[0] == f"{path}: 6 bad entries in 'training':" and "the rule needs 2" in lines[3]
    assert lines[1].endswith(": the keypoint rule iris_roots gives 2 keypoint(s), the task has 3")
    # entries that give keypoints are not run through the rule
    assert len(load_datalist(tiny_iris / "datalist.json", tiny_iris, "training", 2, "lv_apex_base")) == 6


def test_the_task_knows_its_number_of_pieces(tiny_iris, tmp_path):
    from glsmonai.data.datalist import load_task, task_num_components

    assert task_num_components(load_task(tiny_iris / "datalist.json"), "lv_apex_base") == 2  # the block says
    assert task_num_components(load_task(_without_keypoints(tiny_iris, tmp_path)), "iris_roots") == 2  # the rule
    assert task_num_components({}, "lv_apex_base") == 1
    assert task_num_components({}, None) is None
    with pytest.raises(ValueError, match="no num_components and no keypoint rule tells it"):
        task_num_components({"num_keypoints": 2}, None, required=True)
    path = _without_keypoints(tiny_iris, tmp_path, task={"num_components": 0})
    with pytest.raises(ValueError, match=r"plain.json: the task's num_components must be a positive integer, got 0"):
        load_task(path)
