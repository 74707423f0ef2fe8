"""docs/python-api.md runs: every python block of the page, in order, on a tiny trained model."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.test_bundle import ROOT, TINY, check, typed

PAGE = ROOT / "docs" / "python-api.md"


def python_blocks(page: Path) -> list[str]:
    """The fenced ``python`` blocks of a markdown page, in order."""
    return re.findall(r"^```python\n(.*?)^```$", page.read_text(), flags=re.M | re.S)


@pytest.fixture(scope="module")
def trained_model(tiny_iris, tmp_path_factory):
    """A model folder trained by the bundle, one epoch per stage on the tiny phantoms."""
    out = tmp_path_factory.mktemp("run")
    check(typed("run", "training", "--config_file", "bundles/gls/configs/train.json", "--dataset_dir", str(tiny_iris),
                "--output_dir", str(out), *TINY))
    return out / "models"


def test_the_page_has_the_documented_steps():
    code = "\n".join(python_blocks(PAGE))
    for step in ("Predictor(", "PredictOptions(", ".predict(", ".predict_array(", "predict_folder(", "run_inference(",
                 "variant_options(", "ModelFolder.open("):
        assert step in code, step


def test_the_documented_python_api_runs(trained_model, tiny_iris, tmp_path, monkeypatch):
    (tmp_path / "runs" / "mine").mkdir(parents=True)
    (tmp_path / "runs" / "mine" / "models").symlink_to(trained_model)
    for fold in ("fold0", "fold1"):  # two folds of a cross-validation, for the ensemble's block
        (tmp_path / "runs" / fold).mkdir()
        (tmp_path / "runs" / fold / "models").symlink_to(trained_model)
    scans = sorted((tiny_iris / "images").glob("*.nii.gz"))[:2]
    (tmp_path / "scans").mkdir()
    for i, scan in enumerate(scans, 1):
        shutil.copyfile(scan, tmp_path / "scans" / f"case{i:02d}.nii.gz")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    blocks = python_blocks(PAGE)
    for i, block in enumerate(blocks):
        exec(compile(block, f"{PAGE}, python block {i + 1}", "exec"), namespace)  # noqa: S102
    # what the page promised
    assert namespace["prediction"].mask.shape == (64, 72)
    assert sorted(namespace["keypoints"]) == ["case01", "case02"]
    for out in ("predictions", "predictions_plain", "predictions_tta"):
        assert (tmp_path / out / "case01_seg.nii.gz").is_file() and (tmp_path / out / "keypoints.csv").is_file()
    assert (tmp_path / "predictions" / "overlays" / "case01.png").is_file()
    assert namespace["predictor"].options.tta and namespace["plain"].options.tta is False
    assert namespace["gs"].stage.name == "stage1"
    assert len(namespace["ensemble"].members) == 2 and (tmp_path / "predictions_ensemble" / "ensemble.json").is_file()
