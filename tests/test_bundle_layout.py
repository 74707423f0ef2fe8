"""The bundle as the model zoo lays it out: its files, its metadata and MONAI's workflow property check."""

from __future__ import annotations

import configparser
import fnmatch
import json
import os
import shutil
from importlib import metadata
from pathlib import Path

import pytest
from monai.bundle import ConfigParser, ConfigWorkflow

from glsmonai.cli import main as cli_main
from glsmonai.engines.errors import input_error
from glsmonai.resources import REQUIRED_PACKAGES, bundle_dir, configs_dir, record_versions
from tests.test_bundle import BUNDLE, ROOT

PROPERTIES = str(BUNDLE / "properties.json")


def test_the_bundle_has_the_model_zoo_layout():
    root = bundle_dir()
    assert configs_dir() == root / "configs" and configs_dir().resolve() == BUNDLE.resolve()
    for name in ("train.json", "inference.json", "evaluate.json", "multi_gpu_train.json", "metadata.json",
                 "logging.conf", "properties.json", "baselines/unet.json"):
        assert (root / "configs" / name).is_file(), name
    assert (root / "docs" / "README.md").is_file() and "Apache License" in (root / "LICENSE").read_text()


def test_metadata_describes_logits_both_modalities_and_every_format():
    meta = json.loads((BUNDLE / "metadata.json").read_text())
    for key in ("version", "changelog", "monai_version", "pytorch_version", "numpy_version", "required_packages_version",
                "name", "task", "description", "authors", "copyright", "data_source", "data_type", "image_classes",
                "label_classes", "pred_classes", "eval_metrics", "intended_use", "references", "network_data_format"):
        assert key in meta, key
    assert meta["version"] in meta["changelog"]
    pred = meta["network_data_format"]["outputs"]["pred"]
    assert pred["value_range"] != [0, 1] and "logits" in pred["channel_def"]["0"]
    modality = meta["network_data_format"]["inputs"]["image"]["modality"]
    assert "OCT" in modality and "US" in modality
    for fmt in ("nifti", "metaimage", "nrrd", "dicom", "png", "jpeg", "tiff"):
        assert fmt in meta["data_type"], fmt


def test_versions_are_recorded_from_the_environment(tmp_path):
    path = tmp_path / "metadata.json"
    shutil.copy(BUNDLE / "metadata.json", path)
    stale = json.loads(path.read_text()) | {"monai_version": "0.0.1", "required_packages_version": {}}
    path.write_text(json.dumps(stale))
    assert cli_main(["bundle", "versions", str(path)]) == 0
    meta = json.loads(path.read_text())
    assert meta["monai_version"] == metadata.version("monai")
    assert meta["pytorch_version"] == metadata.version("torch").split("+")[0]
    assert set(meta["required_packages_version"]) == set(REQUIRED_PACKAGES)
    assert meta["required_packages_version"]["glsmonai"] == metadata.version("glsmonai")
    assert meta["name"] == stale["name"]  # everything else is kept
    path.write_text("{not json")
    with pytest.raises(ValueError, match="metadata.json: not valid JSON"):
        record_versions(path)


def test_the_training_config_passes_monais_property_check(tiny_iris, tmp_path):
    workflow = ConfigWorkflow(config_file=str(BUNDLE / "train.json"), meta_file=str(BUNDLE / "metadata.json"),
                              workflow_type="train", properties_path=PROPERTIES, dataset_dir=str(tiny_iris),
                              output_dir=str(tmp_path), num_workers=0, progress=False)
    workflow.initialize()
    assert workflow.check_properties() == []
    assert workflow.stage1_max_epochs == 100 and workflow.stage1_trainer.state.max_epochs == 100
    # model_dir names the model folder; ckpt_dir, its model-zoo alias, set alone would be ignored: refused
    workflow = ConfigWorkflow(config_file=str(BUNDLE / "train.json"), workflow_type="train", dataset_dir=str(tiny_iris),
                              output_dir=str(tmp_path), ckpt_dir=str(tmp_path / "elsewhere"))
    with pytest.raises(RuntimeError) as failed:  # MONAI's "Failed to evaluate", from glsmonai's ValueError
        workflow.initialize()
    assert "ckpt_dir is an alias of model_dir" in str(input_error(failed.value))


def test_the_inference_config_passes_monais_property_check():
    workflow = ConfigWorkflow(config_file=str(BUNDLE / "inference.json"), meta_file=str(BUNDLE / "metadata.json"),
                              workflow_type="infer", properties_path=PROPERTIES)
    workflow.initialize()
    assert workflow.check_properties() == []


#: the bundle's files before the model-zoo layout (``git log --stat -- bundles/gls``), kept as links into configs/
OLD_PATHS = ("train.json", "inference.json", "evaluate.json", "multi_gpu_train.json", "cpu.json", "thesis.json",
             "crop_original.json", "crop_working.json", "metadata.json", "logging.conf")


@pytest.mark.parametrize("name", OLD_PATHS)
def test_the_old_paths_are_relative_links_to_the_same_configs(name):
    old = BUNDLE.parent / name
    assert old.is_symlink() and os.readlink(old) == f"configs/{name}"  # relative: valid in any checkout
    if name.endswith(".json"):
        assert ConfigParser.load_config_file(old) == ConfigParser.load_config_file(BUNDLE / name)


def test_an_old_path_finds_metadata_and_logging_beside_it_and_overlays_merge(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)  # paths as a user types them in the checkout
    workflow = ConfigWorkflow(config_file=["bundles/gls/train.json", "bundles/gls/cpu.json"], workflow_type="train",
                              output_dir=str(tmp_path))
    assert workflow.config_root_path == Path("bundles/gls")
    assert workflow.meta_file == "bundles/gls/metadata.json" and workflow.parser["_meta_"]["version"]
    assert workflow.parser["image_size"] == [128, 128] and workflow.parser["stage2#trainer#max_epochs"] == "@##epochs"


def test_the_old_paths_stay_out_of_the_wheel():
    # package data names configs/ only: the links serve the checkout, the wheel has the model-zoo layout
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    patterns = setup["options.package_data"]["glsmonai"].split()
    assert any(fnmatch.fnmatch("bundles/gls/configs/train.json", p) for p in patterns)
    for name in OLD_PATHS:
        assert not any(fnmatch.fnmatch(f"bundles/gls/{name}", p) for p in patterns), name
