"""Ordinary datalists (README's Data section: image, label and keypoints entries, no task block), trained as
they come with the CPU preset: the model folder is complete when training ends, and a bad label stops the
run before it starts with a line that names the file."""

from __future__ import annotations

import json

import numpy as np

from glsmonai.cli import main as cli_main
from glsmonai.data.io import write_mask
from tests.test_bundle import TINY, bundle, check

CPU_PRESET = ["train.json", "cpu.json"]
ONE_EPOCH = ["--stage1_epochs", "1", "--stage2_epochs", "1", "--stage3_epochs", "1"]  # the preset sets its own


def _plain_datalist(tiny_iris, path, keep_keypoints: bool = True, labels: dict[int, str] | None = None):
    """The phantoms' datalist without its task block (and without keypoints unless ``keep_keypoints``);
    ``labels`` replaces training entries' labels."""
    content = json.loads((tiny_iris / "datalist.json").read_text())
    keys = ("image", "label", "keypoints") if keep_keypoints else ("image", "label")
    plain = {split: [{k: e[k] for k in keys} for e in content[split]] for split in ("training", "validation", "testing")}
    for index, label in (labels or {}).items():
        plain["training"][index]["label"] = label
    path.write_text(json.dumps(plain))
    return path


def test_a_datalist_without_task_block_gives_a_complete_model_folder(tiny_iris, tmp_path):
    # the CPU preset records `components: task`; the count comes from the keypoint rule (iris_roots: 2 halves)
    datalist = _plain_datalist(tiny_iris, tmp_path / "plain.json")
    proc = bundle("training", CPU_PRESET, "--dataset_dir", str(tiny_iris), "--datalist", str(datalist),
                  "--output_dir", str(tmp_path / "run"), *TINY, *ONE_EPOCH)
    check(proc)
    models = tmp_path / "run" / "models"
    info = json.loads((models / "gls_model.json").read_text())
    assert info["predict"]["components"] == "task" and info["num_components"] == 2
    assert cli_main(["predict", "-i", str(datalist), "--split", "testing", "--dataset-dir", str(tiny_iris),
                     "-o", str(tmp_path / "pred"), "-m", str(models), "--no-overlays"]) == 0
    assert len(list((tmp_path / "pred").glob("*_seg.nii.gz"))) == 2


def test_a_label_the_keypoint_rule_finds_nothing_on_is_named(tiny_iris, tmp_path):
    empty = tmp_path / "empty.nii.gz"
    write_mask(empty, np.zeros((64, 72), np.uint8))
    datalist = _plain_datalist(tiny_iris, tmp_path / "plain.json", keep_keypoints=False, labels={0: str(empty)})
    proc = bundle("training", CPU_PRESET, "--dataset_dir", str(tiny_iris), "--datalist", str(datalist),
                  "--output_dir", str(tmp_path / "run"), *TINY, *ONE_EPOCH)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {datalist}: training[0] label {empty}: the keypoint rule iris_roots finds no keypoints on it: "
        "the mask has 0 connected component(s), the rule needs 2")
    assert not (tmp_path / "run" / "models" / "stage1_best.pt").exists()
