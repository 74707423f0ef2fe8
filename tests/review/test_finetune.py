"""From a reviewed folder to a fine-tuned model (issue 20, part 3): ``glsmonai datalist review`` turns the accepted
and corrected scans into a datalist, and ``finetune.json`` trains stage 3 of the model folder on it, from the
folder's own checkpoint (one epoch on the tiny phantoms here; what N corrections buy is measured elsewhere)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from glsmonai.cli import main
from glsmonai.inference import Predictor
from glsmonai.model_folder import ModelFolder
from glsmonai.review import Review, ReviewFolder
from tests.review.conftest import ROOT


def test_reviewed_scans_make_a_datalist_that_fine_tunes_the_model(review_folder, tmp_path):
    model, images, _, pred = review_folder
    review = Review(ReviewFolder(pred, images), Predictor(model, "cpu"), "tester")
    names = [row["name"] for row in review.scans()["scans"]]
    moved = review.move(names[0], 1, 20.0, 30.0)
    assert moved["keypoints"][1]["source"] == "user"
    assert review.accept(names[0])["state"] == "corrected"
    assert review.accept(names[1])["state"] == "accepted"
    assert review.scans()["progress"]["reviewed"] == 2

    datalist = tmp_path / "reviewed.json"
    assert main(["datalist", "review", str(pred), "--images", str(images), "--out", str(datalist), "-m", str(model)]) == 0
    content = json.loads(datalist.read_text())
    entries = content["training"] + content["validation"]
    assert len(content["training"]) == len(content["validation"]) == 1  # a scan is kept to validate on
    assert content["task"]["num_components"] == 2 and content["task"]["num_keypoints"] == 2
    base = Path(content["dataset_dir"])
    by_image = {Path(e["image"]).name: e for e in entries}
    assert set(by_image) == set(names[:2])  # the eight still to review are left out
    corrected, accepted = by_image[names[0]], by_image[names[1]]
    stem = names[0].removesuffix(".nii.gz")
    assert corrected["review"] == "corrected" and base / corrected["label"] == pred / "corrected" / f"{stem}_seg.nii.gz"
    assert np.allclose(corrected["keypoints"][1], [20.0, 30.0])
    assert accepted["review"] == "accepted" and (base / accepted["label"]).parent == pred
    assert all((base / e["image"]).is_file() and (base / e["label"]).is_file() for e in entries)

    # fine-tune: stage 3 alone, from the model folder's checkpoint, one epoch
    configs = ROOT / "bundles" / "gls" / "configs"
    out = tmp_path / "finetuned"
    run = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file",
         repr([str(configs / "train.json"), str(configs / "finetune.json")]), "--init_model_dir", str(model),
         "--datalist", str(datalist), "--dataset_dir", str(base), "--output_dir", str(out), "--finetune_epochs", "1",
         "--num_workers", "0", "--batch_size", "1", "--progress", "false"],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    log = run.stdout + run.stderr
    assert f"stage3 starts from {model / 'stage3_best.pt'}" in log and "stage1:" not in log and "stage2:" not in log
    tuned, original = ModelFolder.open(out / "models"), ModelFolder.open(model)
    assert tuned.trained_stage().name == "stage3" and not (out / "models" / "stage1_best.pt").exists()
    assert tuned.settings.network.args == original.settings.network.args
    assert tuned.settings.image_size == original.settings.image_size and tuned.settings.num_components == 2
    before, after = (torch.load(f.path / "stage3_best.pt", weights_only=True) for f in (original, tuned))
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)
    assert Predictor(out / "models", "cpu").predict(images / names[0]).mask.shape == (64, 72)
