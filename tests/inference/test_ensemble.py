"""Fold ensembles: ``Predictor([A, B])`` and ``predict -m A B`` average the members' probabilities and heatmaps and
decode the keypoints once from the averaged heatmaps; members that disagree are refused in one line."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch

from glsmonai.cli import main as cli_main
from glsmonai.data.io import read_image
from glsmonai.inference import Predictor
from glsmonai.transforms.heatmap import decode_keypoints
from tests.helpers import random_scans, untrained_model_folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two different untrained stage-3 model folders per crop space, and scans (square: no letterbox)."""
    root = tmp_path_factory.mktemp("ensemble")
    models = {(space, seed): untrained_model_folder(root / f"{space}_{seed}", space, seed=seed)
              for space in ("working", "original") for seed in (1, 2)}
    return models, random_scans(root / "scans", [(40, 40), (48, 48)])


@pytest.mark.parametrize(("crop_space", "tta"), [("working", False), ("working", True), ("original", False)])
def test_one_folder_twice_is_the_folder_alone(folders, crop_space, tta):
    models, scans = folders
    alone = Predictor(models[crop_space, 1], "cpu", tta=tta)
    twice = Predictor([models[crop_space, 1], models[crop_space, 1]], "cpu", tta=tta)
    assert len(twice.members) == 2 and twice.folders == (models[crop_space, 1],) * 2
    for scan in scans:
        a, b = alone.predict(scan), twice.predict(scan)
        assert a.mask.tobytes() == b.mask.tobytes()
        assert np.array_equal(a.probability, b.probability) and np.array_equal(a.keypoints, b.keypoints)


def test_two_models_decode_their_keypoints_from_the_averaged_heatmaps(folders):
    models, scans = folders
    a, b = models["working", 1], models["working", 2]
    ensemble = Predictor([a, b], "cpu")
    raw, geometry = read_image(scans[0])
    got = ensemble.predict_array(raw, geometry)
    # directly: each member's global branch, the probabilities averaged, the peaks decoded near the boundary of
    # the averaged mask (band 2, keypoints half a window apart, as the members were built)
    view = ensemble.preparer(raw, geometry)[0]
    image = view["image"][None].float()
    members = [Predictor(folder, "cpu") for folder in (a, b)]
    with torch.no_grad():
        outs = [member.network.global_net(image) for member in members]
    mean = [sum(torch.sigmoid(out[i].double()) for out in outs) / 2 for i in (0, 1)]  # global, heatmap
    found = decode_keypoints(torch.logit(mean[1]).float(), (mean[0] > 0.5).float(), band=2, separation=4.0)
    expected = view["working_grid"].to_original(found["points"][0].numpy())
    assert np.allclose(got.keypoints, expected, atol=1e-4)
    assert np.allclose(got.scores, found["scores"][0].numpy(), atol=1e-6)
    singles = [member.predict_array(raw, geometry) for member in members]
    assert not any(np.allclose(s.keypoints, got.keypoints) for s in singles)  # neither member's own keypoints
    # the global branch alone (stage 1) does not depend on the keypoints: the mean of the members' probabilities
    global_only = Predictor([a, b], "cpu", stage="stage1").predict_array(raw, geometry)
    each = [Predictor(folder, "cpu", stage="stage1").predict_array(raw, geometry) for folder in (a, b)]
    assert np.allclose(global_only.probability, (each[0].probability + each[1].probability) / 2, atol=1e-6)
    assert np.allclose(global_only.keypoints, got.keypoints)


def test_members_that_disagree_are_refused_in_one_line_naming_their_folder(folders, tmp_path):
    models, _ = folders
    first = models["working", 1]
    cases = [
        (untrained_model_folder(tmp_path / "size48", image_size=(48, 48)), {}, "working size"),
        (models["original", 1], {}, "crop space"),
        (untrained_model_folder(tmp_path / "records_tta", tta=True), {}, "prediction option tta"),
    ]
    for other, changes, what in cases:
        with pytest.raises(ValueError, match=what) as refused:
            Predictor([first, other], "cpu", **changes)
        assert str(other) in str(refused.value) and "\n" not in str(refused.value)
    assert Predictor([first, tmp_path / "records_tta"], "cpu", tta=False).options.tta is False  # set: no conflict
    with pytest.raises(ValueError, match="one model folder"):
        Predictor([first, first], "cpu", engine="onnx")


def test_predict_with_two_folders_writes_the_ensemble_and_records_both(folders, tiny_iris, tmp_path, caplog):
    models, _ = folders
    a, b = models["working", 1], models["working", 2]
    datalist = str(tiny_iris / "datalist.json")
    common = ["-i", datalist, "--split", "testing", "--device", "cpu", "--num-workers", "0"]
    assert cli_main(["predict", *common, "-o", str(tmp_path / "out"), "-m", str(a), str(b)]) == 0
    table = pd.read_csv(tmp_path / "out" / "keypoints.csv")
    assert table["image"].nunique() == 2 and len(table) == 4
    for image in table["image"].unique():
        stem = image.removesuffix(".nii.gz")
        assert (tmp_path / "out" / f"{stem}_seg.nii.gz").is_file() and (tmp_path / "out" / "overlays" / f"{stem}.png").is_file()
    record = json.loads((tmp_path / "out" / "ensemble.json").read_text())
    assert record["members"] == [str(a.resolve()), str(b.resolve())] and record["stage"] == "stage3"
    # one -m: no record; a member of another working size: one line naming it, nothing predicted
    assert cli_main(["predict", *common, "-o", str(tmp_path / "one"), "-m", str(a)]) == 0
    assert not (tmp_path / "one" / "ensemble.json").exists()
    other = untrained_model_folder(tmp_path / "size48", image_size=(48, 48))
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="glsmonai"):
        assert cli_main(["predict", *common, "-o", str(tmp_path / "refused"), "-m", str(a), str(other)]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and str(other) in errors[0] and "working size" in errors[0] and "\n" not in errors[0]
    assert not (tmp_path / "refused" / "keypoints.csv").exists()
