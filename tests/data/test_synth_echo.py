"""Tests of the synthetic apical echocardiography generator (glsmonai.data.synth.echo)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from glsmonai.data.synth.common import SynthCase
from glsmonai.data.synth.echo import make_echo_case

SIZE = (256, 256)
SEEDS = range(20)
WINDOW = 7  # half-width of the 15 x 15 contrast window
EIGHT = np.ones((3, 3), dtype=bool)


def _case(seed: int, size: tuple[int, int] = SIZE) -> SynthCase:
    return make_echo_case(np.random.default_rng(seed), size)


@pytest.fixture(scope="module")
def cases() -> list[SynthCase]:
    return [_case(seed) for seed in SEEDS]


def _long_axis(lv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LV pixels ``[row, col]``, the unit principal axis of the LV and the unit axis perpendicular to it."""
    pix = np.argwhere(lv).astype(np.float64)
    centred = pix - pix.mean(axis=0)
    _, vecs = np.linalg.eigh(centred.T @ centred)
    axis = vecs[:, -1]
    return pix, axis, np.array([-axis[1], axis[0]])


def rule_keypoints(label: np.ndarray) -> np.ndarray:
    """The project's CAMUS mask rule: apex, left annulus point, right annulus point (``[row, col]``).

    Annulus points: the LV pixels 8-touching an LA pixel, projected on the axis perpendicular to the
    LV long axis (principal axis of the LV pixels); mean of those within 2 px of the minimum and of
    the maximum projection; the one with the smaller col is the left one. Apex: the LV pixel farthest
    from the midpoint of the two annulus points.
    """
    lv, la = label == 1, label == 3
    _, _, perp = _long_axis(lv)
    contact = np.argwhere(lv & ndimage.binary_dilation(la, structure=EIGHT)).astype(np.float64)
    assert len(contact) >= 2
    proj = contact @ perp
    ends = [contact[proj <= proj.min() + 2.0].mean(axis=0), contact[proj >= proj.max() - 2.0].mean(axis=0)]
    left, right = sorted(ends, key=lambda p: p[1])
    lv_pix = np.argwhere(lv).astype(np.float64)
    mid = 0.5 * (left + right)
    apex = lv_pix[int(np.argmax(np.linalg.norm(lv_pix - mid, axis=1)))]
    return np.stack([apex, left, right])


def mid_wall_points(label: np.ndarray) -> np.ndarray:
    """The two LV border pixels half-way along the long axis (one on each wall)."""
    pix, axis, perp = _long_axis(label == 1)
    along = pix @ axis
    middle = np.abs(along - 0.5 * (along.min() + along.max())) <= 1.0
    band, across = pix[middle], pix[middle] @ perp
    return np.stack([band[int(np.argmin(across))], band[int(np.argmax(across))]])


def _contrast(image: np.ndarray, label: np.ndarray, point: np.ndarray) -> float:
    """|mean LV - mean myocardium| in the 15 x 15 window around ``point``."""
    r, c = np.round(point).astype(int)
    win = (slice(max(r - WINDOW, 0), r + WINDOW + 1), slice(max(c - WINDOW, 0), c + WINDOW + 1))
    img, lab = image[win], label[win]
    assert (lab == 1).any() and (lab == 2).any()
    return float(abs(img[lab == 1].mean() - img[lab == 2].mean()))


def test_same_seed_same_case() -> None:
    a, b = _case(7), _case(7)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.label, b.label)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)


def test_different_seeds_differ() -> None:
    a, b = _case(1), _case(2)
    assert not np.array_equal(a.image, b.image)
    assert not np.array_equal(a.label, b.label)
    assert not np.array_equal(a.keypoints, b.keypoints)


def test_rejects_bad_size() -> None:
    with pytest.raises(ValueError):
        make_echo_case(np.random.default_rng(0), (16, 64))
    with pytest.raises(ValueError):
        make_echo_case(np.random.default_rng(0), (64,))  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [(64, 64), (256, 256), (300, 200)])
def test_shapes_dtypes_ranges(size: tuple[int, int]) -> None:
    for seed in range(3):
        case = _case(seed, size)
        assert case.image.shape == size and case.image.dtype == np.float32
        assert case.label.shape == size and case.label.dtype == np.uint8
        assert case.keypoints.shape == (3, 2) and case.keypoints.dtype == np.float64
        assert np.isfinite(case.image).all() and np.isfinite(case.keypoints).all()
        assert case.image.min() >= 0.0 and case.image.max() <= 1.0
        assert set(np.unique(case.label)) <= {0, 1, 2, 3}
        assert set(np.unique(case.label)) == {0, 1, 2, 3}
        assert case.image.std() > 0.02


