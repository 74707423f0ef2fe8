"""The predictor prepares a scan exactly as the bundle's training chain does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser

from glsmonai.data.io import read_image
from glsmonai.transforms.pipeline import prediction_transforms

TRAIN = Path(__file__).resolve().parents[2] / "bundles" / "gls" / "configs" / "train.json"


@pytest.mark.parametrize("crop_space", ["working", "original"])
def test_prediction_chain_matches_the_training_chain(tiny_iris, crop_space):
    parser = ConfigParser()
    parser.read_config(str(TRAIN))
    parser.update({"dataset_dir": str(tiny_iris), "image_size": [48, 40], "crop_size": [12, 12], "crop_space": crop_space})
    case = parser.get_parsed_content("train#datalist")[0]
    trained = case
    for transform in parser.get_parsed_content("train#deterministic_transforms"):
        trained = transform(trained)
    raw, geometry = read_image(case["image"])
    predicted = prediction_transforms((48, 40), crop_space=crop_space, crop_size=(12, 12))(
        {"image": torch.from_numpy(raw)[None], "geometry": geometry}
    )
    assert predicted["image"].shape == (1, 48, 40)
    assert torch.equal(torch.as_tensor(predicted["image"]), torch.as_tensor(trained["image"]))
    if crop_space == "original":
        assert torch.equal(torch.as_tensor(predicted["source"]), torch.as_tensor(trained["source"]))
        assert torch.equal(predicted["to_source"], trained["to_source"]) and torch.equal(predicted["window"], trained["window"])
    else:
        assert "source" not in predicted and "window" not in trained
