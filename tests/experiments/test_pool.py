"""``glsmonai compare-pool`` on two hand-made compare output folders that differ only in the training seed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from glsmonai.cli import main as cli_main
from glsmonai.evaluation.statistics import hierarchical_paired_difference
from glsmonai.experiments.pool import pool_runs

IMAGES = ["a1", "a2", "b1", "c1"]
GROUPS = ["a", "a", "b", "c"]
DICE = {  # (model, seed) -> one Dice per image
    ("unet", 0): [0.80, 0.70, 0.90, 0.60], ("gls", 0): [0.85, 0.75, 0.88, 0.70],
    ("unet", 1): [0.78, 0.74, 0.86, 0.64], ("gls", 1): [0.80, 0.79, 0.90, 0.62],
}


def write_run(folder, seed: int, new: bool) -> None:
    """A compare output: ``new`` as compare writes it now (a seed column, kp_errors.csv), else as it wrote
    before seeds (no seed anywhere; the seed only in summary.json's overrides)."""
    folder.mkdir()
    cases = pd.DataFrame([{"model": m, "fold": i % 2, "seed": seed, "image": image, "group": group,
                           "dice": DICE[m, seed][i], "iou": DICE[m, seed][i] / 2, "hd95": 10.0 + i, "key_dice": 0.5}
                          for m in ("unet", "gls") for i, (image, group) in enumerate(zip(IMAGES, GROUPS))])
    folds = pd.DataFrame([{"model": m, "fold": f, "seed": seed, "n_training": 3, "n_validation": 1, "n_testing": 2,
                           "test_groups": 2 - f, "train_min": minutes + seed, "infer_s": 1.0}
                          for m, minutes in (("unet", 1.0), ("gls", 2.0)) for f in (0, 1)])
    table = pd.DataFrame([{"model": "unet", "params_M": 1.5, "gflops": 0.4}, {"model": "gls", "params_M": 0.5, "gflops": 0.1}])
    if new:
        kp = pd.DataFrame([{"model": "gls", "fold": i % 2, "seed": seed, "image": image, "k": 0, "error": 2.0 + seed + i,
                            "window_h": 8, "window_w": 8} for i, image in enumerate(IMAGES)])
        kp.to_csv(folder / "kp_errors.csv", index=False)
    else:
        cases, folds = cases.drop(columns="seed"), folds.drop(columns="seed")
    overrides = ["--epochs", "1"] + ([] if new else ["--seed", str(seed)])
    (folder / "summary.json").write_text(json.dumps({"evaluated": {"overrides": overrides, "presets": ["cpu"], "folds": 2}}))
    cases.to_csv(folder / "cases.csv", index=False)
    folds.to_csv(folder / "folds.csv", index=False)
    table.to_csv(folder / "table.csv", index=False)


def test_two_runs_are_pooled_over_their_seeds(tmp_path, capsys):
    write_run(tmp_path / "run0", 0, new=True)
    write_run(tmp_path / "run1", 1, new=False)
    out = tmp_path / "pooled"
    table = pool_runs([tmp_path / "run0", tmp_path / "run1"], out, reference="unet").set_index("model")
    cases = pd.read_csv(out / "cases.csv")
    assert list(cases.columns[:5]) == ["model", "fold", "seed", "image", "group"]
    assert sorted(set(zip(cases["model"], cases["seed"]))) == [("gls", 0), ("gls", 1), ("unet", 0), ("unet", 1)]
    # means over both seeds; training minutes summed over the folds, then averaged over the seeds
    assert table.loc["gls", "dice"] == pytest.approx(np.mean(DICE["gls", 0] + DICE["gls", 1]))
    assert table.loc["unet", "train_min"] == pytest.approx(((1 + 1) + (2 + 2)) / 2)
    assert table.loc["gls", "train_min"] == pytest.approx(((2 + 2) + (3 + 3)) / 2)
    assert table["n_cases"].tolist() == [4, 4] and table["n_seeds"].tolist() == [2, 2]
    gls_seed_means = [np.mean(DICE["gls", 0]), np.mean(DICE["gls", 1])]
    assert table.loc["gls", ["dice_seed_min", "dice_seed_max"]].tolist() == pytest.approx(sorted(gls_seed_means))
    assert table.loc["gls", "dice_seed_std"] == pytest.approx(np.std(gls_seed_means, ddof=1))
    assert table.loc["unet", "params_M"] == 1.5
    # one run has no kp_errors.csv (written before it existed): the keypoint columns stay empty
    assert np.isnan(table.loc["gls", "kp_err_mean"]) and not (out / "kp_errors.csv").exists()
    # the run without a seed column pooled as seed 1 (its --seed override)
    assert pd.read_csv(out / "seeds.csv")[["model", "seed", "train_min"]].values.tolist() == [
        ["unet", 0, 2.0], ["unet", 1, 4.0], ["gls", 0, 4.0], ["gls", 1, 6.0]]
    paired = pd.read_csv(out / "paired.csv").set_index("metric")
    model = np.array([DICE["gls", 0], DICE["gls", 1]]).T
    reference = np.array([DICE["unet", 0], DICE["unet", 1]]).T
    expected = hierarchical_paired_difference(model, reference, GROUPS, n_boot=10000)
    assert paired.loc["dice", list(expected)].to_dict() == pytest.approx(expected, abs=1e-12)
    assert "hierarchical bootstrap" in (out / "paired.md").read_text()
    assert "pooled from 2 compare runs" in (out / "table.md").read_text()
    assert json.loads((out / "summary.json").read_text())["models"]["gls"]["n_seeds"] == 2
    assert "<table" in (out / "report.html").read_text()
    assert len(pd.read_csv(out / "folds.csv")) == 8
    # the command line
    assert cli_main(["compare-pool", str(tmp_path / "run0"), str(tmp_path / "run1"), "--out", str(tmp_path / "cli")]) == 0
    assert "dice_seed_std" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "cli" / "paired.csv").equals(pd.read_csv(out / "paired.csv"))


