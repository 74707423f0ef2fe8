"""A prediction folder as a reviewer sees it: its scans, what the model knows about each, and the review's files.

What ``glsmonai review`` writes, beside the model's own outputs (never overwritten)::

    PRED_DIR/review.csv                         image, state, reviewer, changed, time: one row per decision
    PRED_DIR/corrected/<name>_seg<mask ext>     a corrected mask, with the scan's geometry
    PRED_DIR/corrected/keypoints.csv            its keypoints (keypoints.csv's format; source user where moved)
    PRED_DIR/corrected/.drafts/<name>.json      keypoints moved but not yet accepted (gone once accepted)

Every file is written whole under a temporary name and renamed (:func:`~glsmonai.utils.atomic_write`), and the
two tables change only under a lock (``fcntl.flock`` on a sibling lock file), so a killed server, two tabs on
one scan, or two servers on one folder lose no decision. A scan's state is its latest row in ``review.csv``
(none: ``to review``); an accepted scan's mask is the model's own, a corrected scan's the one in ``corrected/``.
"""

from __future__ import annotations

import csv
import fcntl
import getpass
import json
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy import ndimage

from glsmonai.data.datalist import scan_list
from glsmonai.data.io import find_partner, list_images, read_image, split_ext, write_mask
from glsmonai.data.pairs import foreground
from glsmonai.data.prediction_folder import KEYPOINTS_FILE, KeypointTable, keypoint_rows, mask_path
from glsmonai.utils import atomic_write

logger = logging.getLogger(__name__)

__all__ = ["CORRECTED_DIR", "REVIEW_COLUMNS", "REVIEW_FILE", "STATES", "ReviewFolder", "ReviewTable", "ScanEntry",
           "count_components", "dice", "read_reference", "reviewer_name"]

#: the review table of a prediction folder
REVIEW_FILE = "review.csv"
#: its columns: the scan's file name, its state, who decided, what changed, when (ISO 8601, UTC)
REVIEW_COLUMNS: tuple[str, ...] = ("image", "state", "reviewer", "changed", "time")
#: a scan's states: no decision yet, the model's outputs accepted, corrected outputs accepted
STATES: tuple[str, ...] = ("to review", "accepted", "corrected")
#: the folder of the corrected outputs
CORRECTED_DIR = "corrected"
#: the folder of the drafts (moves not yet accepted) inside it
DRAFTS_DIR = ".drafts"


