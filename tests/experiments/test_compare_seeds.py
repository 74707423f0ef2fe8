"""``glsmonai compare --seeds 2`` end to end: one cheap model (GS, one epoch) trained with two seeds."""

from __future__ import annotations

import json

import pandas as pd

from glsmonai.cli import main as cli_main


def test_compare_with_two_training_seeds(tiny_iris, tmp_path):
    args = ["compare", "--datalist", str(tiny_iris / "datalist.json"), "--dataset_dir", str(tiny_iris), "--out",
            str(tmp_path), "--models", "gs", "--reference", "gs", "--folds", "0", "--seeds", "2", "--epochs", "1",
            "--variants", "tta", "--panels", "1", "--set", "seed=4", "image_size=[48,48]", "crop_size=[16,16]",
            "channels=[4,8,8,16,16]", "num_workers=0", "batch_size=3", "sigma=2.0"]
    assert cli_main(args) == 0
    for seed in (4, 5):  # the base seed from --set seed=4, each seed's run in its folder
        record = json.loads((tmp_path / "gs" / f"seed{seed}" / "train_time.json").read_text())
        assert record["overrides"][-2:] == ["--seed", str(seed)]
    cases = pd.read_csv(tmp_path / "cases.csv")
    assert list(cases.columns[:5]) == ["model", "fold", "seed", "image", "group"]
    assert cases.groupby(["model", "seed"]).size().to_dict() == {("gs", 4): 2, ("gs", 5): 2, ("gs+tta", 4): 2,
                                                                 ("gs+tta", 5): 2}
    table = pd.read_csv(tmp_path / "table.csv").set_index("model")
    assert table.loc["gs", "n_cases"] == 2 and table.loc["gs", "n_seeds"] == 2
    seeds = pd.read_csv(tmp_path / "seeds.csv")
    gs = seeds[seeds["model"] == "gs"]
    assert table.loc["gs", "train_min"] == gs["train_min"].mean()
    assert table.loc["gs", "dice_seed_min"] == gs["dice"].min() and table.loc["gs", "dice_seed_max"] == gs["dice"].max()
    levers = pd.read_csv(tmp_path / "levers.csv")
    assert (levers["model"] == "gs+tta").all() and levers[["n_seeds", "n_seeds_ref"]].eq(2).all().all()
    assert "hierarchical bootstrap" in (tmp_path / "levers.md").read_text()
    assert "Training seeds per model: 2" in (tmp_path / "table.md").read_text()
    # a rerun trains nothing again
    logs = {p: p.stat().st_mtime_ns for p in tmp_path.glob("gs/seed*/train.log")}
    assert len(logs) == 2 and cli_main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("gs/seed*/train.log")} == logs
