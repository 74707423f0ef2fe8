"""The report pages of ``evaluate`` and ``compare`` opened in a real headless Chromium (Debian's ``chromium``).

The browser is driven through the DevTools protocol on a pipe (``--remote-debugging-pipe``): no network,
no driver download. A page must load with no console message of level error or warning, no uncaught
exception and no failed resource load; every thumbnail must have been decoded by the browser
(``naturalWidth > 0``); every link must point at an existing file; the screenshot must show the
tables and the thumbnails' red and green contours. Without a Chromium binary these tests are skipped
and say why (``.ci/run`` installs the package, so CI always runs them).
"""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from glsmonai.cli import main as cli_main
from glsmonai.data.io import write_mask
from glsmonai.evaluation.errormap import save_error_map
from glsmonai.evaluation.html_report import write_compare_report
from glsmonai.evaluation.reports import compare_summary
from glsmonai.visualize import GREEN, RED, save_overlay

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = os.environ.get("GLSMONAI_CHROMIUM") or next((b for b in map(shutil.which, BROWSERS) if b), None)
needs_browser = pytest.mark.skipif(
    BROWSER is None, reason=f"no Chromium binary ({', '.join(BROWSERS)}) on PATH: install Debian's chromium package "
    "(apt-get install chromium; .ci/run does) or set GLSMONAI_CHROMIUM")


#: run as ``python -c TRAMPOLINE IN OUT browser args...``: IN becomes descriptor 3 and OUT 4 (both copied
#: out of the way first, so neither overwrites the other), then the browser replaces this process
TRAMPOLINE = """import os, sys
ends = [os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2]))]
for fd, end in ((3, ends[0]), (4, ends[1])):
    os.dup2(end, fd)
    os.set_inheritable(fd, True)  # dup2 onto itself keeps the copy's close-on-exec flag
os.execv(sys.argv[3], sys.argv[3:])
"""


