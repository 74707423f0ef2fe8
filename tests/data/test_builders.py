"""Datalist builders: CAMUS (both releases), folders with a keypoint table, and the patient-grouped split."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from glsmonai.cli import main as cli_main
from glsmonai.data.builders import camus_datalist, split_groups
from glsmonai.data.datalist import load_datalist, load_task
from tests.test_keypoints import heart


def _write_camus(root, layout: str, patients: int = 6):
    ext = ".nii.gz" if layout == "nifti" else ".mhd"
    base = root / ("database_nifti" if layout == "nifti" else "training")
    for p in range(1, patients + 1):
        folder = base / f"patient{p:04d}"
        folder.mkdir(parents=True)
        for view in ("2CH", "4CH"):
            for phase in ("ED", "ES"):
                name = f"patient{p:04d}_{view}_{phase}"
                noise = (np.random.rand(60, 40) * 255).astype(np.uint8)
                sitk.WriteImage(sitk.GetImageFromArray(noise), str(folder / f"{name}{ext}"))
                sitk.WriteImage(sitk.GetImageFromArray(heart()), str(folder / f"{name}_gt{ext}"))


@pytest.mark.parametrize("layout", ["nifti", "metaimage"])
def test_camus_layouts_and_patient_split(tmp_path, layout):
    _write_camus(tmp_path, layout)
    out = camus_datalist(tmp_path, tmp_path / "camus.json", views=["2CH", "4CH"], phases=["ED"], val_fraction=0.34, seed=1)
    content = json.loads(out.read_text())
    assert content["task"]["num_keypoints"] == 3 and content["task"]["label_value"] == 1
    train, val = content["training"], content["validation"]
    assert len(train) + len(val) == 12 and len(val) == 4  # 2 of 6 patients, 2 frames each
    assert not {e["patient"] for e in train} & {e["patient"] for e in val}
    assert all(e["phase"] == "ED" for e in train + val)
    assert train[0]["keypoints"][0] == pytest.approx([10.0, 20.0], abs=1.0)
    entries = load_datalist(out, tmp_path, "training")  # relative paths resolve against the root
    assert all(e["image"].endswith((".nii.gz", ".mhd")) for e in entries)


def test_camus_official_split_and_target(tmp_path):
    _write_camus(tmp_path, "nifti", patients=3)
    split = tmp_path / "database_split"
    split.mkdir()
    (split / "subgroup_training.txt").write_text("patient0001\npatient0002\n")
    (split / "subgroup_validation.txt").write_text("patient0003\n")
    out = camus_datalist(tmp_path, tmp_path / "c.json", target="left_atrium", official_split=True)
    content = json.loads(out.read_text())
    assert {e["patient"] for e in content["validation"]} == {"patient0003"}
    assert len(content["training"]) == 8 and content["task"]["label_value"] == 3


def test_camus_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no CAMUS frames"):
        camus_datalist(tmp_path, tmp_path / "c.json")
    with pytest.raises(ValueError, match="unknown target"):
        camus_datalist(tmp_path, tmp_path / "c.json", target="aorta")


def test_split_groups_never_splits_a_group():
    groups = [f"p{i // 3}" for i in range(30)]
    split = split_groups(groups, 0.2, 0.2, seed=0)
    assert sorted(list(split.values()).count(s) for s in ("training", "validation", "testing")) == [2, 2, 6]
    with pytest.raises(ValueError, match="cannot give"):
        split_groups(["a", "b"], 0.5, 0.5, 0)


def test_folder_datalist_with_keypoint_csv(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    arr = sitk.GetImageFromArray(np.zeros((20, 30), np.uint8))
    for i in range(5):
        sitk.WriteImage(arr, str(tmp_path / "img" / f"c{i}.png"))
        sitk.WriteImage(arr, str(tmp_path / "lab" / f"c{i}.nii.gz"))
    rows = [{"image": f"c{i}.png", "k": k, "row": i, "col": k} for i in range(5) for k in (1, 0)]
    pd.DataFrame(rows).to_csv(tmp_path / "kp.csv", index=False)
    rc = cli_main(["datalist", "folder", "--images", str(tmp_path / "img"), "--labels", str(tmp_path / "lab"),
                   "--keypoints", str(tmp_path / "kp.csv"), "--out", str(tmp_path / "d.json")])
    assert rc == 0
    content = json.loads((tmp_path / "d.json").read_text())
    entries = content["training"] + content["validation"]
    assert len(entries) == 5 and len(content["validation"]) == 1
    c3 = next(e for e in entries if e["image"].endswith("c3.png"))
    assert c3["label"] == "lab/c3.nii.gz" and c3["keypoints"] == [[3.0, 0.0], [3.0, 1.0]]
    assert load_task(tmp_path / "d.json") == {"num_keypoints": 2}
    assert len(load_datalist(tmp_path / "d.json", tmp_path, "training")) == 4
