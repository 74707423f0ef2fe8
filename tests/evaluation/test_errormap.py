"""Error-frequency map, hot-spot suggestions and the keypoint rule learnt from them, on hand-made cases."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from PIL import Image

from glsmonai.data.io import write_mask
from glsmonai.evaluation.errormap import error_map, error_map_from_folders, save_error_map, save_rule, suggest_keypoints
from glsmonai.keypoints import errormap_rule

GRID = (64, 128)


def _reference(shape, rects):
    """Mask with the rectangles ``(r0, r1, c0, c1)`` (exclusive ends) set."""
    ref = np.zeros(shape, bool)
    for r0, r1, c0, c1 in rects:
        ref[r0:r1, c0:c1] = True
    return ref


def _outer_region(rect, rows, cols, right):
    """Slices of a region given as fractions of ``rect``; ``cols`` are measured from its outer end.

    The left rectangle's outer end is its left side, the right rectangle's its right side.
    """
    r0, r1, c0, c1 = rect
    h, w = r1 - r0, c1 - c0
    rs = slice(r0 + round(rows[0] * h), r0 + round(rows[1] * h))
    if right:
        cs = slice(c1 - round(cols[1] * w), c1 - round(cols[0] * w))
    else:
        cs = slice(c0 + round(cols[0] * w), c0 + round(cols[1] * w))
    return rs, cs


def _case(shape, rects, rows, cols):
    """``(pred, ref)``: the prediction flips the given relative region of each rectangle (left, right)."""
    ref = _reference(shape, rects)
    pred = ref.copy()
    for i, rect in enumerate(rects):
        rs, cs = _outer_region(rect, rows, cols, right=i == 1)
        pred[rs, cs] = ~pred[rs, cs]
    return pred, ref


SMALL = ((60, 160), [(20, 40, 20, 60), (20, 40, 100, 140)])  # H 20, W 40
LARGE = ((120, 300), [(30, 70, 20, 100), (40, 80, 180, 260)])  # H 40, W 80, other positions


def test_outer_end_errors_are_hot_at_the_outer_ends():
    pred, ref = _case(*SMALL, rows=(0.0, 1.0), cols=(0.0, 0.1))  # false negatives: outer 4 columns
    emap, n = error_map([(pred, ref)], n_components=2, grid=GRID)
    assert n == 1 and emap.shape == (64, 256)
    assert emap.min() == 0.0 and emap.max() == pytest.approx(1.0)  # cells without error are exactly 0
    left, right = emap[:, :128], emap[:, 128:]
    hot_left, hot_right = np.nonzero(left.sum(axis=0))[0], np.nonzero(right.sum(axis=0))[0]
    # left end of the left panel, right end of the right: the enlarged boxes are 60 px wide (40 + 2 * 0.25 * 40)
    # from col 10 and col 90, 128 / 60 cells a pixel; flipped cols [20, 24) -> cells [21.3, 29.9): 21..29,
    # and [136, 140) -> [98.1, 106.7): 98..106
    assert hot_left.tolist() == list(range(21, 30)) and hot_right.tolist() == list(range(98, 107))
    # mirror images of each other
    np.testing.assert_allclose(left, right[:, ::-1], atol=1e-9)


def test_same_relative_errors_align_to_the_same_cells():
    # false negatives just inside the outer end and false positives just outside it
    small_fn = _case(*SMALL, rows=(0.25, 0.5), cols=(0.0, 0.1))
    large_fn = _case(*LARGE, rows=(0.25, 0.5), cols=(0.0, 0.1))
    small_fp = _case(*SMALL, rows=(0.5, 0.75), cols=(-0.1, 0.0))
    large_fp = _case(*LARGE, rows=(0.5, 0.75), cols=(-0.1, 0.0))
    for (p_s, r_s), (p_l, r_l) in [(small_fn, large_fn), (small_fp, large_fp)]:
        map_s, _ = error_map([(p_s, r_s)], grid=GRID)
        map_l, _ = error_map([(p_l, r_l)], grid=GRID)
        assert map_s.max() == pytest.approx(1.0)  # some cells (0.47 px small, 0.94 px large) lie wholly in the flip
        np.testing.assert_allclose(map_s, map_l, atol=1e-9)
        both, n = error_map([(p_s, r_s), (p_l, r_l)], grid=GRID)
        assert n == 2
        np.testing.assert_allclose(both, map_s, atol=1e-9)


def test_errors_outside_the_boxes_are_ignored():
    pred, ref = _case(*SMALL, rows=(0.25, 0.5), cols=(0.0, 0.1))
    base, _ = error_map([(pred, ref)], grid=GRID)
    far = pred.copy()
    far[50:60, 70:90] = True  # below and between the enlarged boxes (rows 15..45)
    emap, _ = error_map([(far, ref)], grid=GRID)
    np.testing.assert_allclose(emap, base, atol=1e-12)


def test_case_with_one_component_is_skipped(caplog):
    pred, ref = _case(*SMALL, rows=(0.25, 0.5), cols=(0.0, 0.1))
    base, _ = error_map([(pred, ref)], grid=GRID)
    single = _reference((60, 160), [(10, 30, 10, 50)])
    with caplog.at_level(logging.WARNING, logger="glsmonai.evaluation.errormap"):
        emap, n = error_map(iter([(pred, ref), (np.zeros_like(single), single)]), grid=GRID)
    assert n == 1
    np.testing.assert_allclose(emap, base)
    assert "case 1 skipped" in caplog.text
    empty, n = error_map([(np.zeros_like(single), single)], grid=(4, 8))
    assert n == 0 and empty.shape == (4, 16) and not empty.any()


def test_shape_mismatch_names_the_case():
    pred, ref = _case(*SMALL, rows=(0.25, 0.5), cols=(0.0, 0.1))
    with pytest.raises(ValueError, match="case 1"):
        error_map([(pred, ref), (pred[:, :-1], ref)])


def _spike(shape, centre, sigma, height):
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    return height * np.exp(-((rr - centre[0]) ** 2 + (cc - centre[1]) ** 2) / (2 * sigma**2))


def test_suggest_keypoints_finds_planted_spots():
    emap = _spike((64, 256), (10, 20), 1.5, 0.8) + _spike((64, 256), (50, 228), 1.5, 1.0)
    emap += _spike((64, 256), (13, 24), 0.7, 0.79)  # a neighbour of the first spot: suppressed
    emap += _spike((64, 256), (40, 100), 1.0, 0.3)  # a third, distant spot in the left panel
    spots = suggest_keypoints(emap, n_components=2, k=3, min_distance=8)
    assert [s["component"] for s in spots] == [1, 0, 0]
    assert spots[0]["u"] == pytest.approx(50.5 / 64) and spots[0]["v"] == pytest.approx(100.5 / 128)
    assert spots[1]["u"] == pytest.approx(10.5 / 64) and spots[1]["v"] == pytest.approx(20.5 / 128)
    assert spots[2]["u"] == pytest.approx(40.5 / 64) and spots[2]["v"] == pytest.approx(100.5 / 128)
    # the second spot's height plus its suppressed neighbour's tail there: 0.79 * exp(-(3**2 + 4**2) / (2 * 0.7**2)) ~ 7e-12
    assert spots[0]["heat"] == pytest.approx(1.0) and spots[1]["heat"] == pytest.approx(0.8)


def test_suggest_keypoints_plateau_and_early_stop(caplog):
    emap = np.zeros((64, 256))
    emap[20:26, 30:40] = 1.0  # flat top: its centre is the spot
    spots = suggest_keypoints(emap, n_components=2, k=1)
    assert spots[0]["u"] == pytest.approx(23 / 64) and spots[0]["v"] == pytest.approx(35 / 128)
    with caplog.at_level(logging.WARNING, logger="glsmonai.evaluation.errormap"):
        assert len(suggest_keypoints(emap, n_components=2, k=3)) == 1
    assert "1 hot spot" in caplog.text
    with pytest.raises(ValueError, match="3 panels"):
        suggest_keypoints(emap, n_components=3, k=1)


def test_rule_maps_spots_back_onto_planted_errors(tmp_path):
    blob = dict(rows=(0.4, 0.6), cols=(0.0, 0.1))
    cases = [_case(*SMALL, **blob), _case(*LARGE, **blob)]
    emap, n = error_map(cases, n_components=2, grid=GRID)
    assert n == 2
    spots = suggest_keypoints(emap, n_components=2, k=2)
    assert sorted(s["component"] for s in spots) == [0, 1]
    path = tmp_path / "rules" / "iris_errormap.json"
    save_rule(path, spots, n_components=2, margin=0.25, label_value=1)
    assert json.loads(path.read_text())["rule"] == "errormap"
    rule = errormap_rule(path)
    assert rule.n_keypoints == 2

    # a new label map of another size, with other rectangles, labels 1 and an unrelated label 2
    shape, rects = (150, 400), [(30, 90, 40, 140), (50, 110, 250, 350)]
    pred, ref = _case(shape, rects, **blob)
    label = ref.astype(np.uint8)
    label[130:140, 180:200] = 2
    points = rule(label)
    assert points.shape == (2, 2)
    errors = pred ^ ref
    for spot, point in zip(spots, points):
        half = errors.copy()
        if spot["component"] == 0:
            half[:, 200:] = False
        else:
            half[:, :200] = False
        planted = np.argwhere(half).mean(axis=0)
        assert np.linalg.norm(point - planted) <= 2.0, (point, planted)

    with pytest.raises(ValueError, match="1 connected component"):
        rule(_reference((50, 50), [(10, 20, 10, 20)]).astype(np.uint8))


def test_rule_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        errormap_rule(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        errormap_rule(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"rule": "errormap", "n_components": 2, "margin": 0.25, "keypoints": [{"u": 0.5}]}))
    with pytest.raises(ValueError, match="other.json"):
        errormap_rule(other)
    with pytest.raises(ValueError, match="component"):
        save_rule(tmp_path / "x.json", [{"component": 2, "u": 0.5, "v": 0.5}], n_components=2, margin=0.25)
    assert not (tmp_path / "x.json").exists()


def test_save_error_map_png_and_npy(tmp_path):
    emap = np.zeros((64, 256))
    emap[5, 7] = 0.5
    emap[6, 8] = 0.25
    target = tmp_path / "out" / "emap.png"
    save_error_map(target, emap)
    assert sorted(p.name for p in target.parent.iterdir()) == ["emap.npy", "emap.png"]
    np.testing.assert_array_equal(np.load(target.with_suffix(".npy")), emap)
    with Image.open(target) as picture:
        assert picture.mode == "RGB" and picture.size == (256, 64)
        rgb = np.asarray(picture)
    assert tuple(rgb[5, 7]) == (255, 255, 255)  # the max is white
    assert tuple(rgb[0, 0]) == (0, 0, 0)
    assert rgb[6, 8, 0] == 255 and rgb[6, 8, 2] == 0  # half the max: red to yellow


def test_error_map_from_folders(tmp_path):
    pred, ref = _case(*SMALL, rows=(0.25, 0.5), cols=(0.0, 0.1))
    label = ref.astype(np.uint8) * 2
    label[50:55, 70:80] = 1  # another structure, not the foreground when label_value=2
    preds, labels = tmp_path / "preds", tmp_path / "labels"
    write_mask(preds / "case1_seg.png", pred.astype(np.uint8))
    write_mask(preds / "orphan_seg.png", pred.astype(np.uint8))  # no reference: skipped
    write_mask(labels / "case1.png", label)
    emap, n = error_map_from_folders(preds, labels, label_value=2, grid=GRID)
    expected, _ = error_map([(pred, ref)], grid=GRID)
    assert n == 1
    np.testing.assert_allclose(emap, expected)
    with pytest.raises(FileNotFoundError, match="labels folder"):
        error_map_from_folders(preds, tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no <name>_seg"):
        error_map_from_folders(labels, labels)


def test_the_command_aligns_to_n_objects(tmp_path, capsys):
    # --objects N: the N largest pieces of each reference, one panel each (predict's --components keeps N pieces)
    from glsmonai.cli import build_parser, main

    pred, ref = _case(*SMALL, rows=(0.25, 0.5), cols=(0.0, 0.1))
    preds, labels = tmp_path / "preds", tmp_path / "labels"
    write_mask(preds / "case1_seg.png", pred.astype(np.uint8))
    write_mask(labels / "case1.png", ref.astype(np.uint8))
    out = tmp_path / "map.png"
    assert main(["errormap", "--pred", str(preds), "--labels", str(labels), "--out", str(out), "--objects", "2",
                 "--suggest", "2"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "map.npy"), error_map([(pred, ref)], n_components=2)[0])
    assert json.loads((tmp_path / "map_rule.json").read_text())["n_components"] == 2
    assert capsys.readouterr().out.strip() == f"keypoint rule: errormap:{tmp_path / 'map_rule.json'}"
    assert main(["errormap", "--pred", str(preds), "--labels", str(labels), "--out", str(out), "--objects", "3"]) == 1
    with pytest.raises(SystemExit):
        build_parser().parse_args(["errormap", "--pred", "p", "--labels", "l", "--out", "o", "--components", "2"])