class Chromium:
    """A headless Chromium driven over the DevTools protocol on a pipe (fd 3 in, fd 4 out)."""

    def __init__(self, profile: Path, size: tuple[int, int] = (1200, 1600)) -> None:
        cmd_read, self._cmd = os.pipe()
        self._events, out_write = os.pipe()
        args = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--remote-debugging-pipe",
                "--no-first-run", "--no-default-browser-check", "--hide-scrollbars", "--mute-audio", f"--user-data-dir={profile}",
                f"--window-size={size[0]},{size[1]}"]
        # a small Python puts the two pipe ends on the descriptors the protocol uses, then becomes the browser
        # (dash cannot redirect descriptors above 9, and subprocess cannot place them itself)
        self.process = subprocess.Popen([sys.executable, "-c", TRAMPOLINE, str(cmd_read), str(out_write), *args],
                                        pass_fds=(cmd_read, out_write), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        os.close(cmd_read)
        os.close(out_write)
        self._messages: queue.Queue = queue.Queue()
        self._next_id = 0
        self.log: list[dict] = []  # every event of the page's session
        threading.Thread(target=self._read, daemon=True).start()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.send(method, session=True)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False}, session=True)

    def _read(self) -> None:
        buffer = b""
        with open(self._events, "rb", buffering=0) as stream:
            while chunk := stream.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for message in messages:
                    self._messages.put(json.loads(message))

    def _wait(self, match, timeout: float = 30.0) -> dict:
        while True:
            try:
                message = self._messages.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError("Chromium did not answer within 30 s") from None
            if message.get("sessionId") and "method" in message:
                self.log.append(message)
            if match(message):
                return message

    def send(self, method: str, params: dict | None = None, session: bool = False) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._cmd, json.dumps(message).encode() + b"\0")
        reply = self._wait(lambda m: m.get("id") == message["id"])
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def open(self, page: Path) -> None:
        """Load ``page`` and wait for its load event."""
        self.send("Page.navigate", {"url": page.resolve().as_uri()}, session=True)
        self._wait(lambda m: m.get("method") == "Page.loadEventFired")

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True},
                           session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self) -> np.ndarray:
        """The whole page as ``(rows, cols, 3)`` uint8."""
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=True)["data"]
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and failed loads seen so far."""
        found = []
        for event in self.log:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                found.append(f"console.{params['type']}: {[a.get('value') for a in params.get('args', [])]}")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
                entry = params["entry"]
                found.append(f"{entry['source']} {entry['level']}: {entry['text']} {entry.get('url', '')}")
        return found

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._cmd)


@pytest.fixture
def browser(tmp_path):
    chrome = Chromium(tmp_path / "profile")
    yield chrome
    chrome.close()


#: every <img> decoded (lazy ones made eager first), and where every link and image points
CHECK_IMAGES = """(async () => {
  const images = [...document.images];
  images.forEach(i => { i.loading = 'eager'; });
  await Promise.all(images.map(i => i.complete ? null : new Promise(r => { i.onload = r; i.onerror = r; })));
  return {images: images.map(i => [i.src, i.naturalWidth]), links: [...document.links].map(a => a.href)};
})()"""
#: what the tables hold
READ_TABLES = """({
  summary: [...document.querySelectorAll('#summary tbody tr')].map(r => r.cells[0].textContent),
  models: [...document.querySelectorAll('#models tbody tr')].map(r => r.cells[0].textContent),
  paired: document.querySelectorAll('#paired tbody tr').length,
  cases: [...document.querySelectorAll('#cases tbody tr.case')].map(r => [r.dataset.image, r.cells[1].textContent,
          r.querySelectorAll('img').length]),
  plot: document.querySelectorAll('#dice-plot rect').length,
  errorMap: document.querySelectorAll('#error-map').length,
})"""


def _file(url: str) -> Path:
    parsed = urlparse(url)
    assert parsed.scheme == "file", f"{url} is not a local file: the page must open without a network"
    return Path(unquote(parsed.path))


def _assert_loaded(result: dict, page: Path, n_images: int) -> None:
    """Every image decoded, every link and image a file in the page's tree or the predictions'."""
    assert len(result["images"]) == n_images
    for src, width in result["images"]:
        assert _file(src).is_file() and width > 0, f"{src} was not loaded by the browser"
    for href in result["links"]:
        assert _file(href).is_file(), f"link {href} points at no file"


def _assert_shows_contours(shot: np.ndarray) -> None:
    """A non-blank screenshot with the thumbnails' reference (green) and prediction (red) contours."""
    assert shot.std() > 20  # a blank or one-colour page has (almost) none
    for colour in (GREEN, RED):
        assert np.all(shot == np.asarray(colour, np.uint8), axis=-1).sum() > 20, f"no {colour} pixels on the page"


def _square(col: int, shape=(20, 20)) -> np.ndarray:
    """10 x 10 square at rows 5-14, columns ``col`` to ``col + 9``."""
    mask = np.zeros(shape, np.uint8)
    mask[5:15, col:col + 10] = 1
    return mask


#: reference file name -> (predicted mask, Dice against the square at column 5); names with characters
#: that HTML and URLs treat specially, two of them with an overlay that ``predict`` would have drawn
CASES = {
    "same.nii.gz": (_square(5), 1.0),
    "o'neil & <b>.nii.gz": (_square(7), 0.8),  # 80 of 100 pixels shared
    "c#1 %20.png": (_square(10), 0.5),
    "empty.png": (np.zeros((20, 20), np.uint8), 0.0),
}
WITH_OVERLAY = ("o'neil & <b>.nii.gz", "c#1 %20.png")


@pytest.fixture
def evaluated(tmp_path):
    """Literal predictions and references, an error map, and ``glsmonai evaluate`` run on them."""
    pred, labels = tmp_path / "predictions", tmp_path / "labels"
    rng = np.random.default_rng(0)
    for name, (mask, _) in CASES.items():
        stem, ext = (name[:-7], ".nii.gz") if name.endswith(".nii.gz") else (name[:-4], ".png")
        write_mask(labels / name, _square(5))
        write_mask(pred / f"{stem}_seg{ext}", mask)
        if name in WITH_OVERLAY:
            scan = rng.random((20, 20)) * 100 + 60
            save_overlay(pred / "overlays" / f"{stem}.png", scan, mask, _square(5), np.array([[5.0, 5.0]]), (6, 6))
    emap = tmp_path / "errormap.png"
    save_error_map(emap, rng.random((8, 32)))
    csv = tmp_path / "report" / "report.csv"
    rc = cli_main(["evaluate", "--pred", str(pred), "--labels", str(labels), "--csv", str(csv), "--error-map", str(emap)])
    assert rc == 0
    return csv


