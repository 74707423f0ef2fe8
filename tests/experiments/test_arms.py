"""``compare --arm NAME MODEL KEY=VALUE ...``: a training-time lever compared as one more model."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_an_arm_takes_a_stage_from_another_compared_model_of_the_same_round_and_seed():
    arm = Arm.parse(["gls_mean", "gls", "fusion_init=mean", "stage1_of=gls"])
    assert arm == Arm("gls_mean", "gls", ("--fusion_init", "mean"), (("stage1", "gls"),))
    runs = {"gls": Path("runs/cv/gls/fold0/seed1")}  # where gls trained on this round and seed
    assert arm.stage_from(runs) == ("--stage_from", "{'stage1': 'runs/cv/gls/fold0/seed1/models'}")
    assert Arm.parse(["gls_40", "gls", "stage1_epochs=40"]).stage_from(runs) == ()


@pytest.mark.parametrize("words, message", [
    (["unet_60"], "expects NAME MODEL"),
    (["gls", "unet", "lr=0.01"], "must differ from the models"),
    (["unet+60", "unet"], "hold no '+'"),
    (["unet_60", "vnet"], "unknown model 'vnet'"),
    (["unet_60", "unet", "stage1_epochs"], "expected KEY=VALUE, got 'stage1_epochs'"),
    (["unet_60", "unet", "seed=3"], "training seeds are the comparison's"),
    (["gls_m", "gls", "stage_from={'stage1':'runs/x'}"], "stage1_of=gls_75"),
    (["gls_m", "gls", "stage7_of=gls"], "unknown stage 'stage7'"),
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
    assert summary["evaluated"]["arms"] == {"gs_lr": {"model": "gs", "overrides": ["--lr", "0.01"], "stages_of": {}}}
    # an arm named like a model is refused before anything is trained
    caplog.clear()
    assert cli_main([*common, "--arm", "gs", "gs", "lr=0.01", "--out", str(tmp_path / "again")]) == 2
    assert "must differ" in caplog.text and not (tmp_path / "again").exists()


TINY_SET = ["--set", "image_size=[48,48]", "crop_size=[16,16]", "channels=[4,8,8,16,16]", "num_workers=0",
            "batch_size=3", "sigma=2.0"]


def test_compare_trains_stages_2_and_3_of_an_arm_on_its_models_stage_1(tiny_iris, tmp_path, caplog):
    import torch

    common = ["compare", "--datalist", str(tiny_iris / "datalist.json"), "--dataset_dir", str(tiny_iris),
              "--models", "gls", "--reference", "gls", "--folds", "0", "--epochs", "1", "--panels", "0", *TINY_SET]
    # the model it takes stage 1 from must train before it: refused before anything is trained
    assert cli_main([*common, "--arm", "gls_mean", "gls", "fusion_init=mean", "stage1_of=gls_40",
                     "--arm", "gls_40", "gls", "stage1_epochs=2", "--out", str(tmp_path / "refused")]) == 2
    assert "stage1_of=gls_40: gls_40 must be one of --models or an arm given before it" in caplog.text
    assert not (tmp_path / "refused").exists()

    assert cli_main([*common, "--arm", "gls_mean", "gls", "fusion_init=mean", "stage1_of=gls",
                     "--out", str(tmp_path)]) == 0
    log = (tmp_path / "gls_mean" / "train.log").read_text()
    assert "stage1 taken from" in log and "stage1: 1 epoch(s)" not in log and "stage3: 1 epoch(s)" in log
    theirs, mine = (torch.load(tmp_path / m / "models" / "stage1_best.pt", weights_only=True) for m in ("gls", "gls_mean"))
    assert all(mine[k].equal(theirs[k]) for k in theirs if k.startswith("global_net."))
    assert pd.read_csv(tmp_path / "cases.csv").groupby("model").size().to_dict() == {"gls": 2, "gls_mean": 2}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["evaluated"]["arms"]["gls_mean"]["stages_of"] == {"stage1": "gls"}
    # gls_mean's minutes count the stage 1 it took: what that stage cost gls, and its own run's seconds
    stage1_s = json.loads((tmp_path / "gls" / "models" / "stage_seconds.json").read_text())["stage1"]["seconds"]
    own_s = json.loads((tmp_path / "gls_mean" / "train_time.json").read_text())["seconds"]
    minutes = pd.read_csv(tmp_path / "folds.csv").set_index("model")["train_min"]
    assert minutes["gls_mean"] * 60 == pytest.approx(own_s + stage1_s)


def test_an_arm_whose_source_recorded_no_stage_seconds_counts_its_own_minutes_only(tmp_path):
    arm = Arm.parse(["gls_mean", "gls", "stage2_of=gls"])
    models = tmp_path / "models"
    models.mkdir()
    assert arm.taken_seconds(tmp_path) is None  # taken from a folder trained before the record was kept
    (models / "stage_seconds.json").write_text(json.dumps({
        "stage1": {"seconds": 300.0, "taken_from": "runs/gls/models"},
        "stage2": {"seconds": 40.0, "epochs": 10, "taken_from": "runs/gls/models"},
        "stage3": {"seconds": 30.0, "epochs": 8},
    }))
    assert arm.taken_seconds(tmp_path) == 340.0  # stages 1 and 2, not the stage 3 it trained itself
    assert Arm.parse(["unet_60", "unet", "stage1_epochs=60"]).taken_seconds(tmp_path) == 0.0


def test_compare_with_no_model_and_no_arm_is_refused_in_one_line(tiny_iris, tmp_path, caplog):
    # `--models` with no name compares the arms alone; with no arm either there is nothing to compare
    assert cli_main(["compare", "--datalist", str(tiny_iris / "datalist.json"), "--dataset_dir", str(tiny_iris),
                     "--models", "--out", str(tmp_path / "none")]) == 2
    assert "no model to compare" in caplog.text and not (tmp_path / "none").exists()
