"""One deterministic chain: the bundle's training chain and the predictor's are built by the same function, and
prepare an image identically."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser
from monai.transforms import ScaleIntensityRangePercentilesd

from glsmonai.data.io import read_image
from glsmonai.transforms import BinarizeLabeld, CropWindowd, Keypointsd, LoadScand, ToWorkingSized
from glsmonai.transforms.pipeline import DEFAULT_INTENSITY_PERCENTILES, deterministic_transforms, prediction_transforms

TRAIN = Path(__file__).resolve().parents[2] / "bundles" / "gls" / "configs" / "train.json"


def train_parser(**updates) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(str(TRAIN))
    parser.update(updates)
    return parser


def test_the_bundle_builds_its_training_chain_with_the_one_function():
    parser = train_parser()
    config = parser.get("train#deterministic_transforms")
    assert config["_target_"] == "glsmonai.transforms.pipeline.deterministic_transforms"
    assert config["label_key"] == "label"
    assert parser.get("validate#deterministic_transforms") == "%train#deterministic_transforms"
    assert parser.get("intensity_percentiles") == list(DEFAULT_INTENSITY_PERCENTILES)


@pytest.mark.parametrize("crop_space", ["working", "original"])
def test_the_chain_with_and_without_a_label(crop_space):
    labelled = deterministic_transforms((48, 40), crop_space=crop_space, crop_size=(12, 12), label_key="label",
                                        num_keypoints=2, keypoint_rule="iris_roots")
    plain = deterministic_transforms((48, 40), crop_space=crop_space, crop_size=(12, 12))
    window = [CropWindowd] if crop_space == "original" else []
    assert [type(t) for t in labelled] == [LoadScand, Keypointsd, BinarizeLabeld, ScaleIntensityRangePercentilesd,
                                           ToWorkingSized, *window]
    assert [type(t) for t in plain] == [ScaleIntensityRangePercentilesd, ToWorkingSized, *window]
    assert list(labelled[-1 - len(window)].keys) == ["image", "label"] and list(plain[-1 - len(window)].keys) == ["image"]
    with pytest.raises(ValueError, match="needs crop_size"):
        deterministic_transforms((48, 40), crop_space="original")
    with pytest.raises(ValueError, match="num_keypoints"):
        deterministic_transforms((48, 40), label_key="label")


@pytest.mark.parametrize("crop_space", ["working", "original"])
def test_prediction_chain_matches_the_training_chain(tiny_iris, crop_space):
    parser = train_parser(dataset_dir=str(tiny_iris), image_size=[48, 40], crop_size=[12, 12], crop_space=crop_space)
    case = parser.get_parsed_content("train#datalist")[0]
    trained = case
    for transform in parser.get_parsed_content("train#deterministic_transforms"):
        trained = transform(trained)
    raw, geometry = read_image(case["image"])
    predicted = prediction_transforms((48, 40), crop_space=crop_space, crop_size=(12, 12))(
        {"image": torch.from_numpy(raw)[None], "geometry": geometry}
    )
    assert predicted["image"].shape == (1, 48, 40) and trained["label"].shape == (1, 48, 40)
    assert torch.equal(torch.as_tensor(predicted["image"]), torch.as_tensor(trained["image"]))
    if crop_space == "original":
        assert torch.equal(torch.as_tensor(predicted["source"]), torch.as_tensor(trained["source"]))
        assert "source_label" in trained and "source_label" not in predicted
        assert torch.equal(predicted["to_source"], trained["to_source"]) and torch.equal(predicted["window"], trained["window"])
    else:
        assert "source" not in predicted and "window" not in trained
