"""What ``predict`` writes into its output folder, per scan, and how ``evaluate`` and ``measure`` read it back.

::

    OUT/<name>_seg<mask ext>      the mask, with the scan's geometry (:func:`mask_path`)
    OUT/overlays/<name>.png       the overlay (:func:`overlay_name`; ``<name>_<format>.png`` when two scans share a stem)
    OUT/keypoints.csv             image, k, row, col, score, confidence, flag, source (:class:`KeypointTable`,
                                  :func:`read_keypoints_csv`, :func:`read_keypoint_prompts`)
    OUT/ensemble.json             a fold ensemble's member folders and options (several ``-m``; :data:`ENSEMBLE_FILE`)

The names and columns are written here once, for the writer (``glsmonai.inference.export_prediction``) and
the readers (scoring and measuring, which know nothing of prediction itself).
"""

from __future__ import annotations

import csv
import fcntl
import os
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from glsmonai.data.io import IMAGE_EXTENSIONS, mask_extension, split_ext
from glsmonai.data.pairs import prediction_path
from glsmonai.utils import atomic_write, stale_temporaries

__all__ = [
    "ENSEMBLE_FILE", "KEYPOINTS_FILE", "KEYPOINT_COLUMNS", "KeypointTable", "OVERLAYS_DIR", "find_overlay", "keypoint_rows",
    "mask_path", "overlay_name", "overlay_names", "read_keypoints_csv", "KEYPOINT_SOURCES", "read_keypoint_prompts",
]

#: the keypoint table of a prediction folder
KEYPOINTS_FILE = "keypoints.csv"
#: its columns: scan file name, keypoint index, position in original pixels, heatmap score, confidence, ok | unsure,
#: where the keypoint came from (:data:`KEYPOINT_SOURCES`; last, so that tables of 0.4.0 and older, without it, read
#: as tables whose keypoints all came from the model, and readers of the first seven columns read new tables)
KEYPOINT_COLUMNS: tuple[str, ...] = ("image", "k", "row", "col", "score", "confidence", "flag", "source")
#: where a keypoint came from: the model's heatmap peak, or given (``predict --keypoints``, a reviewer's correction)
KEYPOINT_SOURCES: tuple[str, ...] = ("model", "user")
#: the folder of the overlays
OVERLAYS_DIR = "overlays"
#: what a fold ensemble's run records about its models: ``{"members": [model folders], "stage", "options"}``
ENSEMBLE_FILE = "ensemble.json"


def mask_path(output_dir: str | os.PathLike, scan: str | os.PathLike) -> Path:
    """Where the mask of ``scan`` goes: ``<output_dir>/<stem>_seg<mask ext>`` (:func:`~glsmonai.data.pairs.prediction_path`)."""
    return prediction_path(output_dir, *split_ext(scan))


def overlay_name(scan: str | os.PathLike, shared_stem: bool = False) -> str:
    """The ``overlays/`` file name of a scan: ``<stem>.png``, or with ``shared_stem`` (another scan of the run has
    its stem: ``a.nii.gz`` and ``a.png`` would overwrite each other's overlay) ``<stem>_<format>.png``
    (``a_nii_gz.png``)."""
    stem, ext = split_ext(scan)
    return f"{stem}_{ext.lstrip('.').replace('.', '_').lower()}.png" if shared_stem else f"{stem}.png"


def overlay_names(scans: Sequence[Path]) -> dict[Path, str]:
    """:func:`overlay_name` of each scan of a run (a stem two scans share gets the format in both names)."""
    stems = [split_ext(p)[0] for p in scans]
    return {path: overlay_name(path, stems.count(stem) > 1) for path, stem in zip(scans, stems)}


def find_overlay(pred_dir: str | os.PathLike, pred_path: str | os.PathLike) -> Path | None:
    """The overlay ``predict`` drew beside the mask ``pred_path`` in ``pred_dir`` (``None`` when there is none).

    The scan's own format is not known from its mask (a PNG mask may come from a PNG or a JPEG scan), so each
    format whose mask has this extension is tried, after the plain ``<stem>.png``.
    """
    stem, ext = split_ext(pred_path)
    stem = stem.removesuffix("_seg")
    ext = ext.lower()
    formats = [ext, *(e for e in IMAGE_EXTENSIONS if e != ext and mask_extension(e) == ext)]
    folder = Path(pred_dir) / OVERLAYS_DIR
    for candidate in (overlay_name(f"{stem}{ext}"), *(overlay_name(f"{stem}{f}", shared_stem=True) for f in formats)):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def keypoint_rows(
    name: str, keypoints: np.ndarray, scores: np.ndarray, confidence: np.ndarray, unsure: np.ndarray,
    source: Sequence[str] | None = None,
) -> list[tuple]:
    """A scan's rows of ``keypoints.csv`` (:data:`KEYPOINT_COLUMNS`): positions to 1/1000 pixel, score and
    confidence to 1/10000, flag ``unsure`` or ``ok``, source ``model`` or ``user``.

    Args:
        name: the scan's file name.
        keypoints: ``(K, 2)`` ``[row, col]`` in original pixels.
        scores, confidence, unsure: ``(K,)`` each.
        source: ``(K,)`` :data:`KEYPOINT_SOURCES`; ``None``: every keypoint the model's.
    """
    source = ["model"] * len(keypoints) if source is None else [str(s) for s in source]
    return [
        (name, k, round(float(r), 3), round(float(c), 3), round(float(s), 4), round(float(q), 4),
         "unsure" if u else "ok", origin)
        for k, ((r, c), s, q, u, origin) in enumerate(zip(keypoints, scores, confidence, unsure, source))
    ]


