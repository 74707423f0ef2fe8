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


@pytest.fixture(scope="module")
def demo_cases() -> list[SynthCase]:
    """60 cases at the demo's size, for the rates of rarer draws (artificial lens, artefacts)."""
    return [_case(seed, (128, 144)) for seed in range(60)]


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


def _half_profiles(label: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Top and bottom row of each half, column by column from its root end to its pupil end."""
    out = []
    for i, comp in enumerate(_two_components(label)):
        cols = np.arange(int(comp[:, 1].min()), int(comp[:, 1].max()) + 1)
        top = np.array([comp[comp[:, 1] == c, 0].min() for c in cols])
        bot = np.array([comp[comp[:, 1] == c, 0].max() for c in cols])
        if i == 1:  # the right half's root is its right end
            top, bot = top[::-1], bot[::-1]
        out.append((top, bot))
    return out


def _relief(surface: np.ndarray) -> float:
    """RMS of a surface's rows about a smoothed copy (sigma 6 % of its length), inner 80 % only."""
    n = surface.size
    smooth = ndimage.gaussian_filter1d(surface, 0.06 * n, mode="nearest")
    core = slice(int(0.1 * n), int(0.9 * n))
    return float(np.sqrt(np.mean((surface - smooth)[core] ** 2)))


def _sagitta(surface: np.ndarray) -> float:
    """How far the middle third of a surface lies above (smaller rows) the chord between its ends."""
    n = surface.size
    k = max(n // 10, 1)
    x = np.arange(n, dtype=np.float64)
    x0, x1, y0, y1 = x[:k].mean(), x[-k:].mean(), surface[:k].mean(), surface[-k:].mean()
    mid = slice(n // 3, 2 * n // 3)
    return float(np.mean(y0 + (y1 - y0) * (x[mid] - x0) / (x1 - x0) - surface[mid]))


def _pupil_regions(case: SynthCase) -> tuple[np.ndarray, np.ndarray]:
    """Anterior chamber and lens regions in the middle half of the pupil's columns.

    The chamber region is 4-12 % of the height above the pupil ends, the lens region 4-15 % below.
    """
    h = case.image.shape[0]
    left, right = _two_components(case.label)
    cl, cr = int(left[:, 1].max()), int(right[:, 1].min())
    row = 0.5 * (left[left[:, 1] == cl, 0].mean() + right[right[:, 1] == cr, 0].mean())
    gap = cr - cl
    cols = slice(int(cl + 0.25 * gap), int(cr - 0.25 * gap) + 1)
    chamber = case.image[int(row - 0.12 * h) : int(row - 0.04 * h), cols]
    lens = case.image[int(row + 0.04 * h) : int(row + 0.15 * h), cols]
    return chamber, lens


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
    """At 288 px wide, each half is still a band near its root (>= 6 px, about 2 % of the width).

    The real iris thins towards its root (thickest at the collarette, see
    ``test_thickness_peaks_in_middle_third``), so the root is thinner than the old phantoms' 9 px,
    but never a sliver.
    """
    for case in cases:
        for i, kp in enumerate(case.keypoints):
            col = int(round(kp[1])) + (12 if i == 0 else -12)  # a little inwards of the tip
            assert case.label[:, col].sum() >= 6


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


def test_info_says_what_was_drawn(cases: list[SynthCase]) -> None:
    for case in cases:
        assert case.info["lens"] in ("natural", "artificial")
        assert case.info["artefact"] in (None, "eyelid", "shadow")
        if case.info["artefact"] is None:
            assert case.info["hidden_root"] is None
        else:
            assert case.info["hidden_root"] in (0, 1)


def test_thickness_peaks_in_middle_third(cases: list[SynthCase]) -> None:
    """Thickest in the middle third (the collarette), thinner towards the root and the pupil.

    Thickness is measured across the band: the vertical extent of each column times the cosine of
    the slope of the half's (smoothed) midline.
    """
    for case in cases:
        for top, bot in _half_profiles(case.label):
            n = top.size
            mid = ndimage.gaussian_filter1d(0.5 * (top + bot), 0.05 * n, mode="nearest")
            thick = (bot - top + 1) / np.sqrt(1.0 + np.gradient(mid) ** 2)
            root, middle, pupil = (thick[k * n // 3 : (k + 1) * n // 3].mean() for k in range(3))
            assert middle > 1.05 * root and middle > 1.1 * pupil, (root, middle, pupil)


def test_anterior_surface_rougher_than_posterior() -> None:
    """Crypts and folds on the anterior surface; the posterior surface (on the lens) is smooth."""
    ratios = []
    for seed in range(6):
        for top, bot in _half_profiles(_case(seed, (512, 576)).label):
            ratios.append(_relief(top) / max(_relief(bot), 1e-3))
    assert min(ratios) > 1.3 and np.mean(ratios) > 1.6, ratios


def test_iris_bows_forward(cases: list[SynthCase]) -> None:
    """The posterior surface is convex towards the cornea in most eyes with a natural lens."""
    sag = [_sagitta(bot) for c in cases if c.info["lens"] == "natural" for _, bot in _half_profiles(c.label)]
    assert len(sag) >= 20
    assert np.mean(np.array(sag) > 0) >= 0.8 and np.median(sag) > 2.0, sag


def test_lens_band_brighter_than_chamber(cases: list[SynthCase], demo_cases: list[SynthCase]) -> None:
    """Natural lens: a band of moderate brightness under the pupil; artificial lens: no band."""
    natural = [c for c in cases if c.info["lens"] == "natural"]
    assert len(natural) >= 10
    for case in natural:
        chamber, lens = _pupil_regions(case)
        assert np.median(lens) > np.median(chamber) + 0.04, (np.median(lens), np.median(chamber))
    for case in demo_cases:
        if case.info["lens"] == "artificial":
            chamber, lens = _pupil_regions(case)
            assert np.median(lens) < np.median(chamber) + 0.03


def test_artificial_lens_and_artefacts_occur(demo_cases: list[SynthCase]) -> None:
    """Some eyes have an artificial lens, some scans an eyelid / shadow that hides one root."""
    infos = [case.info for case in demo_cases]
    artificial = sum(i["lens"] == "artificial" for i in infos)
    artefacts = [i["artefact"] for i in infos if i["artefact"] is not None]
    assert 3 <= artificial <= 20, artificial
    assert 5 <= len(artefacts) <= 22, len(artefacts)
    assert {"eyelid", "shadow"} <= set(artefacts)


def test_hidden_root_keeps_its_keypoint(demo_cases: list[SynthCase]) -> None:
    """Under an artefact the root is barely visible, but its keypoint is still on its half's tip."""
    hidden = 0
    for seed, case in enumerate(demo_cases):
        side = case.info["hidden_root"]
        if side is None:
            continue
        hidden += 1
        comps = _two_components(case.label)
        for i, kp in enumerate(case.keypoints):
            r, c = np.round(kp).astype(int)
            assert case.label[r, c] == 1
            end = comps[i][:, 1].min() if i == 0 else comps[i][:, 1].max()
            assert abs(kp[1] - end) <= 3.0

        def window(kp: np.ndarray, case=case) -> float:
            r, c = np.round(kp).astype(int)
            return float(case.image[max(r - 5, 0) : r + 6, max(c - 5, 0) : c + 6].mean())

        assert window(case.keypoints[side]) < 0.5 * window(case.keypoints[1 - side]), seed
    assert hidden >= 5


def test_real_scan_size() -> None:
    """One case at the size of the device's exports (1459 x 1713)."""
    size = (1459, 1713)
    case = _case(0, size)
    assert case.image.shape == size and case.label.shape == size
    assert ndimage.label(case.label > 0)[1] == 2
    for kp in case.keypoints:
        r, c = np.round(kp).astype(int)
        assert case.label[r, c] == 1
    assert np.linalg.norm(case.keypoints - rule_roots(case.label), axis=1).max() <= 6.0