@pytest.mark.parametrize("size", [(64, 64), (256, 256), (300, 200)])
def test_label_topology(size: tuple[int, int]) -> None:
    for seed in range(8):
        label = _case(seed, size).label
        lv, la = label == 1, label == 3
        assert ndimage.label(lv)[1] == 1, f"seed {seed}: LV not one component"
        assert ndimage.label(la)[1] == 1, f"seed {seed}: LA not one component"
        np.testing.assert_array_equal(ndimage.binary_fill_holes(lv), lv)
        # The myocardium and the LA surround the LV; the LA only touches it at the base.
        ring = ndimage.binary_dilation(lv, structure=EIGHT) & ~lv
        assert set(np.unique(label[ring])) <= {2, 3}, f"seed {seed}: LV touches background"
        pix, axis, _ = _long_axis(lv)
        along = pix @ axis
        touch = np.argwhere(ring & la).astype(np.float64) @ axis
        if axis @ (np.argwhere(la).mean(axis=0) - pix.mean(axis=0)) < 0:  # orient apex -> base
            along, touch = -along, -touch
        rel = (touch - along.min()) / (along.max() - along.min())
        assert rel.min() > 0.8, f"seed {seed}: LA contact away from the base"
        assert (label[ring] == 2).mean() > 0.6
        h, w = size
        rows = np.flatnonzero((label > 0).any(axis=1))
        cols = np.flatnonzero((label > 0).any(axis=0))
        assert rows[0] > 0 and rows[-1] < h - 1 and cols[0] > 0 and cols[-1] < w - 1


def test_lv_above_la(cases: list[SynthCase]) -> None:
    for case in cases:
        lv_row = np.argwhere(case.label == 1)[:, 0].mean()
        la_row = np.argwhere(case.label == 3)[:, 0].mean()
        assert lv_row < la_row


def test_keypoint_order_and_position(cases: list[SynthCase]) -> None:
    for case in cases:
        apex, left, right = case.keypoints
        assert apex[0] < left[0] and apex[0] < right[0]
        assert left[1] < right[1]
        lv_pix = np.argwhere(case.label == 1).astype(np.float64)
        for kp in case.keypoints:
            assert np.min(np.linalg.norm(lv_pix - kp, axis=1)) <= 1.5


@pytest.mark.parametrize("size", [(64, 64), (300, 200)])
def test_keypoints_on_lv_other_sizes(size: tuple[int, int]) -> None:
    for seed in range(4):
        case = _case(seed, size)
        assert case.keypoints[1, 1] < case.keypoints[2, 1]
        lv_pix = np.argwhere(case.label == 1).astype(np.float64)
        for kp in case.keypoints:
            assert np.min(np.linalg.norm(lv_pix - kp, axis=1)) <= 1.5


def test_keypoints_follow_mask_rule(cases: list[SynthCase]) -> None:
    errors = np.array([np.linalg.norm(c.keypoints - rule_keypoints(c.label), axis=1) for c in cases])
    assert errors.max() <= 3.0, errors.max(axis=0)


def test_black_outside_sector(cases: list[SynthCase]) -> None:
    h, w = SIZE
    ch, cw = int(0.12 * h), int(0.12 * w)
    for case in cases:
        assert case.image[:ch, :cw].mean() < 0.05
        assert case.image[:ch, -cw:].mean() < 0.05
        assert case.image[0, 0] == 0.0 and case.image[0, -1] == 0.0


def test_chambers_dark_myocardium_bright(cases: list[SynthCase]) -> None:
    for case in cases:
        img, lab = case.image, case.label
        assert img[lab == 2].mean() > 2.0 * img[lab == 1].mean()
        assert img[lab == 2].mean() > 2.0 * img[lab == 3].mean()


def test_apex_is_ambiguous(cases: list[SynthCase]) -> None:
    apex, mid = [], []
    for case in cases:
        apex.append(_contrast(case.image, case.label, case.keypoints[0]))
        mid.extend(_contrast(case.image, case.label, p) for p in mid_wall_points(case.label))
    assert np.mean(apex) < np.mean(mid), (np.mean(apex), np.mean(mid))