def reviewer_name(given: str | None = None) -> str:
    """``given``, else the operating-system user (``getpass.getuser``), else ``unknown``."""
    if given:
        return given
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive ``fcntl`` lock on the hidden sibling ``.<name>.lock`` of ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ReviewTable:
    """``review.csv``: one row per decision, appended under a lock by an atomic rewrite (never a half row)."""

    COLUMNS = REVIEW_COLUMNS

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _read(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as handle:
            return [row for row in csv.DictReader(handle) if row.get("image") and row.get("state") in STATES]

    def rows(self) -> list[dict[str, str]]:
        """Every decision, oldest first."""
        with _locked(self.path):
            return self._read()

    def latest(self) -> dict[str, dict[str, str]]:
        """``{scan file name: its latest row}``."""
        return {row["image"]: row for row in self.rows()}

    def record(self, image: str, state: str, reviewer: str, changed: str) -> dict[str, str]:
        """Append a decision (its time: now, UTC); the row written."""
        if state not in STATES:
            raise ValueError(f"unknown review state {state!r}; states: {list(STATES)}")
        row = {"image": image, "state": state, "reviewer": reviewer, "changed": changed,
               "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        with _locked(self.path):
            rows = [*self._read(), row]

            def write(tmp: Path) -> None:
                with open(tmp, "w", newline="") as handle:
                    writer = csv.DictWriter(handle, fieldnames=list(self.COLUMNS))
                    writer.writeheader()
                    writer.writerows(rows)

            atomic_write(self.path, write)
        return row


@dataclass
class ScanEntry:
    """One scan of the folder under review.

    Attributes:
        name: the scan's file name (its key in the tables).
        image: the scan file.
        mask: the model's mask in the prediction folder.
        label: its reference, or ``None``.
        model_rows: its rows of the model's ``keypoints.csv`` (strings, in the order of
            :data:`~glsmonai.data.prediction_folder.KEYPOINT_COLUMNS`).
    """

    name: str
    image: Path
    mask: Path
    label: Path | None = None
    model_rows: list[list[str]] = field(default_factory=list)

    @property
    def stem(self) -> str:
        return split_ext(self.name)[0]

    def model_keypoints(self) -> dict[str, np.ndarray]:
        """The model's keypoints from its table: ``points`` ``(K, 2)``, ``score``, ``confidence`` ``(K,)``, ``unsure``
        ``(K,)`` bool (empty for a model without keypoints)."""
        rows = sorted(self.model_rows, key=lambda row: int(row[1]))
        return {"points": np.array([[float(r[2]), float(r[3])] for r in rows]).reshape(-1, 2),
                "score": np.array([float(r[4]) for r in rows]), "confidence": np.array([float(r[5]) for r in rows]),
                "unsure": np.array([r[6] == "unsure" for r in rows], dtype=bool)}


class ReviewFolder:
    """The prediction folder ``pred_dir`` under review, with its scans and references.

    Args:
        pred_dir: ``predict``'s output folder (masks ``<name>_seg<ext>`` and ``keypoints.csv``).
        images: the scans predicted: their folder, or a datalist JSON (its ``split``).
        labels: references: a folder of ``<name>.<ext>``, or a datalist JSON; ``None``: the datalist's labels
            when ``images`` is one, else none.
        split, dataset_dir: the datalist split and what its paths are relative to.

    Raises:
        FileNotFoundError: a folder that does not exist, or no scan with both a mask and an image.
    """

    def __init__(self, pred_dir: str | os.PathLike, images: str | os.PathLike, labels: str | os.PathLike | None = None,
                 split: str = "testing", dataset_dir: str | os.PathLike | None = None) -> None:
        self.path = Path(pred_dir).resolve()
        if not self.path.is_dir():
            raise FileNotFoundError(f"prediction folder not found: {self.path}")
        scans = scan_list(images, split, dataset_dir)
        references = {split_ext(image)[0]: label for image, label in scans if label is not None}
        label_files = None
        if labels is not None and Path(labels).is_dir():
            label_files = list_images(labels)
        elif labels is not None:
            references = {split_ext(image)[0]: label for image, label in scan_list(labels, split, dataset_dir) if label}
        rows: dict[str, list[list[str]]] = {}
        for row in KeypointTable(self.path / KEYPOINTS_FILE).rows() if (self.path / KEYPOINTS_FILE).is_file() else []:
            rows.setdefault(row[0], []).append(row)
        self.scans: dict[str, ScanEntry] = {}
        for image, _ in scans:
            mask = mask_path(self.path, image)
            if not mask.is_file():
                continue
            stem, ext = split_ext(image)
            label = find_partner(label_files, stem, ext) if label_files is not None else references.get(stem)
            self.scans[image.name] = ScanEntry(image.name, Path(image), mask, label, rows.get(image.name, []))
        if not self.scans:
            raise FileNotFoundError(f"{self.path}: no scan of {images} has a mask <name>_seg.<ext> here")
        missing = len(scans) - len(self.scans)
        if missing:
            logger.info("%d scan(s) of %s have no mask in %s: not reviewed", missing, images, self.path)
        self.table = ReviewTable(self.path / REVIEW_FILE)
        self.corrected_keypoints = KeypointTable(self.path / CORRECTED_DIR / KEYPOINTS_FILE)

    def corrected_mask(self, name: str) -> Path:
        """Where the corrected mask of scan ``name`` goes (``corrected/<stem>_seg<mask ext>``)."""
        return mask_path(self.path / CORRECTED_DIR, name)

    def _draft(self, name: str) -> Path:
        return self.path / CORRECTED_DIR / DRAFTS_DIR / f"{name}.json"

    def given_keypoints(self, name: str, k: int) -> np.ndarray:
        """The keypoints given for scan ``name`` so far, ``(K, 2)`` (NaN: the model's own): the draft's, else the
        ``user`` rows of its corrected table (when its latest decision is ``corrected``), else none."""
        draft = self.read_draft(name)
        if draft is not None:
            return draft["given"]
        given = np.full((k, 2), np.nan)
        if self.table.latest().get(name, {}).get("state") == "corrected":
            for row in self.corrected_keypoints.rows():
                if row[0] == name and row[7] == "user" and int(row[1]) < k:
                    given[int(row[1])] = float(row[2]), float(row[3])
        return given

    def read_draft(self, name: str) -> dict | None:
        """A draft's ``given`` ``(K, 2)`` and ``history`` (``[k, [row, col] or None]`` moves), or ``None``."""
        path = self._draft(name)
        try:
            content = json.loads(path.read_text())
            given = np.array([[np.nan, np.nan] if p is None else p for p in content["given"]], dtype=np.float64)
            return {"given": given.reshape(-1, 2), "history": [(int(k), p) for k, p in content.get("history", [])]}
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as err:
            logger.warning("%s: unreadable draft, ignored (%s)", path, err)
            return None

    def write_draft(self, name: str, given: np.ndarray, history: Sequence[tuple[int, object]]) -> None:
        """Keep the keypoints moved on scan ``name`` (and how) until they are accepted."""
        text = json.dumps({"given": [None if np.isnan(p).any() else [float(p[0]), float(p[1])] for p in given],
                           "history": [[int(k), p] for k, p in history]})
        atomic_write(self._draft(name), lambda tmp: tmp.write_text(text))

    def drop_draft(self, name: str) -> None:
        self._draft(name).unlink(missing_ok=True)

    def accept(self, name: str, prediction, changed: str, reviewer: str) -> dict[str, str]:
        """Record a decision on scan ``name``: ``corrected`` when ``changed`` says what changed (the corrected mask,
        then its keypoints, are written first: a scan recorded ``corrected`` has both), else ``accepted`` (a
        corrected mask left from an earlier decision is removed). Returns the ``review.csv`` row.

        Args:
            name: the scan's file name.
            prediction: its current :class:`~glsmonai.inference.Prediction` (mask, keypoints, source).
            changed: what the reviewer changed (empty: nothing).
            reviewer: who decided.
        """
        entry = self.scans[name]
        with _locked(self.path / REVIEW_FILE):
            if changed:
                write_mask(self.corrected_mask(name), prediction.mask, prediction.geometry)
                self.corrected_keypoints.replace(name, keypoint_rows(
                    name, prediction.keypoints, prediction.scores, prediction.confidence, prediction.unsure,
                    prediction.source))
            else:
                self.corrected_mask(name).unlink(missing_ok=True)
                if self.corrected_keypoints.path.is_file():
                    self.corrected_keypoints.replace(name, [])
        row = self.table.record(entry.name, "corrected" if changed else "accepted", reviewer, changed)
        self.drop_draft(name)
        return row

    def current_mask(self, name: str) -> Path:
        """The mask that stands for scan ``name``: the corrected one when its latest decision is ``corrected``."""
        if self.table.latest().get(name, {}).get("state") == "corrected" and self.corrected_mask(name).is_file():
            return self.corrected_mask(name)
        return self.scans[name].mask


def count_components(mask: np.ndarray) -> int:
    """Connected pieces of a 0/1 mask (8-connected, as the predictor's post-processing counts them)."""
    return int(ndimage.label(np.asarray(mask) > 0, structure=np.ones((3, 3), bool))[1])


def dice(mask: np.ndarray, reference: np.ndarray) -> float:
    """Dice of two 0/1 masks (NaN when both are empty)."""
    a, b = np.asarray(mask) > 0, np.asarray(reference) > 0
    total = int(a.sum() + b.sum())
    return float(2 * np.logical_and(a, b).sum() / total) if total else float("nan")


def read_reference(entry: ScanEntry, label_value: int | None) -> np.ndarray | None:
    """The reference of a scan as a 0/1 mask, or ``None`` (none given, or unreadable: logged)."""
    if entry.label is None:
        return None
    try:
        return foreground(np.rint(read_image(entry.label)[0]), label_value).astype(np.uint8)
    except (OSError, ValueError) as err:
        logger.warning("%s: reference unreadable (%s)", entry.label, err)
        return None
