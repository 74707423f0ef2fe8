"""The ``ref_keypoints`` variant: the same model, its windows at the reference keypoints (an oracle)."""

from __future__ import annotations

import json

import numpy as np
import torch

from glsmonai.data.prediction_folder import read_keypoints_csv
from glsmonai.experiments.rounds import DatalistFile, Round
from glsmonai.experiments.variants import ORACLE, VARIANT_NAMES, predict_round, reference_prompts
from glsmonai.model_folder import stage_checkpoint, write_model_info
from glsmonai.networks.baselines import SegmentationOnly
from tests.helpers import untrained_model_folder


def test_the_oracle_is_a_compare_variant():
    assert ORACLE == "ref_keypoints" and VARIANT_NAMES[-1] == ORACLE and "stage1" in VARIANT_NAMES


def test_ref_keypoints_predicts_with_the_windows_at_the_datalists_keypoints(tiny_iris, tmp_path):
    round_ = Round(0, DatalistFile.read(tiny_iris / "datalist.json", tiny_iris), "testing", "")
    run = tmp_path / "gls"
    untrained_model_folder(run / "models", image_size=(48, 48))
    reference = {case["image"].split("/")[-1].split(".")[0]: case["keypoints"] for case in round_.cases}
    assert len(reference) == 2

    predict_round(round_, run)
    predict_round(round_, run, ORACLE)
    plain = read_keypoints_csv(run / "predictions" / "keypoints.csv")
    oracle = read_keypoints_csv(run / f"predictions_{ORACLE}" / "keypoints.csv")
    for stem, points in reference.items():
        assert np.allclose(oracle[stem][0], points, atol=1e-3)  # the windows sat at the reference keypoints
        assert not np.allclose(plain[stem][0], points, atol=1)  # an untrained model finds others


def test_a_case_without_keypoints_takes_the_rule_on_its_label_as_training_does(tiny_iris, tmp_path):
    content = json.loads((tiny_iris / "datalist.json").read_text())
    given = [dict(e) for e in content["testing"]]
    for entry in content["testing"]:
        entry.pop("keypoints", None)
    (tmp_path / "no_keypoints.json").write_text(json.dumps(content))
    round_ = Round(0, DatalistFile.read(tmp_path / "no_keypoints.json", tiny_iris), "testing", "")
    model_dir = untrained_model_folder(tmp_path / "models")
    info = json.loads((model_dir / "gls_model.json").read_text())
    (model_dir / "gls_model.json").write_text(json.dumps({**info, "keypoint_rule": "iris_roots"}))

    prompts = reference_prompts(round_, model_dir)
    assert sorted(prompts) == sorted(e["image"].split("/")[-1].split(".")[0] for e in given)
    for entry in given:  # the phantoms' keypoints are the iris roots the rule finds
        found = prompts[entry["image"].split("/")[-1].split(".")[0]]
        assert found.shape == (2, 2) and np.abs(found - np.asarray(entry["keypoints"])).max() < 3


def test_a_baseline_gets_no_prompts(tiny_iris, tmp_path):
    round_ = Round(0, DatalistFile.read(tiny_iris / "datalist.json", tiny_iris), "testing", "")
    net = SegmentationOnly("unet", features=(4, 4, 8, 8, 16, 4))
    write_model_info(tmp_path, net, {"image_size": [32, 32]})
    torch.save(net.state_dict(), stage_checkpoint(tmp_path, "stage1"))
    assert reference_prompts(round_, tmp_path) is None
