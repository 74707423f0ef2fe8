"""``glsmonai corrections`` (issue 20, part 3): the review loop simulated end to end, on a tiny model and phantoms.

The numbers it measures on real-size data are in docs/review.md; here the loop is checked to do what it says:
the pool and the scored scans share no group, the corrected scans carry their reference keypoints as the review
app would write them, the control arm accepts the same scans uncorrected, every arm is fine-tuned from the model
folder and scored on the scans no one corrected, and a rerun trains nothing again.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from glsmonai.cli import main
from glsmonai.data.prediction_folder import KeypointTable
from glsmonai.review.corrections import deal_pool
from glsmonai.review.folder import ReviewTable
from tests.review.conftest import folder_state


def test_the_pool_and_the_scored_scans_share_no_group():
    cases = [{"image": f"s{i}", "group": f"p{i // 2}"} for i in range(10)]  # 5 patients, 2 frames each
    pool, scored = deal_pool(cases, 0.4, seed=1)
    assert len({c["group"] for c in pool}) == 2 and len({c["group"] for c in scored}) == 3
    assert not {c["group"] for c in pool} & {c["group"] for c in scored} and len(pool) + len(scored) == 10
    assert deal_pool(cases, 0.4, seed=1) == (pool, scored)  # the deal is the seed's
    with pytest.raises(ValueError, match="two groups at least"):
        deal_pool(cases[:2], 0.5, seed=0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        deal_pool(cases, 1.0, seed=0)


def test_corrections_fine_tune_and_score_the_uncorrected_scans(predicted, tiny_iris, tmp_path, caplog):
    model = predicted[0]
    out = tmp_path / "gain"
    common = ["corrections", "-m", str(model), "--datalist", str(tiny_iris / "datalist.json"), "--dataset_dir",
              str(tiny_iris), "--split", "training", "--set", "finetune_epochs=1", "num_workers=0", "batch_size=1"]
    args = [*common, "--counts", "2", "--control", "--out", str(out)]
    assert main(args) == 0
    pool = json.loads((out / "pool.json").read_text())["testing"]
    scored = json.loads((out / "scored.json").read_text())["testing"]
    assert len(pool) == len(scored) == 3 and not {e["group"] for e in pool} & {e["group"] for e in scored}

    # the corrected arm: two pool scans given their reference keypoints, as the app records a correction
    review = out / "seed0" / "corrected2" / "review"
    states = {name: row["state"] for name, row in ReviewTable(review / "review.csv").latest().items()}
    assert sorted(states.values()) == ["corrected", "corrected"]
    reference = {e["image"].split("/")[-1]: e["keypoints"] for e in pool}
    for row in KeypointTable(review / "corrected" / "keypoints.csv").rows():
        assert row[0] in states and row[7] == "user"
        assert np.allclose([float(row[2]), float(row[3])], reference[row[0]][int(row[1])], atol=1e-3)
    # the control: the same two scans accepted as predicted
    control = ReviewTable(out / "seed0" / "accepted2" / "review" / "review.csv").latest()
    assert {name: row["state"] for name, row in control.items()} == dict.fromkeys(states, "accepted")
    for arm in ("corrected2", "accepted2"):
        datalist = json.loads((out / "seed0" / arm / "datalist.json").read_text())
        assert len(datalist["training"]) + len(datalist["validation"]) == 2
        assert (out / "seed0" / arm / "finetune" / "models" / "stage3_best.pt").is_file()

    table = pd.read_csv(out / "table.csv").set_index("model")
    assert list(table.index) == ["N=0", "corrected N=2", "accepted N=2"]
    assert (table["n_cases"] == 3).all() and table.loc["corrected N=2", "finetune_min"] > 0
    cases = pd.read_csv(out / "cases.csv")
    assert set(cases["image"]) == {e["image"].split("/")[-1] for e in scored}  # only scans no one corrected
    paired = pd.read_csv(out / "paired.csv")
    pairs = set(zip(paired["model"], paired["reference"]))
    assert pairs == {("corrected N=2", "N=0"), ("accepted N=2", "N=0"), ("corrected N=2", "accepted N=2"),
                     ("corrected", "as predicted")}
    assert "what the corrections add" in (out / "paired.md").read_text()
    # the two corrected pool scans themselves, as the model predicted them and as corrected
    direct = pd.read_csv(out / "corrected_scans.csv")
    assert direct.groupby("model")["image"].apply(sorted).to_dict() == {"as predicted": sorted(states),
                                                                        "corrected": sorted(states)}

    # a rerun reuses the fine-tuned models and leaves the model's own predictions as they were
    logs = {p: p.stat().st_mtime_ns for p in out.glob("seed0/*/finetune/train.log")}
    predictions = folder_state(out / "seed0" / "pool")
    assert len(logs) == 2 and main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("seed0/*/finetune/train.log")} == logs
    assert folder_state(out / "seed0" / "pool") == predictions

    caplog.clear()
    assert main([*common, "--counts", "4", "--out", str(tmp_path / "too_many")]) == 2
    assert "between 1 and the pool's 3 scans" in caplog.text


def test_a_simulated_correction_without_datalist_keypoints_takes_the_rule_on_the_label_map(tmp_path):
    # CAMUS labels: 1 LV, 2 myocardium, 3 atrium. The rule reads the map as training's Keypointsd does: on a
    # binarised map it would take the whole heart for the LV and put the annulus below the atrium.
    from glsmonai.data.io import write_image
    from glsmonai.keypoints import lv_apex_base
    from glsmonai.review.corrections import _reference_keypoints
    from tests.test_keypoints import heart

    label = heart()
    write_image(tmp_path / "label.nii.gz", label)
    points = _reference_keypoints({"image": "scan.nii.gz", "label": str(tmp_path / "label.nii.gz")}, "lv_apex_base")
    assert np.allclose(points, lv_apex_base(label))
    assert not np.allclose(points, lv_apex_base((label > 0).astype(np.uint8)), atol=2)
    given = {"image": "scan.nii.gz", "label": "unused", "keypoints": [[1, 2], [3, 4], [5, 6]]}
    assert _reference_keypoints(given, "lv_apex_base").tolist() == [[1, 2], [3, 4], [5, 6]]
