"""The prediction folder's format: the names predict gives a scan's outputs, and keypoints.csv written and read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from glsmonai.data.prediction_folder import (
    KEYPOINT_COLUMNS,
    KeypointTable,
    find_overlay,
    keypoint_rows,
    mask_path,
    overlay_name,
    overlay_names,
    read_keypoints_csv,
)


def test_masks_and_overlays_are_named_after_their_scans():
    assert mask_path("out", "a.nii.gz") == Path("out/a_seg.nii.gz")
    assert mask_path("out", "b.JPG") == Path("out/b_seg.png")  # a JPEG's mask is a PNG
    assert overlay_name("a.nii.gz") == "a.png" and overlay_name("a.nii.gz", shared_stem=True) == "a_nii_gz.png"
    scans = [Path("x/a.nii.gz"), Path("x/a.png"), Path("x/b.JPG")]
    assert overlay_names(scans) == {scans[0]: "a_nii_gz.png", scans[1]: "a_png.png", scans[2]: "b.png"}


@pytest.mark.parametrize(("scan", "shared"), [("a.nii.gz", False), ("a.nii.gz", True), ("a.png", True),
                                              ("a.jpg", True), ("a.jpeg", True), ("a.JPG", True), ("a.png", False)])
def test_the_reader_finds_the_overlay_the_writer_named(tmp_path, scan, shared):
    (tmp_path / "overlays").mkdir()
    (tmp_path / "overlays" / overlay_name(scan, shared)).write_bytes(b"png")
    found = find_overlay(tmp_path, mask_path(tmp_path, scan))
    assert found == tmp_path / "overlays" / overlay_name(scan, shared)
    assert find_overlay(tmp_path, mask_path(tmp_path, "other.nii.gz")) is None


def test_keypoint_rows_are_written_and_read_back(tmp_path):
    table = KeypointTable(tmp_path / "keypoints.csv")
    table.start(set())
    points = np.array([[1.23456, 2.5], [30.0, 40.0004]])
    table.add(keypoint_rows("a.nii.gz", points, np.array([0.9, 0.8]), np.array([1.0, 0.3]), np.array([False, True])))
    table.add(keypoint_rows("b.png", points + 1, np.ones(2), np.ones(2), np.zeros(2, bool)))
    lines = (tmp_path / "keypoints.csv").read_text().splitlines()
    assert lines[0] == ",".join(KEYPOINT_COLUMNS) and lines[1] == "a.nii.gz,0,1.235,2.5,0.9,1.0,ok,model"
    assert lines[2] == "a.nii.gz,1,30.0,40.0,0.8,0.3,unsure,model"
    read = read_keypoints_csv(tmp_path / "keypoints.csv")
    assert np.allclose(read["a"][0], [[1.235, 2.5], [30.0, 40.0]]) and read["a"][1].tolist() == [False, True]
    assert table.done() == {"a.nii.gz", "b.png"}
    table.start({"a.nii.gz"})  # a rerun of a drops its rows and keeps b's
    assert table.done() == {"b.png"}
    (tmp_path / "bad.csv").write_text("image,row\nx,1\n")
    with pytest.raises(ValueError, match="missing column"):
        read_keypoints_csv(tmp_path / "bad.csv")
