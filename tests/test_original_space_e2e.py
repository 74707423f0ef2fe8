"""crop_space original end to end: a one-epoch bundle run on scans of mixed sizes, and the compare command."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from glsmonai.cli import main as cli_main
from glsmonai.data.io import read_image
from glsmonai.data.synth import write_phantom_dataset
from tests.test_bundle import TINY, bundle, check


@pytest.fixture(scope="module")
def mixed_sizes(tmp_path_factory):
    """Iris phantoms of two sizes and aspect ratios in one datalist (the batches mix them)."""
    root = tmp_path_factory.mktemp("mixed")
    write_phantom_dataset("iris", root / "a", n=6, seed=5, size=(64, 72))
    write_phantom_dataset("iris", root / "b", n=6, seed=6, size=(90, 70))
    lists = [json.loads((root / p / "datalist.json").read_text()) for p in ("a", "b")]
    merged = dict(lists[0])
    for split in ("training", "validation", "testing"):
        merged[split] = [
            {**e, "image": f"{p}/{e['image']}", "label": f"{p}/{e['label']}"}
            for p, dl in zip(("a", "b"), lists) for e in dl.get(split, [])
        ]
    (root / "datalist.json").write_text(json.dumps(merged))
    return root


def test_one_epoch_with_original_crops(mixed_sizes, tmp_path):
    out = tmp_path / "run"
    proc = bundle("training", ["train.json"], "--dataset_dir", str(mixed_sizes), "--output_dir", str(out), *TINY,
                  "--crop_space", "original", "--local_size", "[32,32]", "--crop_size", "[16,16]")
    check(proc)
    info = json.loads((out / "models" / "gls_model.json").read_text())
    assert info["network"]["crop_space"] == "original" and info["network"]["local_size"] == [32, 32]
    assert (out / "models" / "stage3_best.pt").is_file()
    images = mixed_sizes / "images"
    images.mkdir()
    for sub in ("a", "b"):
        for f in (mixed_sizes / sub / "images").glob("*0001*"):
            shutil.copy(f, images / f"{sub}_{f.name}")
    for extra in ([], ["--no-fusion"], ["--keypoint-band", "2"]):
        pred = tmp_path / ("pred" + "".join(extra))
        assert cli_main(["predict", "-i", str(images), "-o", str(pred), "-m", str(out / "models"), *extra]) == 0
        for f in images.iterdir():
            mask, geometry = read_image(pred / f.name.replace(".nii.gz", "_seg.nii.gz"))
            assert mask.shape == read_image(f)[1].shape
        kp = pd.read_csv(pred / "keypoints.csv")
        assert len(kp) == 4 and kp["confidence"].between(0, 1).all()


def test_compare_working_and_original_crops(tiny_iris, tmp_path):
    rc = cli_main(["compare", "--datalist", str(tiny_iris / "datalist.json"), "--dataset_dir", str(tiny_iris),
                   "--models", "gls_working", "gls_original", "--epochs", "1", "--out", str(tmp_path), "--panels", "1",
                   "--set", "image_size=[48,48]", "crop_size=[16,16]", "channels=[4,8,8,16,16]", "num_workers=0",
                   "batch_size=3", "sigma=2.0", "--folds", "0", "--reference", "gls_working"])
    assert rc == 0
    table = pd.read_csv(tmp_path / "table.csv").set_index("model")
    assert list(table.index) == ["gls_working", "gls_original"]
    assert table[["kp_err_mean", "kp_err_median", "kp_err_max"]].ge(0).all().all()
    assert table["kp_missed"].between(0, 1).all() and table["gflops"].gt(0).all()
    assert json.loads((tmp_path / "gls_original" / "models" / "gls_model.json").read_text())["network"]["local_size"] == [32, 32]
