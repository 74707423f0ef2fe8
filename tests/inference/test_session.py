"""Keypoints as prompts (``predict --keypoints``, ``Predictor.predict(..., keypoints=)``) and a scan held open whose
keypoints move one at a time (``Predictor.open`` / ``ScanSession.resegment``), on untrained seeded model folders in
both crop spaces: the model's own keypoints give the plain prediction back byte for byte."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glsmonai.cli import main
from glsmonai.data.io import read_image
from glsmonai.data.prediction_folder import KeypointTable, keypoint_rows, read_keypoint_prompts, read_keypoints_csv
from glsmonai.inference import PLAIN, Predictor
from glsmonai.inference.session import check_keypoints
from tests.helpers import untrained_model_folder


@pytest.fixture(scope="module", params=["working", "original"])
def model(request, tmp_path_factory):
    return untrained_model_folder(tmp_path_factory.mktemp(f"model_{request.param}"), request.param)


@pytest.fixture(scope="module")
def scans(tiny_iris):
    return sorted((tiny_iris / "images").glob("*.nii.gz"))[:2]


def test_the_models_own_keypoints_give_the_plain_prediction(model, scans):
    predictor = Predictor(model, "cpu", options=PLAIN, components=2)
    for scan in scans:
        plain = predictor.predict(scan)
        given = predictor.predict(scan, keypoints=plain.keypoints)
        assert np.array_equal(given.mask, plain.mask) and given.mask.tobytes() == plain.mask.tobytes()
        assert np.array_equal(given.probability, plain.probability)
        assert np.array_equal(given.keypoints, plain.keypoints)
        assert plain.source.tolist() == ["model", "model"] and given.source.tolist() == ["user", "user"]
        assert not given.unsure.any() and (given.confidence == 1).all()


@pytest.mark.parametrize("tta", [False, True])
def test_a_moved_keypoint_resegments_its_window_only(model, scans, tta):
    predictor = Predictor(model, "cpu", options=PLAIN, tta=tta, components=2)
    session = predictor.open(scans[0])
    plain = predictor.predict(scans[0])
    opened = session.prediction
    assert np.array_equal(opened.mask, plain.mask)
    moved_to = np.clip(plain.keypoints[1] + [4.0, -5.0], 0, np.array(session.shape) - 1)
    moved = session.resegment(1, moved_to)
    assert moved.source.tolist() == ["model", "user"]
    assert np.allclose(moved.keypoints[1], moved_to) and np.allclose(moved.keypoints[0], plain.keypoints[0])
    # the same as predicting the scan afresh with that keypoint given (one window against two in a batch: to 1e-5)
    fresh = predictor.predict(scans[0], keypoints=np.array([[np.nan, np.nan], moved_to]))
    assert np.array_equal(moved.mask, fresh.mask)
    assert np.abs(moved.probability - fresh.probability).max() < 1e-5
    if not tta:  # (with TTA each view's window moves from that view's own peak, not from their average)
        # the probability changed in keypoint 1's window, where it was and where it is (with crop_space working, the
        # fusion network's 5 x 5 reach and the resize back to the scan blur the window's edge by 3 working pixels)
        changed = np.argwhere(moved.probability != opened.probability)
        scale = min(32 / s for s in session.shape)
        reach = np.asarray(plain.window_size) / 2 + 1 + (3 / scale if not predictor.original else 0)
        inside = [(np.abs(changed - centre) <= reach).all(axis=1) for centre in (plain.keypoints[1], moved_to)]
        assert len(changed) and np.logical_or(*inside).all()
    back = session.resegment(1, None)  # undone: the model's own keypoint, the plain prediction again
    assert np.array_equal(back.mask, plain.mask) and back.source.tolist() == ["model", "model"]
    assert np.array_equal(back.keypoints, opened.keypoints) and np.array_equal(back.probability, opened.probability)


def test_given_keypoints_are_checked(model, scans):
    predictor = Predictor(model, "cpu", options=PLAIN)
    image, geometry = read_image(scans[0])
    with pytest.raises(ValueError, match="off the scan"):
        predictor.predict_array(image, geometry, keypoints=np.array([[0.0, 0.0], [image.shape[0] + 0.5, 3.0]]))
    with pytest.raises(ValueError, match="3 keypoints given, the model has 2"):
        predictor.predict_array(image, geometry, keypoints=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="one coordinate only"):
        check_keypoints([[1.0, np.nan]], (10, 10), 2)
    session = predictor.session(image, geometry)
    before = session.prediction
    with pytest.raises(ValueError, match="no keypoint 2"):
        session.resegment(2, (1.0, 1.0))
    with pytest.raises(ValueError, match="off the scan"):
        session.resegment(0, (-1.0, 1.0))
    assert session.prediction is before and np.isnan(session.given).all()  # a refused move changes nothing


def test_predict_keypoints_cli_records_where_each_keypoint_came_from(model, tiny_iris, tmp_path):
    images = tiny_iris / "images"
    args = ["predict", "-i", str(images), "-m", str(model), "--device", "cpu", "--no-tta", "--components", "2",
            "--num-workers", "0", "--no-overlays"]
    assert main([*args, "-o", str(tmp_path / "plain")]) == 0
    table = pd.read_csv(tmp_path / "plain" / "keypoints.csv")
    assert list(table.columns) == ["image", "k", "row", "col", "score", "confidence", "flag", "source"]
    assert (table["source"] == "model").all()
    # its own table given back: every keypoint 'user', the same masks
    assert main([*args, "-o", str(tmp_path / "again"), "--keypoints", str(tmp_path / "plain" / "keypoints.csv")]) == 0
    again = pd.read_csv(tmp_path / "again" / "keypoints.csv")
    assert (again["source"] == "user").all()
    assert np.allclose(again[["row", "col"]], table[["row", "col"]])
    for mask in sorted((tmp_path / "plain").glob("*_seg.nii.gz")):
        assert np.array_equal(read_image(mask)[0], read_image(tmp_path / "again" / mask.name)[0]), mask.name
    # one keypoint of one scan given: that row 'user', the others the model's
    first = table[table["image"] == table["image"].iloc[0]]
    moved = first[first["k"] == 0].assign(row=first["row"].iloc[0] + 3)
    moved.to_csv(tmp_path / "one.csv", index=False)
    assert main([*args, "-o", str(tmp_path / "one"), "--keypoints", str(tmp_path / "one.csv")]) == 0
    one = pd.read_csv(tmp_path / "one" / "keypoints.csv")
    assert one.loc[(one["image"] == moved["image"].iloc[0]) & (one["k"] == 0), "source"].tolist() == ["user"]
    assert (one["source"] == "user").sum() == 1
    # a keypoint off its scan fails that scan alone, by name
    off = first.assign(row=1e6)
    off.to_csv(tmp_path / "off.csv", index=False)
    assert main([*args, "-o", str(tmp_path / "off"), "--keypoints", str(tmp_path / "off.csv")]) == 1
    assert len(read_keypoints_csv(tmp_path / "off" / "keypoints.csv")) == len(list(images.glob("*.nii.gz"))) - 1


def test_old_keypoint_tables_still_read(tmp_path):
    path = tmp_path / "keypoints.csv"
    path.write_text("image,k,row,col,score,confidence,flag\na.png,0,1.0,2.0,0.9,1.0,ok\na.png,1,3.0,4.0,0.8,0.2,unsure\n")
    assert read_keypoints_csv(path)["a"][1].tolist() == [False, True]
    table = KeypointTable(path)
    assert table.done() == {"a.png"}
    table.start(set())  # rewritten with the source column: the old rows came from the model
    assert path.read_text().splitlines()[:2] == ["image,k,row,col,score,confidence,flag,source",
                                                 "a.png,0,1.0,2.0,0.9,1.0,ok,model"]
    table.replace("a.png", keypoint_rows("a.png", np.array([[5.0, 6.0]]), [1.0], [1.0], [False], ["user"]))
    assert table.rows() == [["a.png", "0", "5.0", "6.0", "1.0", "1.0", "ok", "user"]]
    assert np.array_equal(read_keypoint_prompts(path)["a"], [[5.0, 6.0]])


@pytest.mark.parametrize(("text", "message"), [
    ("image,k,row\na.png,0,1\n", "missing column"),
    ("image,k,row,col\na.png,0.5,1,2\n", "line 2: k must be a whole number"),
    ("image,k,row,col\na.png,0,1,x\n", "line 2"),
    ("image,k,row,col\na.png,0,1,2\na.png,0,3,4\n", "more than once"),
])
def test_bad_prompt_tables_are_refused_by_line(tmp_path, text, message):
    (tmp_path / "p.csv").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_keypoint_prompts(tmp_path / "p.csv")


def test_a_scan_may_give_some_of_its_keypoints(tmp_path):
    (tmp_path / "p.csv").write_text("image,k,row,col\nb.nii.gz,1,3,4\n")
    points = read_keypoint_prompts(tmp_path / "p.csv")["b"]
    assert np.isnan(points[0]).all() and points[1].tolist() == [3.0, 4.0]


def test_a_fold_ensemble_held_open_moves_every_members_window(model, scans):
    """Two members (one folder twice): the open scan is the ensemble's prediction, and a moved keypoint
    re-segments each member's window, as the ensemble predicting afresh with that keypoint given does."""
    ensemble = Predictor([model, model], "cpu", options=PLAIN, components=2)
    session = ensemble.open(scans[1])
    assert np.array_equal(session.prediction.mask, ensemble.predict(scans[1]).mask)
    point = np.clip(session.prediction.keypoints[0] + [3.0, 3.0], 0, np.array(session.shape) - 1)
    moved = session.resegment(0, point)
    fresh = ensemble.predict(scans[1], keypoints=np.array([point, [np.nan, np.nan]]))
    assert np.array_equal(moved.mask, fresh.mask) and np.abs(moved.probability - fresh.probability).max() < 1e-5
    alone = Predictor(model, "cpu", options=PLAIN, components=2).open(scans[1])
    assert np.array_equal(alone.resegment(0, point).mask, moved.mask)  # the same folder twice gives what it gives alone
