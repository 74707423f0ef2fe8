"""Cluster-bootstrap paired differences on literal numbers."""

from __future__ import annotations

import numpy as np
import pytest

from glsmonai.evaluation.statistics import paired_difference


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