def test_keypoint_errors_pooled_when_every_run_has_them(tmp_path):
    write_run(tmp_path / "run0", 0, new=True)
    write_run(tmp_path / "run1", 1, new=True)
    table = pool_runs([tmp_path / "run0", tmp_path / "run1"], tmp_path / "out", n_boot=200).set_index("model")
    assert table.loc["gls", "kp_err_mean"] == pytest.approx(np.mean([2, 3, 4, 5, 3, 4, 5, 6]))
    assert table.loc["gls", "kp_err_max"] == 6.0 and np.isnan(table.loc["unet", "kp_err_mean"])
    kp = pd.read_csv(tmp_path / "out" / "kp_errors.csv")
    assert len(kp) == 8 and sorted(set(kp["seed"])) == [0, 1]


def test_runs_that_differ_in_more_than_the_seed_are_refused(tmp_path):
    write_run(tmp_path / "run0", 0, new=True)
    write_run(tmp_path / "same", 0, new=True)
    with pytest.raises(ValueError, match="both hold unet trained with seed 0"):
        pool_runs([tmp_path / "run0", tmp_path / "same"], tmp_path / "out")
    write_run(tmp_path / "other", 1, new=True)
    cases = pd.read_csv(tmp_path / "other" / "cases.csv")
    cases.loc[cases["image"] == "c1", "fold"] = 0
    cases.to_csv(tmp_path / "other" / "cases.csv", index=False)
    with pytest.raises(ValueError, match="differ in unet's cases"):
        pool_runs([tmp_path / "run0", tmp_path / "other"], tmp_path / "out")
    write_run(tmp_path / "longer", 1, new=True)
    summary = tmp_path / "longer" / "summary.json"
    summary.write_text(json.dumps({"evaluated": {"overrides": ["--epochs", "2"], "presets": ["cpu"]}}))
    with pytest.raises(ValueError, match="differ in their overrides"):
        pool_runs([tmp_path / "run0", tmp_path / "longer"], tmp_path / "out")
    with pytest.raises(ValueError, match="one of the runs"):
        pool_runs([tmp_path / "run0"], tmp_path / "run0")
    assert cli_main(["compare-pool", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
