"""Tests of the synthetic AS-OCT iris generator (glsmonai.data.synth.iris)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from glsmonai.data.synth.iris import SynthCase, make_iris_case

SIZE = (256, 288)
SEEDS = range(20)
WINDOW = 7  # half-width of the 15 x 15 contrast window


def _case(seed: int, size: tuple[int, int] = SIZE) -> SynthCase:
    return make_iris_case(np.random.default_rng(seed), size)


@pytest.fixture(scope="module")
def cases() -> list[SynthCase]:
    return [_case(seed) for seed in SEEDS]


def _two_components(label: np.ndarray) -> list[np.ndarray]:
    """Pixel ``[row, col]`` of the two largest components, left one (smaller centroid col) first."""
    lab, n = ndimage.label(label > 0)
    assert n >= 2
    sizes = np.bincount(lab.ravel())[1:]
    comps = [np.argwhere(lab == i + 1).astype(np.float64) for i in np.argsort(-sizes)[:2]]
    return sorted(comps, key=lambda c: c[:, 1].mean())


def _projection(comps: list[np.ndarray], i: int) -> tuple[np.ndarray, np.ndarray]:
    """Projection of component ``i`` on the unit axis from the other centroid to its own."""
    axis = comps[i].mean(axis=0) - comps[1 - i].mean(axis=0)
    axis /= np.linalg.norm(axis)
    return comps[i], comps[i] @ axis


def rule_roots(label: np.ndarray) -> np.ndarray:
    """The project's mask rule: mean of the pixels within 2 px of the maximum projection."""
    comps = _two_components(label)
    out = []
    for i in range(2):
        pix, proj = _projection(comps, i)
        out.append(pix[proj >= proj.max() - 2.0].mean(axis=0))
    return np.stack(out)


def rule_midpoints(label: np.ndarray) -> np.ndarray:
    """Middle of each segment: mean of the pixels projecting within 2 px of the mid projection."""
    comps = _two_components(label)
    out = []
    for i in range(2):
        pix, proj = _projection(comps, i)
        mid = 0.5 * (proj.min() + proj.max())
        out.append(pix[np.abs(proj - mid) <= 2.0].mean(axis=0))
    return np.stack(out)


def _contrast(image: np.ndarray, label: np.ndarray, point: np.ndarray) -> float:
    """|mean inside - mean outside| of the label in the 15 x 15 window around ``point``."""
    r, c = np.round(point).astype(int)
    win = (slice(max(r - WINDOW, 0), r + WINDOW + 1), slice(max(c - WINDOW, 0), c + WINDOW + 1))
    img, lab = image[win], label[win] > 0
    assert lab.any() and (~lab).any()
    return float(abs(img[lab].mean() - img[~lab].mean()))


def test_same_seed_same_case() -> None:
    a, b = _case(7), _case(7)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.label, b.label)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)


def test_different_seeds_differ() -> None:
    a, b = _case(1), _case(2)
    assert not np.array_equal(a.image, b.image)
    assert not np.array_equal(a.label, b.label)


@pytest.mark.parametrize("size", [(64, 64), (256, 288), (300, 200)])
def test_shapes_dtypes_ranges(size: tuple[int, int]) -> None:
    for seed in range(3):
        case = _case(seed, size)
        assert case.image.shape == size and case.image.dtype == np.float32
        assert case.label.shape == size and case.label.dtype == np.uint8
        assert case.keypoints.shape == (2, 2) and case.keypoints.dtype == np.float64
        assert np.isfinite(case.image).all()
        assert case.image.min() >= 0.0 and case.image.max() <= 1.0
        assert set(np.unique(case.label)) == {0, 1}
        assert case.image.std() > 0.02


@pytest.mark.parametrize("size", [(64, 64), (256, 288), (300, 200)])
def test_label_topology(size: tuple[int, int]) -> None:
    for seed in range(10):
        label = _case(seed, size).label > 0
        _, n = ndimage.label(label)
        assert n == 2, f"seed {seed}: {n} components"
        np.testing.assert_array_equal(ndimage.binary_fill_holes(label), label)
        h, w = size
        rows = np.flatnonzero(label.any(axis=1))
        cols = np.flatnonzero(label.any(axis=0))
        assert rows[0] >= 0.05 * h and rows[-1] <= h - 1 - 0.05 * h
        assert cols[0] >= 0.05 * w and cols[-1] <= w - 1 - 0.05 * w


def test_root_thickness(cases: list[SynthCase]) -> None:
    """At 288 px wide, each segment is at least ~10 px thick near its root."""
    for case in cases:
        for i, kp in enumerate(case.keypoints):
            col = int(round(kp[1])) + (12 if i == 0 else -12)  # a little inwards of the tip
            assert case.label[:, col].sum() >= 9


@pytest.mark.parametrize("size", [(64, 64), (256, 288), (300, 200)])
def test_keypoints_on_label_left_first(size: tuple[int, int]) -> None:
    for seed in range(5):
        case = _case(seed, size)
        assert case.keypoints[0, 1] < case.keypoints[1, 1]
        pix = np.argwhere(case.label > 0).astype(np.float64)
        for kp in case.keypoints:
            assert np.min(np.linalg.norm(pix - kp, axis=1)) <= 1.5


def test_keypoints_follow_mask_rule(cases: list[SynthCase]) -> None:
    errors = np.array([np.linalg.norm(c.keypoints - rule_roots(c.label), axis=1) for c in cases])
    assert errors.max() <= 3.0, errors.max()


def test_keypoints_are_peripheral(cases: list[SynthCase]) -> None:
    for case in cases:
        comps = _two_components(case.label)
        assert case.keypoints[0, 1] <= comps[0][:, 1].min() + 3.0  # left root: left end of left iris
        assert case.keypoints[1, 1] >= comps[1][:, 1].max() - 3.0


def test_roots_are_low_contrast(cases: list[SynthCase]) -> None:
    root, mid = [], []
    for case in cases:
        for kp in case.keypoints:
            root.append(_contrast(case.image, case.label, kp))
        for mp in rule_midpoints(case.label):
            mid.append(_contrast(case.image, case.label, mp))
    assert np.mean(root) < np.mean(mid), (np.mean(root), np.mean(mid))


def test_dark_background_and_cornea(cases: list[SynthCase]) -> None:
    h, w = SIZE
    ch, cw = int(0.08 * h), int(0.08 * w)
    for case in cases:
        img = case.image
        for corner in (img[:ch, :cw], img[:ch, -cw:], img[-ch:, :cw], img[-ch:, -cw:]):
            assert corner.mean() < 0.1
        band = img[: int(0.4 * h), w // 2 - int(0.05 * w) : w // 2 + int(0.05 * w)]
        assert band.mean(axis=1).max() > 0.4
