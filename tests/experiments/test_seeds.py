"""Training seeds of ``compare --seeds``, the per-model table with the seeds' spread, and the key-region window."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from glsmonai.experiments.compare import key_window
from glsmonai.experiments.rounds import DatalistFile, Round
from glsmonai.experiments.tables import model_table, seeds_table
from glsmonai.experiments.training import training_seeds


def test_one_seed_keeps_the_overrides_and_folders_of_a_run_without_seeds(tmp_path):
    overrides = ["--epochs", "1", "--seed", "7"]
    (one,) = training_seeds(1, overrides)
    assert (one.value, one.folder, one.overrides) == (7, "", tuple(overrides))
    # no --seed given: the bundle's (the last config file that sets one), else 0
    files = [tmp_path / "train.json", tmp_path / "cpu.json"]
    files[0].write_text(json.dumps({"seed": 3}))
    files[1].write_text(json.dumps({"lr": 0.1}))
    assert training_seeds(1, ["--epochs", "1"], files)[0].value == 3
    assert training_seeds(1, [])[0].value == 0


def test_several_seeds_count_up_from_the_base_each_in_its_folder():
    seeds = training_seeds(3, ["--seed", "5", "--epochs", "1"])
    assert [(s.value, s.folder) for s in seeds] == [(5, "seed5"), (6, "seed6"), (7, "seed7")]
    assert seeds[1].overrides == ("--epochs", "1", "--seed", "6")
    assert [s.value for s in training_seeds(2, [])] == [0, 1]
    with pytest.raises(ValueError, match="at least 1"):
        training_seeds(0, [])
    with pytest.raises(ValueError, match="integer"):
        training_seeds(2, ["--seed", "x"])


def test_round_folders(tmp_path):
    datalist = DatalistFile(tmp_path / "d.json", tmp_path, {}, "")
    assert Round(1, datalist, "testing", "fold1").run(tmp_path, "gls", "seed2") == tmp_path / "gls" / "fold1" / "seed2"
    assert Round(0, datalist, "testing", "").run(tmp_path, "gls") == tmp_path / "gls"


def _cases() -> pd.DataFrame:
    """Two folds of two cases, unet with seeds 0 and 1 (mean Dice 0.8 and 0.6), gls with seed 0 only."""
    rows = []
    for model, seed, dice in (("unet", 0, [0.9, 0.7, 0.8, 0.8]), ("unet", 1, [0.5, 0.7, 0.6, 0.6]),
                              ("gls", 0, [0.9, 0.9, 0.8, 0.8])):
        for i, d in enumerate(dice):
            rows.append({"model": model, "fold": i // 2, "seed": seed, "image": f"c{i}", "group": f"p{i}", "dice": d,
                         "iou": d / 2, "hd95": 10.0 * d})
    return pd.DataFrame(rows)


def _timings() -> pd.DataFrame:
    return pd.DataFrame([{"model": m, "fold": f, "seed": s, "train_min": t, "infer_s": 2.0}
                         for m, s, times in (("unet", 0, (1.0, 2.0)), ("unet", 1, (3.0, 4.0)), ("gls", 0, (5.0, 6.0)))
                         for f, t in enumerate(times)])


def test_table_means_over_seeds_training_minutes_per_seed_and_the_seeds_spread():
    table = model_table(_cases(), _timings(), None, {"unet": (2.0, 0.5)}).set_index("model")
    assert table.loc["unet", "dice"] == pytest.approx(0.7) and table.loc["gls", "dice"] == pytest.approx(0.85)
    # unet: (1 + 2) and (3 + 4) minutes per seed, 5 on average; gls one seed of 11
    assert table.loc["unet", "train_min"] == pytest.approx(5.0) and table.loc["gls", "train_min"] == pytest.approx(11.0)
    assert table["n_cases"].tolist() == [4, 4] and table["n_seeds"].tolist() == [2, 1]
    # seed means 0.8 and 0.6: std (ddof 1) 0.1414, range 0.6 .. 0.8
    assert table.loc["unet", ["dice_seed_std", "dice_seed_min", "dice_seed_max"]].tolist() == pytest.approx(
        [np.sqrt(0.02), 0.6, 0.8])
    assert np.isnan(table.loc["gls", "dice_seed_std"]) and table.loc["gls", "dice_seed_min"] == pytest.approx(0.85)
    assert table.loc["unet", "infer_img_s"] == pytest.approx(8 / 8.0) and table.loc["unet", "params_M"] == 2.0
    assert np.isnan(table.loc["gls", "kp_err_mean"]) and np.isnan(table.loc["gls", "params_M"])
    seeds = seeds_table(_cases(), _timings())
    assert seeds[["model", "seed"]].values.tolist() == [["unet", 0], ["unet", 1], ["gls", 0]]
    assert seeds["dice"].tolist() == pytest.approx([0.8, 0.6, 0.85]) and seeds["train_min"].tolist() == [3.0, 7.0, 11.0]


def test_one_seed_per_model_adds_no_seed_columns():
    cases = _cases()
    cases = cases[cases["seed"] == 0]
    table = model_table(cases, _timings()[lambda t: t["seed"] == 0], None, {})
    assert "n_seeds" not in table and table["train_min"].tolist() == [3.0, 11.0]


def test_key_window_is_the_models_crop_in_original_pixels():
    working = {"network": {"crop_size": [24, 24]}, "image_size": [64, 64]}
    assert key_window(working)((128, 128)) == (48, 48)  # the scan is twice the working size
    assert key_window({**working, "crop_window": [30.4, 40.6]})((128, 128)) == (30, 41)  # fixed original pixels


def test_some_folds_of_the_split_are_selected_in_fold_order(tmp_path):
    from glsmonai.experiments.rounds import select_rounds

    datalist = DatalistFile(tmp_path / "d.json", tmp_path, {}, "")
    rounds = [Round(k, datalist, "testing", f"fold{k}") for k in range(3)]
    assert select_rounds(rounds, None) == rounds
    assert [r.k for r in select_rounds(rounds, [2, 0])] == [0, 2]  # the folds of the full split, in fold order
    with pytest.raises(ValueError, match=r"--fold 3: the split has folds 0 .. 2 only"):
        select_rounds(rounds, [0, 3])
