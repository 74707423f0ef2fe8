"""``glsmonai review``: a local web app to review and correct a prediction folder in the browser.

:class:`Review` is the app without the web: the scans worst first, a scan held open
(:class:`~glsmonai.inference.session.ScanSession`) whose keypoints move one at a time, undo, accept, the
measures. :mod:`glsmonai.review.web` puts it behind a FastAPI app.

A request that cannot be served raises :class:`UnknownScan` (no such scan) or ``ValueError`` (a keypoint off the
scan, not the model's), and changes nothing.
"""

from __future__ import annotations

import io
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from glsmonai.data.io import read_image
from glsmonai.keypoints import iris_roots, lv_apex_base
from glsmonai.measure import TASKS, measure_label
from glsmonai.measure.units import spacing_of
from glsmonai.review.folder import STATES, ReviewFolder, count_components, dice, read_reference

logger = logging.getLogger(__name__)

__all__ = ["STATIC_FILES", "Review", "UnknownScan", "contour_paths", "static_file", "task_of"]

#: the viewer's files (package data), name -> media type; nothing else is served as a file
STATIC_FILES: dict[str, str] = {"index.html": "text/html; charset=utf-8", "review.js": "text/javascript; charset=utf-8",
                                "review.css": "text/css; charset=utf-8"}


class UnknownScan(LookupError):
    """A scan name the folder under review does not hold (answered 404)."""


def task_of(num_keypoints: int, task: str | None = None) -> str | None:
    """The measure task: ``task`` when given, else by the keypoint count (iris 2, LV 3), else ``None``."""
    if task is not None:
        if task not in TASKS:
            raise ValueError(f"unknown measure task {task!r}; known: {', '.join(TASKS)}")
        return task
    return next((name for name, k in TASKS.items() if k == num_keypoints), None)


@dataclass
class _Doubt:
    """What the model knows about itself on one scan (and its Dice, with a reference)."""

    min_confidence: float | None
    unsure: int
    components: int
    dice: float | None

    def score(self, expected: int | None) -> float:
        """Higher is worse: unsure keypoints, a wrong number of pieces, then low confidence."""
        wrong = expected is not None and self.components != expected
        return self.unsure + float(wrong) + (1.0 - (1.0 if self.min_confidence is None else self.min_confidence))