class KeypointTable:
    """``keypoints.csv``, shared safely by concurrent ``predict`` runs and kept as the scans are done.

    Every change happens under an exclusive lock on a sibling lock file (``fcntl.flock``), so two
    processes writing into one output folder (two parts of a sharded run, say) never lose each other's
    rows. At the start, the rows of the scans this run is about to predict are dropped (they are being
    redone); each finished scan's rows are then appended in one write. A scan's rows are written after
    its mask and overlay, so a scan with rows in the table has all its outputs: ``--continue`` reads that.
    """

    COLUMNS = KEYPOINT_COLUMNS

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(f".{path.name}.lock")

    @contextmanager
    def _locked(self):
        with open(self.lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> list[list[str]]:
        """The table's data rows (a row cut short by a kill is dropped); a table written before the ``source``
        column gets ``model`` in it."""
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as handle:
            rows = list(csv.reader(handle))
        width = len(rows[0]) if rows and rows[0][:1] == ["image"] else len(self.COLUMNS)
        pad = ["model"] * (len(self.COLUMNS) - width) if width < len(self.COLUMNS) else []
        return [row + pad for row in rows[1:] if len(row) == width]

    def _write(self, rows: list[Sequence]) -> None:
        """Replace the table by ``rows`` (under the lock, atomically)."""

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as handle:
                csv.writer(handle).writerows([list(self.COLUMNS), *rows])

        atomic_write(self.path, write)

    def done(self) -> set[str]:
        """Names of the scans with rows in the table."""
        with self._locked():
            return {row[0] for row in self._read()}

    def start(self, redo: set[str]) -> None:
        """Drop the rows of the scans named in ``redo``; create the table if there is none."""
        with self._locked():
            # every rewrite of the table holds this lock: a temporary of it found now is a killed run's
            for leftover in stale_temporaries(self.path.parent, {self.path.name}):
                leftover.unlink(missing_ok=True)
            self._write([row for row in self._read() if row[0] not in redo])

    def add(self, rows: Iterable[Sequence]) -> None:
        """Append one scan's rows (:func:`keypoint_rows`) in one write."""
        with self._locked(), open(self.path, "a", newline="") as handle:
            csv.writer(handle).writerows(rows)

    def replace(self, name: str, rows: Iterable[Sequence]) -> None:
        """Put ``rows`` in place of the rows of the scan ``name`` in one atomic rewrite (a reviewer's
        correction: a killed process leaves the old table or the new one, never a mix)."""
        with self._locked():
            self._write([*(row for row in self._read() if row[0] != name), *rows])

    def rows(self) -> list[list[str]]:
        """The table's data rows, as strings, in the order of :data:`KEYPOINT_COLUMNS`."""
        with self._locked():
            return self._read()


def _keypoint_table(path: str | os.PathLike) -> pd.DataFrame:
    """A keypoint table (``keypoints.csv``'s format) read, with its ``image, k, row, col`` columns checked.

    Raises:
        ValueError: the file cannot be read or lacks one of those columns.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise ValueError(f"{path}: cannot be read as a keypoint table ({str(err).splitlines()[0]})") from None
    missing = [c for c in KEYPOINT_COLUMNS[:4] if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (expected image, k, row, col)")
    return table


def read_keypoints_csv(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{scan stem: ((K, 2) [row, col], (K,) unsure)}`` from the ``keypoints.csv`` that ``predict`` writes.

    Raises:
        ValueError: the file cannot be read or lacks the ``image, k, row, col`` columns.
    """
    table = _keypoint_table(path)
    out = {}
    for image, group in table.groupby("image"):
        group = group.sort_values("k")
        unsure = (group["flag"].astype(str) == "unsure").to_numpy() if "flag" in group else np.zeros(len(group), bool)
        out[split_ext(str(image))[0]] = (group[["row", "col"]].to_numpy(float), unsure)
    return out


def read_keypoint_prompts(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``{scan stem: (K, 2) [row, col]}`` keypoints given to ``predict --keypoints``, in original pixels.

    The table is ``keypoints.csv``'s format (its ``image, k, row, col`` columns; the others are not read), so a
    prediction folder's table, corrected or not, can be given back. ``K`` is a scan's largest ``k`` + 1; the
    keypoints a scan lacks are NaN rows (the model finds those itself).

    Raises:
        ValueError: the file cannot be read, lacks a column, or holds a ``k`` that is not a whole number
            from 0, a position that is not a finite number, or a ``(scan, k)`` twice (each named).
    """
    path, table = Path(path), _keypoint_table(path)
    k = pd.to_numeric(table["k"], errors="coerce").to_numpy(float)
    position = table[["row", "col"]].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    bad = ~np.isfinite(k) | (k < 0) | (np.nan_to_num(k) % 1 != 0) | ~np.isfinite(position).all(axis=1)
    if bad.any():
        line = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}, line {line + 2}: k must be a whole number from 0 and row, col finite numbers, "
                         f"got {table.iloc[line][list(KEYPOINT_COLUMNS[:4])].tolist()}")
    out: dict[str, np.ndarray] = {}
    for image, group in table.assign(k=k.astype(int)).groupby("image"):
        twice = group["k"][group["k"].duplicated()].tolist()
        if twice:
            raise ValueError(f"{path}: {image} has keypoint k = {twice[0]} more than once")
        points = np.full((int(group["k"].max()) + 1, 2), np.nan)
        points[group["k"].to_numpy()] = group[["row", "col"]].to_numpy(float)
        out[split_ext(str(image))[0]] = points
    return out
