"""``glsmonai review`` over plain HTTP (the standard library's client, no browser): bad requests get a clear 4xx
answer and change nothing on disk; a killed server loses no move and no decision; two tabs on one scan lose
nothing either."""

from __future__ import annotations

import csv
import json
import threading
from urllib.parse import quote

import numpy as np

from glsmonai.data.io import read_image
from glsmonai.data.prediction_folder import read_keypoints_csv
from tests.review.conftest import Server, folder_state

MOVE = "/api/scans/{}/keypoints"


def _scan(server) -> tuple[str, dict]:
    """The first scan of the list (worst first), opened: its name (quoted for a URL) and state."""
    status, listing = server.api("/api/scans")
    assert status == 200 and listing["progress"] == {"reviewed": 0, "total": 10, "to review": 10, "accepted": 0,
                                                     "corrected": 0}
    name = listing["scans"][0]["name"]
    status, state = server.api(f"/api/scans/{quote(name)}")
    assert status == 200 and state["version"] == 0 and state["state"] == "to review"
    return quote(name), state


def _review_rows(folder) -> list[dict]:
    with open(folder / "review.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_bad_requests_get_a_clear_error_and_change_nothing(server):
    name, state = _scan(server)
    rows, cols = state["shape"]
    before = folder_state(server.pred)
    bad = [
        # a path outside the folder, an unknown scan, files that are not the viewer's
        ("GET", "/api/scans/..%2F..%2Fetc%2Fpasswd/image.png", None, 404),
        ("GET", "/api/scans/..%2Fkeypoints.csv", None, 404),
        ("GET", "/api/scans/%2E%2E/measures", None, 404),
        ("GET", "/static/..%2F..%2Fcli.py", None, 404),
        ("GET", "/static/app.py", None, 404),
        ("GET", "/api/scans/no_such_scan.nii.gz", None, 404),
        ("GET", "/api/scans/no_such_scan.nii.gz/image.png", None, 404),
        ("POST", "/api/scans/no_such_scan.nii.gz/accept", None, 404),
        ("POST", MOVE.format("no_such_scan.nii.gz"), '{"k": 0, "row": 1, "col": 1}', 404),
        # a keypoint off the image, or not the model's
        ("POST", MOVE.format(name), json.dumps({"k": 0, "row": rows, "col": 1}), 422),
        ("POST", MOVE.format(name), json.dumps({"k": 0, "row": 1, "col": -0.5}), 422),
        ("POST", MOVE.format(name), json.dumps({"k": 2, "row": 1, "col": 1}), 422),
        ("POST", MOVE.format(name), json.dumps({"k": -1, "row": 1, "col": 1}), 422),
        # malformed bodies
        ("POST", MOVE.format(name), "not json", 422),
        ("POST", MOVE.format(name), "", 422),
        ("POST", MOVE.format(name), "[0, 1, 2]", 422),
        ("POST", MOVE.format(name), '{"k": 0, "row": 1}', 422),
        ("POST", MOVE.format(name), '{"k": 0, "row": 1, "col": 1, "extra": 1}', 422),
        ("POST", MOVE.format(name), '{"k": "0", "row": 1, "col": 1}', 422),
        ("POST", MOVE.format(name), '{"k": true, "row": 1, "col": 1}', 422),
        ("POST", MOVE.format(name), '{"k": 0.0, "row": 1, "col": 1}', 422),
        ("POST", MOVE.format(name), '{"k": 0, "row": NaN, "col": 1}', 422),
        ("POST", MOVE.format(name), '{"k": 0, "row": 1e999, "col": 1}', 422),
        ("POST", MOVE.format(name), '{"k": 0, "row": "1", "col": 1}', 422),
        # a method the route does not take
        ("GET", MOVE.format(name), None, 405),
        ("DELETE", f"/api/scans/{name}", None, 405),
    ]
    for method, path, body, expected in bad:
        status, answer = server.api(path, method, body)
        assert status == expected, (method, path, body, status, answer)
        assert isinstance(answer, dict) and isinstance(answer.get("error"), str) and answer["error"], (path, answer)
    # the messages say what was wrong
    assert "off the scan" in server.api(MOVE.format(name), "POST", json.dumps({"k": 0, "row": rows, "col": 1}))[1]["error"]
    assert "not JSON" in server.api(MOVE.format(name), "POST", "not json")[1]["error"]
    assert "unknown scan" in server.api("/api/scans/no_such_scan.nii.gz")[1]["error"]
    # nothing changed: the files, the scan's state; and the server goes on serving
    assert folder_state(server.pred) == before
    status, again = server.api(f"/api/scans/{name}")
    assert status == 200 and again["version"] == 0 and again["keypoints"] == state["keypoints"]
    assert not again["can_undo"] and again["changed"] == ""
    assert server.api("/")[0] == 200 and server.api("/static/review.js")[0] == 200
    moved = server.api(MOVE.format(name), "POST", json.dumps({"k": 0, "row": 2.5, "col": 3.25}))
    assert moved[0] == 200 and moved[1]["keypoints"][0] == {**moved[1]["keypoints"][0], "row": 2.5, "col": 3.25,
                                                             "source": "user"}


def test_a_killed_server_loses_no_move_and_no_decision(predicted, review_folder, tmp_path):
    first = Server(review_folder, tmp_path / "first.log")
    try:
        name, state = _scan(first)
        other = quote(first.api("/api/scans")[1]["scans"][1]["name"])
        moved = first.api(MOVE.format(name), "POST", json.dumps({"k": 1, "row": 20.0, "col": 30.5}))[1]
        assert moved["version"] == 1 and moved["changed"].startswith("keypoint 1 (")
        assert first.api(f"/api/scans/{other}/accept", "POST")[1]["state"] == "accepted"
    finally:
        first.kill()  # kill -9: no chance to save anything more
    second = Server(review_folder, tmp_path / "second.log")
    try:
        listing = second.api("/api/scans")[1]
        assert listing["progress"]["accepted"] == 1
        again = second.api(f"/api/scans/{name}")[1]  # the move not yet accepted comes back from its draft
        assert again["keypoints"][1]["source"] == "user" and (again["keypoints"][1]["row"], again["keypoints"][1]["col"]) \
            == (20.0, 30.5)
        assert again["contours"] == moved["contours"] and again["can_undo"]
        accepted = second.api(f"/api/scans/{name}/accept", "POST")[1]
        assert accepted["state"] == "corrected"
    finally:
        second.stop()
    pred = review_folder[3]
    rows = _review_rows(pred)
    assert [(r["image"], r["state"], r["reviewer"]) for r in rows] == [
        (listing["scans"][1]["name"], "accepted", "tester"), (state["name"], "corrected", "tester")]
    assert rows[1]["changed"].startswith("keypoint 1 (") and rows[1]["changed"].endswith("-> (20.0, 30.5)")
    # the corrected mask has the scan's geometry and differs from the model's, which is untouched
    stem = state["name"].removesuffix(".nii.gz")
    corrected, geometry = read_image(pred / "corrected" / f"{stem}_seg.nii.gz")
    model, model_geometry = read_image(pred / f"{stem}_seg.nii.gz")
    assert corrected.shape == model.shape and geometry.spacing == model_geometry.spacing
    assert geometry.origin == model_geometry.origin and geometry.direction == model_geometry.direction
    pristine = predicted[3]
    assert all((pred / f.name).read_bytes() == f.read_bytes() for f in pristine.iterdir() if f.is_file())
    assert not np.array_equal(corrected, model)
    table = read_keypoints_csv(pred / "corrected" / "keypoints.csv")
    assert np.allclose(table[stem][0][1], [20.0, 30.5])
    assert not list((pred / "corrected" / ".drafts").glob("*.json"))  # accepted: no draft left
    assert not [p for p in pred.rglob("*") if ".tmp" in p.name]  # no half-written file


def test_two_tabs_on_one_scan_lose_nothing(server):
    name, state = _scan(server)
    answers: dict = {}

    def send(k: int, row: float, col: float) -> None:
        answers[k] = server.api(MOVE.format(name), "POST", json.dumps({"k": k, "row": row, "col": col}))

    tabs = [threading.Thread(target=send, args=(0, 10.0, 20.0)), threading.Thread(target=send, args=(1, 30.0, 40.0))]
    for tab in tabs:
        tab.start()
    for tab in tabs:
        tab.join()
    assert answers[0][0] == answers[1][0] == 200
    assert {answers[0][1]["version"], answers[1][1]["version"]} == {1, 2}  # one after the other, under the scan's lock
    now = server.api(f"/api/scans/{name}")[1]
    assert [p["source"] for p in now["keypoints"]] == ["user", "user"]
    decided: list = []
    tabs = [threading.Thread(target=lambda: decided.append(server.api(f"/api/scans/{name}/accept", "POST")))
            for _ in range(2)]
    for tab in tabs:
        tab.start()
    for tab in tabs:
        tab.join()
    assert [status for status, _ in decided] == [200, 200]
    rows = _review_rows(server.pred)
    assert [(r["image"], r["state"]) for r in rows] == [(state["name"], "corrected")] * 2
    stem = state["name"].removesuffix(".nii.gz")
    assert len(read_keypoints_csv(server.pred / "corrected" / "keypoints.csv")[stem][0]) == 2
