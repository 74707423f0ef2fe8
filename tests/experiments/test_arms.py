"""``compare --arm NAME MODEL KEY=VALUE ...``: a training-time lever compared as one more model."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from glsmonai.cli import main as cli_main
from glsmonai.experiments.training import Arm, training_seeds


def test_an_arm_is_a_model_with_overrides_of_its_own():
    arm = Arm.parse(["unet_60", "unet", "stage1_epochs=60", "image_size=[256,256]"])
    assert arm == Arm("unet_60", "unet", ("--stage1_epochs", "60", "--image_size", "[256,256]"))


def test_the_arms_overrides_replace_the_comparisons_own_and_keep_the_seed():
    arm = Arm.parse(["unet_60", "unet", "stage1_epochs=60"])
    seed = training_seeds(2, ["--stage1_epochs", "30", "--lr", "0.002"])[1]
    assert seed.overrides == ("--stage1_epochs", "30", "--lr", "0.002", "--seed", "1")
    assert arm.training_overrides(seed.overrides) == ("--lr", "0.002", "--seed", "1", "--stage1_epochs", "60")


@pytest.mark.parametrize("words, message", [
    (["unet_60"], "expects NAME MODEL"),
    (["gls", "unet", "lr=0.01"], "must differ from the models"),
    (["unet+60", "unet"], "hold no '+'"),
    (["unet_60", "vnet"], "unknown model 'vnet'"),
    (["unet_60", "unet", "stage1_epochs"], "expected KEY=VALUE, got 'stage1_epochs'"),
    (["unet_60", "unet", "seed=3"], "training seeds are the comparison's"),
])
def test_a_bad_arm_is_refused_in_one_line(words, message):
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        Arm.parse(words)


def test_compare_trains_an_arm_beside_its_model_and_pairs_them(tiny_iris, tmp_path, caplog):
    common = ["compare", "--datalist", str(tiny_iris / "datalist.json"), "--dataset_dir", str(tiny_iris),
              "--models", "gs", "--reference", "gs", "--folds", "0", "--epochs", "1", "--panels", "0",
              "--set", "lr=0.002", "image_size=[48,48]", "crop_size=[16,16]", "channels=[4,8,8,16,16]",
              "num_workers=0", "batch_size=3", "sigma=2.0"]
    assert cli_main([*common, "--arm", "gs_lr", "gs", "lr=0.01", "--out", str(tmp_path)]) == 0
    plain = json.loads((tmp_path / "gs" / "train_time.json").read_text())["overrides"]
    arm = json.loads((tmp_path / "gs_lr" / "train_time.json").read_text())["overrides"]
    assert plain[plain.index("--lr") + 1] == "0.002" and arm.count("--lr") == 1 and arm[-2:] == ["--lr", "0.01"]
    assert [o for o in arm if o not in ("--lr", "0.01")] == [o for o in plain if o not in ("--lr", "0.002")]
    cases = pd.read_csv(tmp_path / "cases.csv")
    assert cases.groupby("model").size().to_dict() == {"gs": 2, "gs_lr": 2}
    table = pd.read_csv(tmp_path / "table.csv").set_index("model")
    assert table.loc["gs_lr", "train_min"] > 0
    paired = pd.read_csv(tmp_path / "paired.csv")
    assert set(paired["model"]) == {"gs_lr"} and set(paired["reference"]) == {"gs"}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["evaluated"]["arms"] == {"gs_lr": {"model": "gs", "overrides": ["--lr", "0.01"]}}
    # an arm named like a model is refused before anything is trained
    caplog.clear()
    assert cli_main([*common, "--arm", "gs", "gs", "lr=0.01", "--out", str(tmp_path / "again")]) == 2
    assert "must differ" in caplog.text and not (tmp_path / "again").exists()