@needs_browser
def test_evaluate_page_in_chromium(evaluated, browser, tmp_path):
    page = evaluated.with_name("report.html")
    assert page.is_file() and evaluated.with_name("report_summary.json").is_file()
    browser.open(page)
    loaded = browser.evaluate(CHECK_IMAGES)
    tables = browser.evaluate(READ_TABLES)
    shot = browser.screenshot()
    assert browser.problems() == []
    _assert_loaded(loaded, page, n_images=len(CASES) + 1)  # a thumbnail per case and the error map
    assert tables["summary"][:3] == ["Dice", "IoU", "HD95 (px)"] and "TP (px)" in tables["summary"]
    # one row per case, worst Dice first; names shown as they are (escaped in the HTML, not interpreted)
    worst_first = sorted(CASES, key=lambda name: CASES[name][1])
    assert [c[0] for c in tables["cases"]] == worst_first
    assert [c[1] for c in tables["cases"]] == worst_first
    assert all(c[2] == 1 for c in tables["cases"])
    assert tables["plot"] >= 1 and tables["errorMap"] == 1
    # the full-size overlays: predict's where it drew them, the report's own for the others
    links = [_file(h) for h in loaded["links"]]
    assert {p.name for p in links if p.parent.name == "overlays" and p.parent.parent.name == "predictions"} == \
        {"o'neil & <b>.png", "c#1 %20.png"}
    assert sum(p.parent == evaluated.with_name("report_files") / "overlays" for p in links) == 2
    _assert_shows_contours(shot)
    Image.fromarray(shot).save(tmp_path / "evaluate_page.png")  # for a look when the test fails


@needs_browser
def test_compare_page_in_chromium(tmp_path, browser):
    """The compare page: the model table, the paired differences, a Dice lane per model and the panels."""
    rng = np.random.default_rng(1)
    rows = []
    for model, shift in (("unet", 0.0), ("gls", 0.05)):
        for i in range(6):
            rows.append({"model": model, "fold": i % 2, "image": f"case <{i}>.nii.gz", "group": f"p{i // 2}",
                         "dice": 0.7 + 0.04 * i + shift, "iou": 0.5, "hd95": 3.0, "key_dice": 0.6, "tp": 90, "fp": 10,
                         "fn": 12, "ref_px": 102, "pred_px": 100})
    cases = pd.DataFrame(rows)
    table = pd.DataFrame([{"model": m, "dice": cases.loc[cases["model"] == m, "dice"].mean(), "n_cases": 6}
                          for m in ("unet", "gls")])
    paired = pd.DataFrame([{"model": "gls", "reference": "unet", "metric": "dice", "mean": 0.05, "lo": 0.05, "hi": 0.05,
                            "n": 6, "n_groups": 3}])
    panel = tmp_path / "out" / "panels" / "case <0>.png"
    save_overlay(panel, rng.random((20, 44)), np.pad(_square(7), ((0, 0), (0, 24))), np.pad(_square(5), ((0, 0), (0, 24))))
    summary = compare_summary(cases, table, paired, {"datalist": "data/list & more.json"})
    page = write_compare_report(tmp_path / "out" / "report.html", summary, table, paired, cases,
                                panels={"case <0>.nii.gz": panel})
    browser.open(page)
    loaded = browser.evaluate(CHECK_IMAGES)
    tables = browser.evaluate(READ_TABLES)
    shot = browser.screenshot()
    assert browser.problems() == []
    _assert_loaded(loaded, page, n_images=1)
    assert tables["models"] == ["unet", "gls"] and tables["paired"] == 1
    assert [c[0] for c in tables["cases"]] == [f"case <{i}>.nii.gz" for i in range(6)]  # lowest mean Dice first
    assert [c[2] for c in tables["cases"]] == [1, 0, 0, 0, 0, 0]  # the one case with a panel
    assert tables["plot"] >= 2  # bars in both lanes
    _assert_shows_contours(shot)

