"""Groups per datalist entry (CAMUS, folders, phantoms) and the group folds of ``compare --folds``."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import SimpleITK as sitk

from glsmonai.cli import main as cli_main
from glsmonai.data.builders import camus_datalist, folder_datalist
from glsmonai.data.datalist import load_datalist, write_datalist
from glsmonai.data.folds import assign_folds, entry_group, fold_split, pooled_entries, write_fold_datalists
from tests.data.test_builders import _write_camus

#: 11 cases of 7 groups: one of 3 cases, two of 2, four of 1
GROUPS = ["a", "a", "a", "b", "b", "c", "c", "d", "e", "f", "g"]


def _cases_per_fold(groups, folds):
    return Counter(folds[g] for g in groups)


def test_assign_folds_deterministic_group_disjoint_balanced():
    folds = assign_folds(GROUPS, 3, seed=0)
    assert folds == assign_folds(GROUPS, 3, seed=0) and set(folds) == set(GROUPS)
    # largest first, each to the emptiest fold: a (3) | b or c (2) | c or b (2), then the four singles
    assert sorted(_cases_per_fold(GROUPS, folds).values()) == [3, 4, 4]
    assert sorted(Counter(folds.values()).values()) == [2, 2, 3]
    assert sorted(_cases_per_fold(GROUPS, assign_folds(GROUPS, 3, seed=5)).values()) == [3, 4, 4]
    singles = assign_folds(list("abcdef"), 3, seed=1)
    assert sorted(Counter(singles.values()).values()) == [2, 2, 2]
    assert len({tuple(sorted(assign_folds(list("abcdefgh"), 2, seed=s).items())) for s in range(6)}) > 1  # seeds differ


def test_assign_folds_errors():
    with pytest.raises(ValueError, match="at least 2 folds"):
        assign_folds(GROUPS, 1)
    with pytest.raises(ValueError, match="7 group"):
        assign_folds(GROUPS, 8)


def test_fold_split_test_fold_and_validation_fraction():
    groups = [f"p{i}" for i in range(10)]
    folds = assign_folds(groups, 2, seed=0)
    for k in (0, 1):
        split = fold_split(groups, folds, k, val_fraction=0.2, seed=0)
        assert {g for g, s in split.items() if s == "testing"} == {g for g, f in folds.items() if f == k}
        assert Counter(split.values()) == {"testing": 5, "validation": 1, "training": 4}
        assert split == fold_split(groups, folds, k, val_fraction=0.2, seed=0)
    # validation takes whole groups until it holds the fraction of the remaining cases
    folds = {"a": 0, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1, "g": 1}
    split = fold_split(GROUPS, folds, 0, val_fraction=0.5, seed=0)
    val = [g for g in GROUPS if split[g] == "validation"]
    assert len(val) >= 4 and "training" in split.values() and split["a"] == "testing"
    with pytest.raises(ValueError, match="need one to train and one to validate"):
        fold_split(["a", "b"], {"a": 0, "b": 1}, 0)
    with pytest.raises(ValueError, match="fold 3 does not exist"):
        fold_split(GROUPS, folds, 3)


def test_entry_group_falls_back_to_patient_then_image():
    assert entry_group({"image": "i.png", "patient": "p7", "group": "g1"}) == "g1"
    assert entry_group({"image": "i.png", "patient": "p7"}) == "p7"
    assert entry_group({"image": "img/i.png"}) == "img/i.png"


def test_write_fold_datalists_tests_every_case_once(tiny_iris, tmp_path):
    paths = write_fold_datalists(tiny_iris / "datalist.json", tmp_path, 2, seed=0)
    assert [p.name for p in paths] == ["fold0.json", "fold1.json"]
    tested = []
    for k, path in enumerate(paths):
        content = json.loads(path.read_text())
        assert content["task"]["num_keypoints"] == 2 and content["folds"]["k"] == k
        splits = {s: {e["group"] for e in content[s]} for s in ("training", "validation", "testing")}
        assert not (splits["training"] & splits["validation"] or splits["training"] & splits["testing"]
                    or splits["validation"] & splits["testing"])
        assert [len(content[s]) for s in ("training", "validation", "testing")] == [4, 1, 5]
        tested += [e["image"] for e in content["testing"]]
    assert len(tested) == len(set(tested)) == 10
    before = [p.stat().st_mtime_ns for p in paths]
    assert write_fold_datalists(tiny_iris / "datalist.json", tmp_path, 2, seed=0) == paths
    assert [p.stat().st_mtime_ns for p in paths] == before  # same folds: files untouched


def test_pooled_entries_groups_and_errors(tmp_path):
    path = write_datalist(tmp_path / "d.json", {
        "training": [{"image": "a.png", "label": "a_l.png", "patient": "p1"}, {"image": "b.png", "label": "b_l.png"}],
        "testing": [{"image": "c.png"}],  # no label: not pooled
    })
    _, entries = pooled_entries(path)
    assert [(e["image"], e["group"]) for e in entries] == [("a.png", "p1"), ("b.png", "b.png")]
    dup = write_datalist(tmp_path / "dup.json", {"training": [{"image": "a.png", "label": "l"}],
                                                 "validation": [{"image": "a.png", "label": "l"}]})
    with pytest.raises(ValueError, match="dup.json: a.png appears in more than one entry"):
        pooled_entries(dup)
    with pytest.raises(ValueError, match="none.json: no labelled entries"):
        pooled_entries(write_datalist(tmp_path / "none.json", {"testing": [{"image": "c.png"}]}))


def test_phantom_writer_one_group_per_case_and_load_datalist_keeps_it(tiny_iris):
    content = json.loads((tiny_iris / "datalist.json").read_text())
    entries = content["training"] + content["validation"] + content["testing"]
    assert sorted(e["group"] for e in entries) == [f"iris_s3_{i:04d}" for i in range(10)]
    loaded = load_datalist(tiny_iris / "datalist.json", tiny_iris, "testing")
    assert all(e["group"] in e["image"] for e in loaded)


def test_camus_group_is_the_patient(tmp_path):
    _write_camus(tmp_path, "nifti", patients=3)
    content = json.loads(camus_datalist(tmp_path, tmp_path / "c.json", phases=["ED"], val_fraction=0.34).read_text())
    entries = content["training"] + content["validation"]
    assert len(entries) == 6 and all(e["group"] == e["patient"] for e in entries)


def _folder(tmp_path, names):
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    arr = sitk.GetImageFromArray(np.zeros((8, 8), np.uint8))
    for name in names:
        sitk.WriteImage(arr, str(tmp_path / "img" / f"{name}.png"))
        sitk.WriteImage(arr, str(tmp_path / "lab" / f"{name}.png"))


def test_folder_groups_from_regex_csv_or_stem(tmp_path):
    names = [f"p{p}_{v}" for p in range(1, 6) for v in ("2ch", "4ch")]
    _folder(tmp_path, names)
    args = ["datalist", "folder", "--images", str(tmp_path / "img"), "--labels", str(tmp_path / "lab")]
    assert cli_main([*args, "--out", str(tmp_path / "regex.json"), "--group-regex", r"^(p\d+)_"]) == 0
    content = json.loads((tmp_path / "regex.json").read_text())
    groups = {s: {e["group"] for e in content[s]} for s in ("training", "validation")}
    assert groups["training"] | groups["validation"] == {f"p{p}" for p in range(1, 6)}
    assert not groups["training"] & groups["validation"] and len(content["validation"]) == 2  # one patient, both views
    assert cli_main([*args, "--out", str(tmp_path / "stem.json")]) == 0
    content = json.loads((tmp_path / "stem.json").read_text())
    assert sorted(e["group"] for e in content["training"] + content["validation"]) == sorted(names)
    # a group column in the keypoint table
    rows = [f"{n}.png,{k},1,{k},{'x' if n.startswith(('p1', 'p2')) else 'y'}" for n in names for k in (0, 1)]
    (tmp_path / "kp.csv").write_text("image,k,row,col,group\n" + "\n".join(rows) + "\n")
    assert cli_main([*args, "--out", str(tmp_path / "csv.json"), "--keypoints", str(tmp_path / "kp.csv"),
                     "--val-fraction", "0.5"]) == 0
    content = json.loads((tmp_path / "csv.json").read_text())
    assert {e["group"] for e in content["validation"]} in ({"x"}, {"y"})


def test_folder_group_regex_must_match(tmp_path):
    _folder(tmp_path, ["p1_a", "scan"])
    with pytest.raises(ValueError, match=r"img/scan.png: --group-regex .* does not match the file name"):
        folder_datalist(tmp_path / "img", tmp_path / "lab", tmp_path / "d.json", group_regex=r"^(p\d+)_")
    with pytest.raises(ValueError, match="--group-regex '\\(': "):
        folder_datalist(tmp_path / "img", tmp_path / "lab", tmp_path / "d.json", group_regex="(")
    assert not (tmp_path / "d.json").exists()
