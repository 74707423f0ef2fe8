"""``glsmonai compare --folds``: paired differences on literal cases, and a 2-fold run on tiny phantoms."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from glsmonai.cli import main as cli_main
from glsmonai.data.synth.writer import write_phantom_dataset
from glsmonai.evaluation.paired import paired_runs, paired_table


def test_paired_table_pairs_cases_and_skips_missing_scores():
    cases = pd.DataFrame([
        {"model": "unet", "fold": 0, "image": "a1", "group": "a", "dice": 0.80, "hd95": 2.0},
        {"model": "unet", "fold": 0, "image": "a2", "group": "a", "dice": 0.70, "hd95": np.nan},
        {"model": "unet", "fold": 1, "image": "b1", "group": "b", "dice": 0.90, "hd95": 4.0},
        {"model": "gls", "fold": 1, "image": "b1", "group": "b", "dice": 0.95, "hd95": 3.0},
        {"model": "gls", "fold": 0, "image": "a2", "group": "a", "dice": 0.75, "hd95": 1.0},
        {"model": "gls", "fold": 0, "image": "a1", "group": "a", "dice": 0.85, "hd95": 1.0},
    ])
    paired = paired_table(cases, "unet", n_boot=200).set_index("metric")
    assert list(paired.index) == ["dice", "hd95"]  # no key_dice column: no row
    assert paired.loc["dice", "mean"] == pytest.approx(0.05)
    assert paired.loc["dice", ["lo", "hi"]].tolist() == pytest.approx([0.05, 0.05])
    assert paired.loc["dice", ["n", "n_groups"]].tolist() == [3, 2]
    # a2 has no unet HD95: two pairs, -1 (group a) and -1 (group b)
    assert paired.loc["hd95", ["mean", "lo", "hi", "n", "n_groups"]].tolist() == [-1.0, -1.0, -1.0, 2, 2]
    with pytest.raises(ValueError, match="reference model 'cenet'"):
        paired_table(cases, "cenet")


ARGS = ["--models", "unet", "gls", "--epochs", "1", "--folds", "2", "--reference", "unet", "--seed", "0",
        "--set", "image_size=[64,64]", "crop_size=[24,24]", "channels=[4,8,8,16,16]", "num_workers=0",
        "batch_size=3", "sigma=2.0"]


def test_two_runs_of_the_same_cases_are_paired_case_by_case(tmp_path, capsys):
    cases = pd.DataFrame({"model": ["gls"] * 4 + ["unet"] * 4, "fold": [0, 0, 1, 1] * 2, "image": list("abcd") * 2,
                          "group": ["p1", "p1", "p2", "p3"] * 2, "dice": [0.8, 0.9, 0.7, 0.6, 0.5, 0.5, 0.5, 0.5]})
    cases.to_csv(tmp_path / "before.csv", index=False)
    after = cases.assign(dice=cases["dice"] + np.where(cases["model"] == "gls", [0.1, 0.0, 0.05, 0.05] * 2, 0.0))
    after.iloc[::-1].to_csv(tmp_path / "after.csv", index=False)  # row order does not matter
    paired, text = paired_runs(tmp_path / "before.csv", tmp_path / "after.csv", metrics=["dice"])
    gls = paired[paired["model"] == "gls@after"].iloc[0]
    assert gls["reference"] == "gls@before" and gls["n"] == 4 and gls["n_groups"] == 3
    assert gls["mean"] == pytest.approx(0.05) and gls["lo"] <= 0.05 <= gls["hi"]
    unet = paired[paired["model"] == "unet@after"].iloc[0]
    assert (unet["mean"], unet["lo"], unet["hi"]) == (0.0, 0.0, 0.0)
    assert cli_main(["paired", str(tmp_path / "before.csv"), str(tmp_path / "after.csv"), "--models", "gls"]) == 0
    assert "| gls@after | gls@before | dice | +0.0500 |" in capsys.readouterr().out


def external_test_set(root, tiny_iris) -> str:
    """Three phantoms of another seed (other groups) as the ``testing`` entries of a datalist, absolute paths."""
    written = json.loads(write_phantom_dataset("iris", root, n=3, seed=7, size=(64, 72)).read_text())
    content = json.loads((tiny_iris / "datalist.json").read_text())
    entries = [{**e, "image": str(root / e["image"]), "label": str(root / e["label"])}
               for split in ("training", "validation", "testing") for e in written.get(split) or []]
    path = root / "external.json"
    path.write_text(json.dumps({"task": content.get("task", {}), "testing": entries}))
    return str(path)


def test_compare_two_folds_end_to_end(tiny_iris, tmp_path, tmp_path_factory, caplog):
    base = ["compare", "--datalist", str(tiny_iris / "datalist.json"), "--dataset_dir", str(tiny_iris), "--out", str(tmp_path)]
    with caplog.at_level(logging.INFO, logger="glsmonai"):
        assert cli_main([*base, *ARGS]) == 0
    assert "[1/4] unet, fold 1 of 2: training" in caplog.text and "[4/4] gls trained in" in caplog.text
    cases = pd.read_csv(tmp_path / "cases.csv")
    assert list(cases.columns[:5]) == ["model", "fold", "seed", "image", "group"] and (cases["seed"] == 0).all()
    for model in ("unet", "gls"):  # every phantom once per model, as a test case of its fold
        one = cases[cases["model"] == model]
        assert sorted(one["image"]) == sorted(f"iris_s3_{i:04d}.nii.gz" for i in range(10))
    # the folds are group-disjoint, and nothing a fold tests was trained or validated on
    tested = cases[cases["model"] == "unet"].groupby("fold")["group"].apply(set)
    assert len(tested) == 2 and not tested[0] & tested[1]
    for k in (0, 1):
        fold = json.loads((tmp_path / "folds" / f"fold{k}.json").read_text())
        seen = {e["group"] for s in ("training", "validation") for e in fold[s]}
        assert {e["group"] for e in fold["testing"]} == tested[k] and not seen & tested[k]
        assert (tmp_path / "gls" / f"fold{k}" / "models" / "stage3_best.pt").is_file()
    paired = pd.read_csv(tmp_path / "paired.csv")
    assert set(zip(paired["model"], paired["metric"])) == {("gls", "dice"), ("gls", "key_dice"), ("gls", "hd95")}
    assert (paired["reference"] == "unet").all() and (paired["lo"] <= paired["mean"]).all()
    assert (paired["mean"] <= paired["hi"]).all() and (paired.loc[paired["metric"] == "dice", "n"] == 10).all()
    assert "| gls | unet | dice |" in (tmp_path / "paired.md").read_text()
    table = pd.read_csv(tmp_path / "table.csv").set_index("model")
    assert table["n_cases"].tolist() == [10, 10] and table["dice"].between(0, 1).all()
    folds = pd.read_csv(tmp_path / "folds.csv")
    assert len(folds) == 4 and folds["train_min"].gt(0).all() and folds["test_groups"].sum() == 20
    assert table.loc["gls", "train_min"] == pytest.approx(folds.loc[folds["model"] == "gls", "train_min"].sum())
    assert "wall time" in (tmp_path / "table.md").read_text()
    assert len(list((tmp_path / "panels").glob("*.png"))) == 4
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["models"]["gls"]["mean"]["dice"] == pytest.approx(table.loc["gls", "dice"])
    assert "<table" in (tmp_path / "report.html").read_text()
    # a second call trains nothing again
    logs = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/fold*/train.log")}
    assert len(logs) == 4
    assert cli_main([*base, *ARGS]) == 0
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/fold*/train.log")} == logs
    assert pd.read_csv(tmp_path / "cases.csv").equals(cases)
    # prediction-time levers are measured on the same trained models: nothing is retrained, the base
    # rows stay as they were, and each variant is paired with its own model
    assert cli_main([*base, *ARGS, "--variants", "tta", "components"]) == 0
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/fold*/train.log")} == logs
    again = pd.read_csv(tmp_path / "cases.csv")
    assert again[again["model"].isin(["unet", "gls"])].reset_index(drop=True).equals(cases)
    assert set(again["model"]) == {"unet", "gls", "unet+tta", "gls+tta", "unet+components", "gls+components"}
    assert (again.groupby("model").size() == 10).all()
    assert (tmp_path / "gls" / "fold1" / "predictions_tta" / "keypoints.csv").is_file()
    levers = pd.read_csv(tmp_path / "levers.csv")
    assert set(zip(levers["model"], levers["reference"])) == {
        ("unet+tta", "unet"), ("unet+components", "unet"), ("gls+tta", "gls"), ("gls+components", "gls")}
    assert "| gls+tta | gls | dice |" in (tmp_path / "levers.md").read_text()
    # an external test set: every model's fold ensemble and each fold model predict it, nothing is retrained and
    # the cross-validation's outputs stay as they were
    external = external_test_set(tmp_path_factory.mktemp("external"), tiny_iris)
    assert cli_main([*base, *ARGS, "--test", external]) == 0
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/fold*/train.log")} == logs
    assert pd.read_csv(tmp_path / "cases.csv").equals(cases)
    tested = pd.read_csv(tmp_path / "test_cases.csv")
    assert list(tested.columns[:5]) == ["model", "members", "seed", "image", "group"]
    assert tested.groupby(["model", "members"]).size().to_dict() == {
        (m, k): 3 for m in ("gls", "unet") for k in ("ensemble", "fold0", "fold1")}
    record = json.loads((tmp_path / "gls" / "test_ensemble" / "ensemble.json").read_text())
    assert record["members"] == [str((tmp_path / "gls" / f"fold{k}" / "models").resolve()) for k in (0, 1)]
    assert (tmp_path / "gls" / "fold1" / "test_predictions" / "keypoints.csv").is_file()
    test_table = pd.read_csv(tmp_path / "test_table.csv").set_index("model")
    assert list(test_table.index) == ["unet", "unet@fold", "gls", "gls@fold"]
    assert test_table["n_networks"].tolist() == [2, 1, 2, 1] and test_table["predict_s"].gt(0).all()
    gls = tested[tested["model"] == "gls"]
    assert test_table.loc["gls", "dice"] == pytest.approx(gls.loc[gls["members"] == "ensemble", "dice"].mean())
    assert test_table.loc["gls@fold", "dice"] == pytest.approx(gls.loc[gls["members"] != "ensemble", "dice"].mean())
    test_paired = pd.read_csv(tmp_path / "test_paired.csv")
    assert {("gls", "unet"), ("unet", "unet@fold"), ("gls", "gls@fold")} == set(zip(test_paired["model"],
                                                                                    test_paired["reference"]))
    dice = test_paired[(test_paired["model"] == "gls") & (test_paired["reference"] == "gls@fold")
                       & (test_paired["metric"] == "dice")].iloc[0]
    assert dice["n_seeds_ref"] == 2 and dice["mean"] == pytest.approx(
        test_table.loc["gls", "dice"] - test_table.loc["gls@fold", "dice"])
    assert "| gls | gls@fold | dice |" in (tmp_path / "test_paired.md").read_text()
    assert "predict_s" in (tmp_path / "test_table.md").read_text()
    # with prediction-time variants the external set is predicted with them too (the oracle is left out): the plain
    # predictions' rows stay as they were
    assert cli_main([*base, *ARGS, "--test", external, "--variants", "tta", "ref_keypoints"]) == 0
    with_tta = pd.read_csv(tmp_path / "test_cases.csv")
    assert with_tta[with_tta["model"].isin(["gls", "unet"])].reset_index(drop=True).equals(tested)
    assert set(with_tta["model"]) == {"gls", "unet", "gls+tta", "unet+tta"}
    assert (tmp_path / "gls" / "test_ensemble_tta" / "ensemble.json").is_file()
    assert (tmp_path / "gls" / "fold1" / "test_predictions_tta" / "keypoints.csv").is_file()
    assert list(pd.read_csv(tmp_path / "test_table.csv")["model"]) == [
        "unet", "unet@fold", "gls", "gls@fold", "unet+tta", "unet+tta@fold", "gls+tta", "gls+tta@fold"]
    assert ("gls+tta", "unet") in set(zip(*pd.read_csv(tmp_path / "test_paired.csv")[["model", "reference"]].T.values))


def test_compare_reference_must_be_compared(tiny_iris, tmp_path):
    rc = cli_main(["compare", "--datalist", str(tiny_iris / "datalist.json"), "--dataset_dir", str(tiny_iris),
                   "--out", str(tmp_path), "--models", "gls", "--reference", "unet"])
    assert rc == 2 and not any(tmp_path.iterdir())


def test_an_external_test_set_is_refused_before_anything_trains(tiny_iris, tmp_path):
    base = ["compare", "--datalist", str(tiny_iris / "datalist.json"), "--dataset_dir", str(tiny_iris), "--out",
            str(tmp_path / "out"), "--models", "gls", "--reference", "gls"]
    own = str(tiny_iris / "datalist.json")  # its testing cases are cross-validated too: shared groups
    assert cli_main([*base, "--test", own]) == 2
    assert cli_main([*base, "--folds", "0", "--test", own]) == 2  # no fold ensemble
    assert not (tmp_path / "out").exists()


def test_a_preset_is_an_overlay_that_must_exist(tiny_iris, tmp_path):
    from glsmonai.experiments.rounds import DatalistFile
    from glsmonai.experiments.training import train_model
    from glsmonai.resources import configs_dir

    datalist = DatalistFile.read(tiny_iris / "datalist.json", tiny_iris)
    with pytest.raises(FileNotFoundError, match="nosuch.json"):
        train_model("gls", configs_dir(), datalist, tmp_path, [], presets=["nosuch"])
    assert (configs_dir() / "cpu.json").is_file()


def test_the_cpu_preset_gives_the_unet_baseline_its_companion_and_gls_none():
    from glsmonai.experiments.training import bundle_files
    from glsmonai.resources import configs_dir

    names = lambda model: [f.relative_to(configs_dir()).as_posix() for f in bundle_files(configs_dir(), model, ["cpu"])]  # noqa: E731
    assert names("unet") == ["train.json", "cpu.json", "baselines/unet.json", "baselines/unet_cpu.json"]
    assert names("gls") == ["train.json", "cpu.json"]
    assert names("gs") == ["train.json", "cpu.json", "baselines/gs.json"]  # its equal-time budget is not measured


def test_a_run_trained_with_other_config_files_is_trained_again(tiny_iris, tmp_path, monkeypatch):
    # the record of a finished training holds the config files' digest: a changed preset does not reuse old runs
    import shutil

    from glsmonai.experiments import training
    from glsmonai.experiments.rounds import DatalistFile
    from glsmonai.resources import configs_dir

    configs = tmp_path / "configs"
    shutil.copytree(configs_dir(), configs)
    runs: list[list[str]] = []
    monkeypatch.setattr(training, "run_bundle", lambda files, arguments, out, what: runs.append(files) or 60.0)
    datalist = DatalistFile.read(tiny_iris / "datalist.json", tiny_iris)
    assert training.train_model("unet", configs, datalist, tmp_path / "unet", [], ["cpu"]) == (60.0, True)
    assert training.train_model("unet", configs, datalist, tmp_path / "unet", [], ["cpu"]) == (60.0, False)
    preset = configs / "cpu.json"
    preset.write_text(preset.read_text().rstrip().removesuffix("}") + ',\n    "val_interval": 2\n}\n')  # one key more
    assert training.train_model("unet", configs, datalist, tmp_path / "unet", [], ["cpu"]) == (60.0, True)
    assert len(runs) == 2 and runs[0][-1].endswith("unet_cpu.json")
