"""``glsmonai review`` used as a reviewer uses it, in a real headless Chromium (Debian's ``chromium``, driven over
the DevTools protocol as the report pages' test drives it): the page opens the worst scan, a keypoint is dragged
with the mouse, the contour changes, the key ``a`` accepts, and the files on disk and the review table say so.
Without a Chromium binary the test is skipped and says why (``.ci/run`` installs one)."""

from __future__ import annotations

import csv
import time
from urllib.parse import quote

import numpy as np
from PIL import Image

from glsmonai.data.io import read_image
from glsmonai.data.prediction_folder import read_keypoints_csv
from tests.evaluation.test_html_report import Chromium, needs_browser


class Browser(Chromium):
    """The report test's Chromium, with a page opened by URL, mouse drags and key presses."""

    def goto(self, url: str) -> None:
        self.send("Page.navigate", {"url": url}, session=True)
        self._wait(lambda m: m.get("method") == "Page.loadEventFired")

    def wait_for(self, expression: str, timeout: float = 120.0):
        """The value of ``expression`` once it is truthy (checked every 0.2 s)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                page = self.evaluate("document.getElementById('status').textContent")
                raise TimeoutError(f"{expression} stayed false for {timeout} s; page status: {page!r}")
            time.sleep(0.2)

    def mouse(self, kind: str, x: float, y: float, buttons: int) -> None:
        self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "buttons": buttons,
                                               "clickCount": 1}, session=True)

    def drag(self, start: tuple[float, float], end: tuple[float, float], steps: int = 8) -> None:
        self.mouse("mouseMoved", *start, 0)
        self.mouse("mousePressed", *start, 1)
        for t in np.linspace(0, 1, steps + 1)[1:]:
            self.mouse("mouseMoved", start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]), 1)
        self.mouse("mouseReleased", *end, 0)

    def press(self, key: str, code: str, key_code: int) -> None:
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": code, "text": key if kind == "keyDown"
                                                 else "", "windowsVirtualKeyCode": key_code}, session=True)


#: where keypoint k's handle is on the screen, and where scan pixel [row, col] is (the SVG's own transform)
HANDLE = """(() => { const b = document.querySelector('#handles circle[data-k="{k}"]').getBoundingClientRect();
  return [b.left + b.width / 2, b.top + b.height / 2]; })()"""
ON_SCREEN = """(() => { const p = new DOMPoint({col} + 0.5, {row} + 0.5).matrixTransform(
  document.getElementById('view').getScreenCTM()); return [p.x, p.y]; })()"""
CONTOUR = "[...document.querySelectorAll('#contour path')].map(p => p.getAttribute('d')).join(' ')"


@needs_browser
def test_drag_a_keypoint_see_the_contour_change_and_accept(server, tmp_path):
    browser = Browser(tmp_path / "profile", size=(1400, 900))
    try:
        browser.goto(f"{server.url}/")
        browser.wait_for("document.body.dataset.ready === '1' && document.body.dataset.version === '0'")
        listing = server.api("/api/scans")[1]
        name = listing["scans"][0]["name"]  # the page opens the worst scan first
        assert browser.evaluate("document.getElementById('scan-name').textContent") == name
        assert browser.evaluate("document.querySelectorAll('#list tbody tr').length") == listing["progress"]["total"]
        assert browser.evaluate("document.getElementById('progress').textContent").startswith("0 / 10 reviewed")
        state = server.api(f"/api/scans/{quote(name)}")[1]
        before = browser.evaluate(CONTOUR)
        assert before and browser.wait_for("document.querySelector('#scan').getBBox().width") == state["shape"][1]
        # drag keypoint 0 by 6 pixels down and 5 to the left, with the mouse
        point = state["keypoints"][0]
        row, col = min(point["row"] + 6, state["shape"][0] - 1), max(point["col"] - 5, 0)
        start = browser.evaluate(HANDLE.replace("{k}", "0"))
        end = browser.evaluate(ON_SCREEN.replace("{row}", str(row)).replace("{col}", str(col)))
        browser.drag(tuple(start), tuple(end))
        browser.wait_for("document.body.dataset.version === '1' && document.body.dataset.busy === '0'")
        after = browser.evaluate(CONTOUR)
        assert after != before  # the window re-segmented, the contour redrawn
        moved = server.api(f"/api/scans/{quote(name)}")[1]
        assert moved["keypoints"][0]["source"] == "user"
        assert abs(moved["keypoints"][0]["row"] - row) < 0.2 and abs(moved["keypoints"][0]["col"] - col) < 0.2
        assert browser.evaluate("document.querySelector('#handles circle[data-k=\"0\"]').classList.contains('user')")
        assert not browser.evaluate("document.getElementById('undo').disabled")
        browser.wait_for("document.body.dataset.measured === '1'")  # the measures of the new mask came
        # 'a' accepts: the scan is corrected, the progress counts it
        browser.press("a", "KeyA", 65)
        browser.wait_for("document.body.dataset.state === 'corrected'")
        browser.wait_for("document.getElementById('progress').textContent.startsWith('1 / 10 reviewed')")
        shot = browser.screenshot()
        Image.fromarray(shot).save(tmp_path / "review_page.png")  # for a look when the test fails
        assert browser.problems() == []
    finally:
        browser.close()
    # on disk: the corrected mask beside the model's, with the scan's geometry; its keypoints; the review table
    stem = name.removesuffix(".nii.gz")
    corrected, geometry = read_image(server.pred / "corrected" / f"{stem}_seg.nii.gz")
    model, model_geometry = read_image(server.pred / f"{stem}_seg.nii.gz")
    assert geometry.shape == model_geometry.shape and geometry.spacing == model_geometry.spacing
    assert not np.array_equal(corrected, model)
    points = read_keypoints_csv(server.pred / "corrected" / "keypoints.csv")[stem][0]
    assert np.allclose(points[0], [row, col], atol=0.2)
    with open(server.pred / "corrected" / "keypoints.csv", newline="") as handle:
        assert [r["source"] for r in csv.DictReader(handle)] == ["user", "model"]
    with open(server.pred / "review.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["image"], r["state"], r["reviewer"]) for r in rows] == [(name, "corrected", "tester")]
    assert rows[0]["changed"].startswith("keypoint 0 (") and rows[0]["time"]
