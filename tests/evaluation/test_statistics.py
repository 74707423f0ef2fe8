"""Cluster-bootstrap and hierarchical (patients, then training seeds) paired differences on literal numbers."""

from __future__ import annotations

import numpy as np
import pytest

from glsmonai.evaluation.statistics import hierarchical_paired_difference, paired_difference


def test_constant_difference_has_a_point_interval():
    result = paired_difference([0.25] * 6, ["a", "a", "b", "c", "c", "c"], n_boot=500)
    assert result == {"mean": 0.25, "lo": 0.25, "hi": 0.25, "n": 6, "n_groups": 3}


def test_two_cases_interval_spans_both_values():
    # two groups with differences 0 and 1: resampled means are 0 (1/4), 0.5 (1/2) and 1 (1/4), so the
    # 2.5 % and 97.5 % quantiles of 10000 resamples are 0 and 1
    result = paired_difference([0.0, 1.0], ["p1", "p2"])
    assert result == {"mean": 0.5, "lo": 0.0, "hi": 1.0, "n": 2, "n_groups": 2}


def test_groups_are_resampled_whole():
    diff = [0.0, 0.0, 0.0, 1.0]
    # as four independent cases: P(mean >= 0.75) = 4 * 0.25**3 * 0.75 + 0.25**4 = 5.1 % and
    # P(mean = 1) = 0.4 %, so the 97.5 % quantile is 0.75
    independent = paired_difference(diff, [0, 1, 2, 3])
    assert independent["lo"] == 0.0 and independent["hi"] == 0.75 and independent["n_groups"] == 4
    # three of them one patient: two groups, resampled means 0 (1/4), 0.25 (1/2) and 1 (1/4)
    clustered = paired_difference(diff, ["a", "a", "a", "b"])
    assert clustered == {"mean": 0.25, "lo": 0.0, "hi": 1.0, "n": 4, "n_groups": 2}


def test_one_group_per_case_is_the_ordinary_bootstrap():
    diff = np.array([0.1, -0.2, 0.3, 0.05, 0.0, 0.12, -0.07])
    draws = np.random.default_rng(7).integers(0, diff.size, size=(2000, diff.size))
    lo, hi = np.quantile(diff[draws].mean(axis=1), [0.05, 0.95])
    result = paired_difference(diff, np.arange(diff.size), n_boot=2000, seed=7, level=0.9)
    assert result["mean"] == pytest.approx(diff.mean())
    assert result["lo"] == pytest.approx(lo, abs=1e-12) and result["hi"] == pytest.approx(hi, abs=1e-12)
    assert result["lo"] < result["mean"] < result["hi"]


