"""``glsmonai measure`` end to end on a few phantoms, ``predict --measure``, and bad files reported in one line."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from glsmonai.cli import main
from glsmonai.data.io import read_image, write_image, write_mask
from glsmonai.data.synth import write_phantom_dataset
from glsmonai.data.synth.echo import make_echo_case
from glsmonai.measure import measure_columns
from tests.helpers import random_scans, untrained_model_folder

N = 4


@pytest.fixture(scope="module")
def iris_set(tmp_path_factory):
    """Four iris phantoms and a prediction folder of their masks eroded by one pixel, with the
    keypoints.csv predict would write (the second scan's right root flagged unsure)."""
    root = tmp_path_factory.mktemp("iris_measure")
    write_phantom_dataset("iris", root / "data", n=N, seed=2, size=(128, 144))
    entries = [e for split in ("training", "validation", "testing")
               for e in json.loads((root / "data" / "datalist.json").read_text())[split]]
    pred = root / "pred"
    rows = []
    for i, entry in enumerate(sorted(entries, key=lambda e: e["image"])):
        label, geometry = read_image(root / "data" / entry["label"])
        name = entry["image"].split("/")[-1]
        write_mask(pred / name.replace(".nii.gz", "_seg.nii.gz"), ndimage.binary_erosion(label > 0), geometry)
        for k, (r, c) in enumerate(entry["keypoints"]):
            rows.append([name, k, r, c, 0.9, 0.9, "unsure" if (i, k) == (1, 1) else "ok"])
    with open(pred / "keypoints.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["image", "k", "row", "col", "score", "confidence", "flag"], *rows])
    # one datalist listing every case as testing, for the references' keypoints
    (root / "all.json").write_text(json.dumps({"testing": entries}))
    return root


def test_iris_measures_references_and_agreement(iris_set, tmp_path, capsys):
    out = tmp_path / "measures.csv"
    code = main(["measure", "--pred", str(iris_set / "pred"), "--labels", str(iris_set / "data" / "labels"),
                 "--task", "iris", "--csv", str(out)])
    assert code == 0
    pred, ref = pd.read_csv(out), pd.read_csv(tmp_path / "measures_reference.csv")
    assert len(pred) == len(ref) == N
    assert sorted(pred["keypoints"]) == ["predicted"] * (N - 1) + ["predicted+rule"]
    assert set(ref["keypoints"]) == {"rule"} and set(pred["units"]) == {"px"}
    columns = measure_columns("iris", physical=False)
    assert pred.columns[-len(columns):].tolist() == columns
    agreement = pd.read_csv(tmp_path / "measures_agreement.csv").set_index("measure")
    assert agreement.index.tolist() == columns and (agreement["n"] == N).all()
    # the predictions are the references eroded by a pixel: smaller and about 2 px thinner
    for side in ("left", "right"):
        assert agreement.loc[f"iris_area_{side}_px2", "bias"] < 0
        assert -3.0 < agreement.loc[f"iris_thickness_max_{side}_px", "bias"] < -1.0
    for name in columns:
        assert (tmp_path / "measures_bland_altman" / f"{name}.png").is_file()
    assert "iris_area_left_px2" in capsys.readouterr().out


def test_iris_in_mm_with_a_spacing_and_the_datalist_keypoints(iris_set, tmp_path):
    out = tmp_path / "mm.csv"
    code = main(["measure", "--pred", str(iris_set / "pred"), "--labels", str(iris_set / "all.json"),
                 "--dataset-dir", str(iris_set / "data"), "--task", "iris", "--csv", str(out),
                 "--spacing", "0.05", "0.055", "--ignore-keypoints"])
    assert code == 0
    pred, ref = pd.read_csv(out), pd.read_csv(tmp_path / "mm_reference.csv")
    assert set(pred["keypoints"]) == {"rule"} and set(ref["keypoints"]) == {"datalist"}
    assert set(pred["units"]) == {"mm"} and (pred["spacing_col_mm"] == 0.055).all()
    assert "iris_thickness_750um_left_mm" in pred and not [c for c in pred if c.endswith(("_px", "_px2"))]
    agreement = pd.read_csv(tmp_path / "mm_agreement.csv")
    assert agreement["measure"].tolist() == measure_columns("iris", physical=True)


def test_bad_files_are_one_line_each_and_the_batch_goes_on(iris_set, tmp_path, capsys):
    pred = tmp_path / "pred"
    pred.mkdir()
    for path in (iris_set / "pred").iterdir():
        (pred / path.name).write_bytes(path.read_bytes())
    (pred / "broken_seg.nii.gz").write_bytes(b"not an image")
    half = np.zeros((40, 60), np.uint8)
    half[10:20, 5:30] = 1  # one iris half only
    write_image(pred / "onehalf_seg.png", half)
    code = main(["measure", "--pred", str(pred), "--task", "iris", "--csv", str(tmp_path / "m.csv")])
    assert code == 1
    failed = [line for line in capsys.readouterr().err.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 2
    assert "broken_seg.nii.gz" in failed[0] and "onehalf_seg.png" in failed[1] and "1 connected component" in failed[1]
    assert len(pd.read_csv(tmp_path / "m.csv")) == N


def _camus_like(folder, spacing=(0.3, 0.25)):
    """patient0001's four frames from two echo phantoms (2CH, 4CH); ES is ED with the LV eroded by 4 px."""
    for view, seed in (("2CH", 0), ("4CH", 1)):
        label = make_echo_case(np.random.default_rng([31, seed]), (128, 128)).label
        es = label.copy()
        es[(label == 1) & ~ndimage.binary_erosion(label == 1, iterations=4)] = 2
        for phase, frame in (("ED", label), ("ES", es)):
            write_image(folder / f"patient0001_{view}_{phase}.nii.gz", frame, spacing=spacing)


def test_lv_volumes_and_ejection_fractions_per_patient(tmp_path, capsys):
    labels, pred = tmp_path / "labels", tmp_path / "pred"
    _camus_like(labels)
    for path in labels.iterdir():
        frame, geometry = read_image(path)
        write_mask(pred / path.name.replace(".nii.gz", "_seg.nii.gz"), ndimage.binary_dilation(frame == 1), geometry)
    out = tmp_path / "lv.csv"
    assert main(["measure", "--pred", str(pred), "--labels", str(labels), "--task", "lv", "--csv", str(out)]) == 0
    table = pd.read_csv(out)
    assert set(table["units"]) == {"mm"} and set(table["keypoints"]) == {"rule"}
    assert sorted(zip(table["view"], table["phase"])) == [("2CH", "ED"), ("2CH", "ES"), ("4CH", "ED"), ("4CH", "ES")]
    assert table.columns[-4:].tolist() == measure_columns("lv", physical=True)
    (patient,) = pd.read_csv(tmp_path / "lv_patients.csv").to_dict("records")
    for name in ("lv_ef_2ch_pct", "lv_ef_4ch_pct", "lv_ef_biplane_pct"):
        assert 10 < patient[name] < 90, name  # the ES cavity is the ED one less a 4 px rim
    assert patient["lv_edv_biplane_ml"] > patient["lv_esv_biplane_ml"] > 0
    agreement = pd.read_csv(tmp_path / "lv_agreement.csv")
    assert set(agreement["level"]) == {"scan", "patient"}
    dilated = agreement.set_index("measure").loc["lv_area_mm2"]
    assert dilated["bias"] > 0 and dilated["n"] == 4  # the predictions are the LV dilated by a pixel
    assert (tmp_path / "lv_bland_altman" / "lv_ef_biplane_pct.png").is_file()


def test_predict_then_measure(tmp_path, capsys):
    scans = tmp_path / "scans"
    random_scans(scans, [(40, 48)] * 3)
    model = untrained_model_folder(tmp_path / "model")  # an iris model: two keypoints per scan
    out = tmp_path / "out"
    code = main(["predict", "-i", str(scans), "-o", str(out), "-m", str(model), "--no-overlays", "--num-workers", "0",
                 "--measure", "lv"])
    table = pd.read_csv(out / "measures.csv")
    # an untrained network's masks may be empty: those scans are reported, the others measured
    failed = [line for line in capsys.readouterr().err.splitlines() if line.startswith("  ")]
    assert len(table) + len(failed) == 3 and len(table) > 0
    assert code == (1 if failed else 0)
    # keypoints.csv has two points per scan, the LV measures need three: the rule's are used
    assert set(table["keypoints"]) == {"rule"}
    assert table.columns[-4:].tolist() == measure_columns("lv", physical=False)


def test_a_missing_reference_is_one_line_and_the_others_are_compared(iris_set, tmp_path, capsys):
    labels = tmp_path / "labels"
    labels.mkdir()
    files = sorted((iris_set / "data" / "labels").iterdir())
    for path in files[1:]:  # the first scan's reference is missing
        (labels / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "m.csv"
    code = main(["measure", "--pred", str(iris_set / "pred"), "--labels", str(labels), "--task", "iris", "--csv", str(out)])
    assert code == 1
    failed = [line for line in capsys.readouterr().err.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 1 and "no reference" in failed[0] and files[0].name.split(".")[0] in failed[0]
    assert len(pd.read_csv(out)) == N  # every prediction is measured
    assert (pd.read_csv(tmp_path / "m_agreement.csv")["n"] == N - 1).all()
