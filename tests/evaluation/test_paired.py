"""``paired_table`` on hand-made ``cases.csv`` tables: one seed per model is the cluster bootstrap, several seeds
the hierarchical bootstrap, cases missing a score for any seed left out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glsmonai.evaluation.paired import paired_markdown, paired_table, seed_matrix
from glsmonai.evaluation.statistics import hierarchical_paired_difference, paired_difference

IMAGES = ["a1", "a2", "b1", "c1", "d1"]
GROUPS = ["a", "a", "b", "c", "d"]


def cases_of(scores: dict[tuple[str, int], list[float]]) -> pd.DataFrame:
    """``cases.csv`` rows: ``{(model, seed): one dice per image}``."""
    return pd.DataFrame([{"model": model, "fold": i % 2, "seed": seed, "image": image, "group": group, "dice": d}
                         for (model, seed), dice in scores.items()
                         for i, (image, group, d) in enumerate(zip(IMAGES, GROUPS, dice))])


def test_one_seed_gives_todays_cluster_bootstrap():
    unet, gls = [0.80, 0.70, 0.90, 0.60, 0.75], [0.85, 0.74, 0.88, 0.70, 0.80]
    cases = cases_of({("unet", 0): unet, ("gls", 0): gls})
    expected = paired_difference(np.subtract(gls, unet), GROUPS, n_boot=2000, seed=4)
    row = paired_table(cases, "unet", metrics=["dice"], n_boot=2000, seed=4).iloc[0].to_dict()
    assert {k: row[k] for k in expected} == expected and (row["n_seeds"], row["n_seeds_ref"]) == (1, 1)
    # a table written before seeds were recorded pairs the same way
    old = paired_table(cases.drop(columns="seed"), "unet", metrics=["dice"], n_boot=2000, seed=4)
    assert old.iloc[0].to_dict() == row


def test_several_seeds_resample_seeds_within_groups():
    scores = {("unet", 0): [0.80, 0.70, 0.90, 0.60, 0.75], ("unet", 1): [0.78, 0.72, 0.91, 0.58, np.nan],
              ("gls", 3): [0.85, 0.74, 0.88, 0.70, 0.80], ("gls", 4): [0.80, 0.79, 0.90, 0.64, 0.81],
              ("gls", 5): [0.86, 0.70, 0.85, 0.72, 0.79]}
    cases = cases_of(scores).sample(frac=1.0, random_state=0)  # row order does not matter
    wide = seed_matrix(cases, "gls", "dice")
    assert list(wide.columns) == [3, 4, 5] and wide.shape == (5, 3)
    row = paired_table(cases, "unet", metrics=["dice"], n_boot=3000).iloc[0]
    # d1 lacks unet's seed-1 score: left out; the other four cases, with every seed
    keep = [0, 1, 2, 3]
    model = np.array([scores["gls", s] for s in (3, 4, 5)]).T[keep]
    reference = np.array([scores["unet", s] for s in (0, 1)]).T[keep]
    expected = hierarchical_paired_difference(model, reference, GROUPS[:4], n_boot=3000)
    assert row[list(expected)].to_dict() == pytest.approx(expected, abs=1e-12)
    assert (row["n"], row["n_groups"], row["n_seeds"], row["n_seeds_ref"]) == (4, 3, 3, 2)
    text = paired_markdown(paired_table(cases, "unet", metrics=["dice"], n_boot=3000), 3000, 0, 0.95)
    assert "hierarchical bootstrap" in text and "| seeds |" in text and "| 4 | 3 | 3 / 2 |" in text


def test_a_case_twice_for_one_seed_is_refused():
    cases = cases_of({("unet", 0): [0.8] * 5, ("gls", 0): [0.9] * 5})
    with pytest.raises(ValueError, match="'gls': case a1 .*appears twice"):
        paired_table(pd.concat([cases, cases[cases["model"] == "gls"].head(1)]), "unet")


def test_a_variant_is_paired_seed_with_seed_with_its_own_model():
    scores = {("gls", 0): [0.80, 0.70, 0.90, 0.60, 0.75], ("gls", 1): [0.60, 0.50, 0.70, 0.40, 0.55]}
    scores |= {("gls+tta", s): [d + 0.02 for d in dice] for (_, s), dice in list(scores.items())}
    cases = cases_of(scores)
    lever = paired_table(cases, "gls", metrics=["dice"], paired_seeds=True).iloc[0]
    assert (lever["mean"], lever["lo"], lever["hi"]) == pytest.approx((0.02, 0.02, 0.02), abs=1e-12)
    apart = paired_table(cases, "gls", metrics=["dice"]).iloc[0]  # as if the networks were other trainings
    assert apart["lo"] < 0.0 < 0.04 < apart["hi"]
    assert "the same for both" in paired_markdown(pd.DataFrame([lever]), 10000, 0, 0.95, paired_seeds=True)
    with pytest.raises(ValueError, match="same seeds"):
        paired_table(cases[~((cases["model"] == "gls+tta") & (cases["seed"] == 1))], "gls", metrics=["dice"],
                     paired_seeds=True)