@dataclass
class _Open:
    """A scan held open: its session, the moves that can be undone, and what was computed for its current state."""

    session: object
    reference: np.ndarray | None
    matches_saved: bool
    history: list[tuple[int, list[float] | None]] = field(default_factory=list)
    version: int = 0
    measures: dict | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class Review:
    """The review of one prediction folder with one predictor.

    Args:
        folder: the folder under review.
        predictor: the model that predicted it (a :class:`~glsmonai.inference.Predictor`, ``engine`` torch).
        reviewer: who reviews (``review.csv``'s ``reviewer``).
        task: the measures (``iris``, ``lv``; ``None``: by the keypoint count, else none).
        max_open: scans held open at once (the least recently used is closed).
    """

    def __init__(self, folder: ReviewFolder, predictor, reviewer: str, task: str | None = None, max_open: int = 4) -> None:
        self.folder, self.predictor, self.reviewer = folder, predictor, reviewer
        self.num_keypoints = int(getattr(predictor.network, "num_keypoints", 0) or 0)
        self.task = task_of(self.num_keypoints, task)
        settings = predictor.folder.settings
        self.expected_components, self.label_value = settings.num_components, settings.label_value
        self.max_open = max_open
        self._open: OrderedDict[str, _Open] = OrderedDict()
        self._lock = threading.Lock()  # guards the two caches; each open scan has its own lock
        self._images: OrderedDict[str, bytes] = OrderedDict()
        self._doubt = {name: self._doubt_of(name) for name in folder.scans}
        logger.info("review of %d scans in %s (%s)", len(folder.scans), folder.path, self.task or "no measures")

    # ------------------------------------------------------------------------------------------- the list

    def _entry(self, name: str):
        entry = self.folder.scans.get(name) if isinstance(name, str) else None
        if entry is None:
            raise UnknownScan(f"unknown scan {name!r}: not one of the {len(self.folder.scans)} scans under review")
        return entry

    def _doubt_of(self, name: str) -> _Doubt:
        entry = self.folder.scans[name]
        model = entry.model_keypoints()
        try:
            mask = read_image(self.folder.current_mask(name))[0] > 0
        except (OSError, ValueError) as err:
            logger.warning("%s: %s", entry.mask, err)
            mask = np.zeros((1, 1), bool)
        reference = read_reference(entry, self.label_value)
        score = dice(mask, reference) if reference is not None and reference.shape == mask.shape else None
        return _Doubt(float(model["confidence"].min()) if len(model["confidence"]) else None, int(model["unsure"].sum()),
                      count_components(mask), score)

    def scans(self) -> dict:
        """The scans worst first (most unsure keypoints, a wrong number of pieces, lowest keypoint confidence),
        each with its state, and the progress."""
        latest = self.folder.table.latest()
        rows = []
        for name in self.folder.scans:
            doubt, decision = self._doubt[name], latest.get(name, {})
            rows.append({"name": name, "state": decision.get("state", STATES[0]), "reviewer": decision.get("reviewer"),
                         "time": decision.get("time"), "doubt": round(doubt.score(self.expected_components), 4),
                         "min_confidence": doubt.min_confidence, "unsure": doubt.unsure, "components": doubt.components,
                         "expected_components": self.expected_components,
                         "dice": None if doubt.dice is None or np.isnan(doubt.dice) else round(doubt.dice, 4)})
        rows.sort(key=lambda row: (-row["doubt"], row["name"]))
        counts = {state: sum(row["state"] == state for row in rows) for state in STATES}
        return {"scans": rows, "progress": {"reviewed": counts["accepted"] + counts["corrected"], "total": len(rows),
                                            **counts}, "task": self.task, "reviewer": self.reviewer,
                "folder": str(self.folder.path)}

    # -------------------------------------------------------------------------------------------- a scan

    def _opened(self, name: str) -> _Open:
        """The scan held open (opened now if it is not: a full prediction, at its corrected or drafted keypoints)."""
        entry = self._entry(name)
        with self._lock:
            held = self._open.get(name)
            if held is not None:
                self._open.move_to_end(name)
                return held
        image, geometry = read_image(entry.image)
        draft = self.folder.read_draft(name)
        given = self.folder.given_keypoints(name, self.num_keypoints)
        session = self.predictor.session(image, geometry, given if self.num_keypoints else None)
        saved = read_image(entry.mask)[0] > 0
        model_own = np.isnan(given).all()
        matches = bool(saved.shape == session.prediction.mask.shape and np.array_equal(saved, session.prediction.mask > 0))
        if model_own and not matches:
            logger.warning("%s: the model's mask in %s differs from this model's prediction (other -m or options than "
                           "predict's?)", name, entry.mask)
        held = _Open(session, read_reference(entry, self.label_value), matches if model_own else True,
                     history=list(draft["history"]) if draft else [])
        with self._lock:
            self._open[name] = held
            while len(self._open) > self.max_open:
                self._open.popitem(last=False)
        return held

    def state(self, name: str) -> dict:
        """Everything the viewer draws for scan ``name``: keypoints, windows, the mask's contour, its state."""
        held = self._opened(name)
        with held.lock:
            return self._state(name, held)

    def _state(self, name: str, held: _Open) -> dict:
        session, entry = held.session, self.folder.scans[name]
        prediction = session.prediction
        decision = self.folder.table.latest().get(name, {})
        model = entry.model_keypoints()
        keypoints = [{"k": k, "row": float(r), "col": float(c), "source": str(prediction.source[k]),
                      "score": float(prediction.scores[k]), "confidence": float(prediction.confidence[k]),
                      "unsure": bool(prediction.unsure[k])} for k, (r, c) in enumerate(prediction.keypoints)]
        names = list(self.scans_in_order())
        return {
            "name": name, "index": names.index(name), "total": len(names), "shape": list(session.shape),
            "state": decision.get("state", STATES[0]), "reviewer": decision.get("reviewer"), "time": decision.get("time"),
            "version": held.version, "keypoints": keypoints,
            "model_keypoints": [[float(r), float(c)] for r, c in model["points"]],
            "window": None if prediction.window_size is None else [float(w) for w in prediction.window_size],
            "contours": contour_paths(prediction.mask), "changed": self._changed(name, session),
            "can_undo": bool(held.history), "matches_saved": held.matches_saved,
            "dice": None if held.reference is None or held.reference.shape != prediction.mask.shape
            else _rounded(dice(prediction.mask, held.reference)),
            "components": count_components(prediction.mask), "expected_components": self.expected_components,
        }

    def scans_in_order(self) -> list[str]:
        """The scan names in the list's order (worst first)."""
        return [row["name"] for row in self.scans()["scans"]]

    def _changed(self, name: str, session) -> str:
        """What the reviewer changed on the scan: its moved keypoints, from where the model put them."""
        model = self.folder.scans[name].model_keypoints()["points"]
        moves = []
        for k, point in enumerate(session.given):
            if np.isnan(point).any():
                continue
            was = f"({model[k][0]:.1f}, {model[k][1]:.1f})" if k < len(model) else "(model)"
            moves.append(f"keypoint {k} {was} -> ({point[0]:.1f}, {point[1]:.1f})")
        return "; ".join(moves)

    def move(self, name: str, k: object, row: object, col: object) -> dict:
        """Move keypoint ``k`` of scan ``name`` to ``(row, col)`` (original pixels) and re-segment its window.

        Raises:
            UnknownScan: no such scan.
            ValueError: no keypoint ``k``, or the point is off the scan (nothing changes).
        """
        held = self._opened(name)
        if isinstance(k, bool) or not isinstance(k, int):
            raise ValueError(f"k must be a keypoint index (an integer), got {k!r}")
        with held.lock:
            session = held.session
            if not 0 <= k < self.num_keypoints:
                raise ValueError(f"no keypoint {k}: the model has {self.num_keypoints} (0 .. {self.num_keypoints - 1})")
            previous = session.given[k]
            session.resegment(k, (row, col))  # raises ValueError (off the scan) before it changes anything
            held.history.append((k, None if np.isnan(previous).any() else [float(previous[0]), float(previous[1])]))
            return self._changed_state(name, held)

    def undo(self, name: str) -> dict:
        """Undo the last move on scan ``name`` (nothing to undo: the state as it is)."""
        held = self._opened(name)
        with held.lock:
            if held.history:
                k, previous = held.history[-1]
                held.session.resegment(k, previous)
                held.history.pop()
                return self._changed_state(name, held)
            return self._state(name, held)

    def _changed_state(self, name: str, held: _Open) -> dict:
        held.version += 1
        held.measures = None
        self.folder.write_draft(name, held.session.given, held.history)
        return self._state(name, held)

    def accept(self, name: str) -> dict:
        """Accept scan ``name`` as it is now: ``corrected`` (its mask and keypoints written to ``corrected/``) when
        keypoints were moved, else ``accepted``; a row in ``review.csv`` either way. Returns the new state."""
        held = self._opened(name)
        with held.lock:
            changed = self._changed(name, held.session)
            row = self.folder.accept(name, held.session.prediction, changed, self.reviewer)
            logger.info("%s: %s by %s%s", name, row["state"], row["reviewer"], f" ({changed})" if changed else "")
            self._doubt[name] = self._doubt_of(name)
            return self._state(name, held)

    def measures(self, name: str) -> dict:
        """``glsmonai measure``'s measures of scan ``name`` as it is now (its keypoints; unsure ones by the rule)."""
        held = self._opened(name)
        with held.lock:
            if held.measures is None or held.measures.get("version") != held.version:
                held.measures = {"version": held.version, "task": self.task,
                                 **self._measure(held.session.prediction, held.session.geometry)}
            return held.measures

    def _measure(self, prediction, geometry) -> dict:
        if self.task is None:
            return {"measures": {}, "note": "no measures for this model (give --task iris|lv)"}
        points = np.array(prediction.keypoints, dtype=np.float64)
        try:
            if len(points) != TASKS[self.task]:
                points = None
            elif prediction.unsure.any():
                rule = iris_roots(prediction.mask > 0) if self.task == "iris" else lv_apex_base(prediction.mask)
                points[prediction.unsure] = rule[prediction.unsure]
            values, _ = measure_label(self.task, prediction.mask, points, spacing_of(geometry) if geometry else None)
        except ValueError as err:
            return {"measures": {}, "note": f"not measurable: {err}"}
        return {"measures": {key: _rounded(value) for key, value in values.items()}}

    def image_png(self, name: str) -> bytes:
        """The scan as an 8-bit PNG of its own size (its 0.5th to 99.5th percentiles to black and white)."""
        entry = self._entry(name)
        with self._lock:
            if name in self._images:
                self._images.move_to_end(name)
                return self._images[name]
        from PIL import Image

        image = read_image(entry.image)[0]
        low, high = np.percentile(image, (0.5, 99.5))
        grey = np.clip((image - low) / max(float(high - low), 1e-6) * 255, 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(grey).save(buffer, format="PNG", compress_level=1)
        data = buffer.getvalue()
        with self._lock:
            self._images[name] = data
            while len(self._images) > 2 * self.max_open:
                self._images.popitem(last=False)
        return data


def _rounded(value: float) -> float | None:
    """A JSON-safe number to 4 significant digits after the point (``None`` for NaN)."""
    value = float(value)
    return None if not np.isfinite(value) else round(value, 4)


def contour_paths(mask: np.ndarray, decimals: int = 1) -> list[str]:
    """The outlines of a 0/1 mask as SVG path data, in the scan's pixel frame (pixel ``[r, c]`` covers ``x`` from
    ``c`` to ``c + 1``, ``y`` from ``r`` to ``r + 1``), each closed."""
    from skimage.measure import find_contours

    padded = np.pad(np.asarray(mask) > 0, 1).astype(np.float32)
    paths = []
    for contour in find_contours(padded, 0.5):
        points = contour - 1 + 0.5  # the padding off, pixel centres at + 0.5
        text = " L".join(f"{c:.{decimals}f} {r:.{decimals}f}" for r, c in points)
        paths.append(f"M{text} Z")
    return paths


def static_file(name: str) -> bytes:
    """One of the viewer's files (:data:`STATIC_FILES`), from the package."""
    return resources.files("glsmonai.review").joinpath("static", name).read_bytes()
