"""The review's parts without a server: the review table, the contour the viewer draws, the move's body."""

from __future__ import annotations

import numpy as np
import pytest

from glsmonai.review import ReviewTable, contour_paths, task_of
from glsmonai.review.web import parse_move


def test_the_review_table_keeps_every_decision_and_skips_a_torn_row(tmp_path):
    table = ReviewTable(tmp_path / "review.csv")
    table.record("a.png", "accepted", "ann", "")
    table.record("b.png", "corrected", "bob", "keypoint 0 (1.0, 2.0) -> (3.0, 4.0)")
    table.record("a.png", "corrected", "ann", "keypoint 1 (5.0, 6.0) -> (7.0, 8.0)")
    with open(table.path, "a") as handle:
        handle.write("c.png,acc")  # a row cut short (not by this writer, which rewrites atomically)
    assert [(r["image"], r["state"]) for r in table.rows()] == [("a.png", "accepted"), ("b.png", "corrected"),
                                                                 ("a.png", "corrected")]
    assert table.latest()["a.png"]["changed"] == "keypoint 1 (5.0, 6.0) -> (7.0, 8.0)"
    with pytest.raises(ValueError, match="unknown review state"):
        table.record("a.png", "maybe", "ann", "")


def test_the_contour_follows_the_pixels_edges():
    mask = np.zeros((6, 7), np.uint8)
    mask[1:3, 2:5] = 1  # rows 1-2, cols 2-4: in the scan's frame x from 2 to 5, y from 1 to 3
    (path,) = contour_paths(mask)
    points = np.array([[float(v) for v in p.split()] for p in path[1:-2].split(" L")])
    assert path.startswith("M") and path.endswith(" Z")
    assert points[:, 0].min() == 2.0 and points[:, 0].max() == 5.0  # half-way between pixel centres
    assert points[:, 1].min() == 1.0 and points[:, 1].max() == 3.0
    assert contour_paths(np.zeros((4, 4))) == []


def test_the_measure_task_comes_from_the_keypoint_count():
    assert task_of(2) == "iris" and task_of(3) == "lv" and task_of(5) is None and task_of(2, "lv") == "lv"
    with pytest.raises(ValueError, match="unknown measure task"):
        task_of(2, "knee")


@pytest.mark.parametrize(("body", "message"), [
    (b"{", "not JSON"), (b"\xff", "not JSON"), (b"7", "expected the keys"), (b'{"k": 0, "row": 1}', "expected the keys"),
    (b'{"k": 1.0, "row": 1, "col": 2}', "k must be an integer"), (b'{"k": 0, "row": null, "col": 2}', "row must be"),
    (b'{"k": 0, "row": 1, "col": Infinity}', "col must be a finite number"),
])
def test_a_malformed_move_is_refused(body, message):
    with pytest.raises(ValueError, match=message):
        parse_move(body)
    assert parse_move(b'{"k": 1, "row": 2, "col": 3.5}') == (1, 2.0, 3.5)