def test_same_seed_same_interval_and_labels_of_any_kind():
    diff = [0.02, -0.01, 0.04, 0.0, 0.03, 0.01]
    a = paired_difference(diff, ["p1", "p1", "p2", "p3", "p3", "p4"], n_boot=1000, seed=3)
    b = paired_difference(diff, [1, 1, 2, 3, 3, 4], n_boot=1000, seed=3)
    assert a == b and a["n_groups"] == 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"diff": [], "groups": []}, "no differences"),
        ({"diff": [0.1, 0.2], "groups": ["a"]}, "2 differences but 1 group"),
        ({"diff": [0.1, np.nan], "groups": ["a", "b"]}, "finite"),
        ({"diff": [0.1], "groups": ["a"], "n_boot": 0}, "n_boot"),
        ({"diff": [0.1], "groups": ["a"], "level": 1.0}, "level"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        paired_difference(**kwargs)


# --- several training seeds: the hierarchical bootstrap ------------------------------------------------

#: six cases of five patients (p1 has two frames), three training seeds per model
GROUPS = ["p1", "p1", "p2", "p3", "p4", "p5"]
REFERENCE = np.array([[0.70, 0.72, 0.68], [0.60, 0.61, 0.59], [0.80, 0.80, 0.80],
                      [0.75, 0.70, 0.80], [0.50, 0.55, 0.45], [0.90, 0.90, 0.90]])
MODEL_MEANS = np.array([0.78, 0.66, 0.85, 0.80, 0.58, 0.88])
#: per-seed deviations from those means, each row summing to 0: the seeds disagree, the means stay
SPREAD = np.array([[-0.06, 0.0, 0.06], [0.04, -0.08, 0.04], [0.10, -0.05, -0.05],
                   [-0.02, 0.04, -0.02], [0.09, -0.09, 0.0], [0.0, 0.03, -0.03]])


def test_one_seed_per_model_is_the_cluster_bootstrap_draw_for_draw():
    model = np.array([[0.8], [0.7], [0.9], [0.65], [0.72], [0.81]])
    reference = np.array([[0.75], [0.72], [0.85], [0.6], [0.7], [0.8]])
    for n_boot, seed in ((500, 0), (3000, 11)):
        plain = paired_difference(model[:, 0] - reference[:, 0], GROUPS, n_boot=n_boot, seed=seed)
        assert hierarchical_paired_difference(model, reference, GROUPS, n_boot=n_boot, seed=seed) == {
            **plain, "n_seeds": 1, "n_seeds_ref": 1}


def test_seeds_that_disagree_widen_the_interval():
    agree = np.repeat(MODEL_MEANS[:, None], 3, axis=1)
    disagree = agree + SPREAD
    # the patients alone: each model's mean over its seeds, then the cluster bootstrap
    patients = paired_difference(MODEL_MEANS - REFERENCE.mean(axis=1), GROUPS, n_boot=4000)
    steady = hierarchical_paired_difference(agree, REFERENCE, GROUPS, n_boot=4000)
    noisy = hierarchical_paired_difference(disagree, REFERENCE, GROUPS, n_boot=4000)
    assert patients["mean"] == steady["mean"] == pytest.approx(noisy["mean"]) == pytest.approx(0.05)
    assert (patients["lo"], patients["hi"]) == pytest.approx((0.014, 0.07), abs=1e-12)
    # the reference's seeds disagree a little: wider than the patients alone
    assert (steady["lo"], steady["hi"]) == pytest.approx((0.014, 0.0747619047619048), abs=1e-12)
    # the model's seeds disagree too (same means): wider still
    assert (noisy["lo"], noisy["hi"]) == pytest.approx((0.008, 0.0872250000000001), abs=1e-12)
    assert noisy["hi"] - noisy["lo"] > steady["hi"] - steady["lo"] > patients["hi"] - patients["lo"]
    assert (noisy["n"], noisy["n_groups"], noisy["n_seeds"], noisy["n_seeds_ref"]) == (6, 5, 3, 3)


def test_the_two_models_seeds_are_drawn_independently():
    # one patient, one case: only the seeds vary. The model's two seeds score 0 and 1: the mean of two draws
    # is 0 (1/4), 0.5 (1/2) or 1 (1/4), so the 95 % interval is [0, 1]
    one = hierarchical_paired_difference([[0.0, 1.0]], [[0.0]], ["a"])
    assert one == {"mean": 0.5, "lo": 0.0, "hi": 1.0, "n": 1, "n_groups": 1, "n_seeds": 2, "n_seeds_ref": 1}
    # the reference's seeds count as well
    other = hierarchical_paired_difference([[0.0, 0.0]], [[0.0, 1.0]], ["a"])
    assert (other["mean"], other["lo"], other["hi"]) == (-0.5, -1.0, 0.0)
    # both score 0 and 1 by seed: pairing seed s with seed s would give 0 every time; drawn independently the
    # difference is -1 with probability 1/16 (both of the model's draws 0, both of the reference's 1), so [-1, 1]
    both = hierarchical_paired_difference([[0.0, 1.0]], [[0.0, 1.0]], ["a"])
    assert (both["mean"], both["lo"], both["hi"]) == (0.0, -1.0, 1.0)


def test_hierarchical_bad_input():
    with pytest.raises(ValueError, match="shapes"):
        hierarchical_paired_difference([0.1, 0.2], [[0.1], [0.2]], ["a", "b"])
    with pytest.raises(ValueError, match="finite"):
        hierarchical_paired_difference([[0.1, np.nan]], [[0.1, 0.2]], ["a"])
    with pytest.raises(ValueError, match="2 differences but 1 group"):
        hierarchical_paired_difference([[0.1], [0.2]], [[0.1], [0.2]], ["a"])


def test_paired_seeds_for_predictions_of_the_same_networks():
    # a variant and its model, both from the networks of seeds 0 and 1: seed s goes with seed s. Here the variant
    # adds exactly 0.1 to each network's score, so the interval is that 0.1, whatever the networks' spread
    model, variant = [[0.0, 1.0]], [[0.1, 1.1]]
    lever = hierarchical_paired_difference(variant, model, ["a"], paired_seeds=True)
    assert (lever["mean"], lever["lo"], lever["hi"]) == pytest.approx((0.1, 0.1, 0.1), abs=1e-12)
    assert hierarchical_paired_difference(variant, model, ["a"])["lo"] == pytest.approx(-0.9)  # drawn apart
    # literal numbers on the six cases: the per-seed differences resampled seed by seed within the patients
    paired = hierarchical_paired_difference(MODEL_MEANS[:, None] + SPREAD, REFERENCE, GROUPS, n_boot=4000,
                                            paired_seeds=True)
    assert (paired["lo"], paired["hi"]) == pytest.approx((0.005325, 0.0914345238095239), abs=1e-12)
    # one seed each: the cluster bootstrap again
    better = REFERENCE[:, :1] + [[0.05], [0.0], [0.1], [0.02], [-0.03], [0.04]]
    one = hierarchical_paired_difference(better, REFERENCE[:, :1], GROUPS, paired_seeds=True)
    assert one == {**paired_difference(better[:, 0] - REFERENCE[:, 0], GROUPS), "n_seeds": 1, "n_seeds_ref": 1}
    with pytest.raises(ValueError, match="same seeds"):
        hierarchical_paired_difference([[0.1, 0.2]], [[0.1]], ["a"], paired_seeds=True)
