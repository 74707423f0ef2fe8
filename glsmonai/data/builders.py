"""Datalist builders: CAMUS (both releases) and any folder of images with labels.

Splits are by group (the patient for CAMUS; for folders the group each entry is given, by default its
file), never by frame of a patient, seeded, and written as decathlon JSON with a ``"task"`` block and a
``"group"`` per entry (see :mod:`glsmonai.data.datalist`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from glsmonai.data.datalist import write_datalist
from glsmonai.data.io import list_images, read_image, split_ext
from glsmonai.keypoints import get_rule, rule_keypoint_count

logger = logging.getLogger(__name__)

__all__ = ["CAMUS_TARGETS", "find_camus_frames", "camus_datalist", "folder_datalist", "split_groups"]

#: ``--target`` name -> CAMUS label value
CAMUS_TARGETS: dict[str, int] = {"lv_endo": 1, "myocardium": 2, "left_atrium": 3}
CAMUS_TASK_KEYPOINTS = ["LV apex", "mitral annulus (left)", "mitral annulus (right)"]
_FRAME = re.compile(r"^(patient\d+)_(2CH|4CH)_(ED|ES)\.(nii\.gz|nii|mhd|mha)$", re.IGNORECASE)


def find_camus_frames(root: str | os.PathLike) -> list[dict]:
    """Every CAMUS frame with a reference under ``root`` (NIfTI or MetaImage release, searched recursively).

    Returns:
        dicts with ``patient``, ``view``, ``phase``, ``image``, ``label`` (absolute paths), sorted.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"CAMUS folder not found: {root}")
    frames = []
    for path in sorted(root.rglob("patient*")):
        match = _FRAME.match(path.name)
        if not match or not path.is_file():
            continue
        patient, view, phase, ext = match.groups()
        label = path.with_name(f"{patient}_{view}_{phase}_gt.{ext}")
        if not label.is_file():
            logger.warning("%s has no reference %s: skipped", path, label.name)
            continue
        frames.append({"patient": patient, "view": view.upper(), "phase": phase.upper(), "image": path, "label": label})
    if not frames:
        raise FileNotFoundError(f"{root}: no CAMUS frames (patientXXXX_{{2CH,4CH}}_{{ED,ES}}.nii.gz/.mhd with _gt) found")
    return frames


def split_groups(groups: Sequence[str], val_fraction: float, test_fraction: float, seed: int) -> dict[str, str]:
    """Assign whole groups (patients) to ``training`` / ``validation`` / ``testing``, seeded."""
    unique = sorted(set(groups))
    order = np.random.default_rng(seed).permutation(len(unique))
    n_test = int(round(len(unique) * test_fraction))
    n_val = int(round(len(unique) * val_fraction))
    if n_test + n_val >= len(unique):
        raise ValueError(f"{len(unique)} groups cannot give {n_val} validation and {n_test} test groups and a training set")
    split = {}
    for rank, i in enumerate(order):
        split[unique[i]] = "testing" if rank < n_test else "validation" if rank < n_test + n_val else "training"
    return split


def _official_split(root: Path) -> dict[str, str]:
    files = {s: next(root.rglob(f"subgroup_{s}.txt"), None) for s in ("training", "validation", "testing")}
    if not any(files.values()):
        raise FileNotFoundError(f"{root}: no database_split/subgroup_*.txt files for --official-split")
    split = {}
    for name, path in files.items():
        if path is not None:
            for patient in path.read_text().split():
                split[patient.strip()] = name
    return split


def _relative(path: Path, base: Path) -> str:
    return os.path.relpath(path, base)


def camus_datalist(
    root: str | os.PathLike,
    out: str | os.PathLike,
    views: Sequence[str] = ("2CH", "4CH"),
    phases: Sequence[str] = ("ED", "ES"),
    target: str = "lv_endo",
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    seed: int = 0,
    official_split: bool = False,
) -> Path:
    """Write a CAMUS datalist: paths relative to ``root`` (use it as ``dataset_dir``), split by patient.

    Keypoints come from the ``lv_apex_base`` rule on each reference (apex, then the two annulus ends);
    each entry's ``group`` (and ``patient``) is its patient id, so cross-validation keeps a patient's
    frames together.
    """
    if target not in CAMUS_TARGETS:
        raise ValueError(f"unknown target {target!r}; choose from {sorted(CAMUS_TARGETS)}")
    root = Path(root)
    wanted_views, wanted_phases = {v.upper() for v in views}, {p.upper() for p in phases}
    frames = [f for f in find_camus_frames(root) if f["view"] in wanted_views and f["phase"] in wanted_phases]
    if not frames:
        raise ValueError(f"{root}: no frames of views {sorted(wanted_views)} and phases {sorted(wanted_phases)}")
    split = _official_split(root) if official_split else split_groups(
        [f["patient"] for f in frames], val_fraction, test_fraction, seed
    )
    rule = get_rule("lv_apex_base")
    lists: dict[str, list] = {"training": [], "validation": [], "testing": []}
    for frame in frames:
        if frame["patient"] not in split:
            logger.warning("%s is in no official subgroup: skipped", frame["patient"])
            continue
        label, _ = read_image(frame["label"])
        try:
            points = rule(label)
        except ValueError as err:
            raise ValueError(f"{frame['label']}: {err}") from None
        lists[split[frame["patient"]]].append(
            {
                "image": _relative(frame["image"], root),
                "label": _relative(frame["label"], root),
                "keypoints": np.round(points, 2).tolist(),
                "group": frame["patient"],
                "patient": frame["patient"],
                "view": frame["view"],
                "phase": frame["phase"],
            }
        )
    content = {
        "name": f"CAMUS {target}, views {sorted(wanted_views)}, phases {sorted(wanted_phases)}",
        "split": "official subgroups" if official_split else f"by patient, seed {seed}, val {val_fraction}, test {test_fraction}",
        "task": {
            "num_keypoints": 3,
            "keypoint_names": CAMUS_TASK_KEYPOINTS,
            "keypoint_rule": "lv_apex_base",
            "flip_swap": [[1, 2]],
            "label_value": CAMUS_TARGETS[target],
            "num_components": 1,
        },
        **lists,
    }
    path = write_datalist(out, content)
    logger.info("%s: %s", path, {k: len(v) for k, v in lists.items()})
    return path


def _file_group(image: Path, pattern: re.Pattern | None, csv_groups: dict[str, str], csv: str | os.PathLike | None) -> str:
    """The group of one image file: ``pattern``'s first capture group (or match), its CSV group, or its stem."""
    if pattern is not None:
        match = pattern.search(image.name)
        if match is None:
            raise ValueError(f"{image}: --group-regex {pattern.pattern!r} does not match the file name")
        return match.group(1) if pattern.groups else match.group(0)
    if csv_groups:
        if image.name not in csv_groups:
            raise ValueError(f"{csv}: no group for {image.name} (the 'group' column must name every image's group)")
        return csv_groups[image.name]
    return split_ext(image)[0]


def folder_datalist(
    images: str | os.PathLike,
    labels: str | os.PathLike,
    out: str | os.PathLike,
    keypoints_csv: str | os.PathLike | None = None,
    keypoint_rule: str | None = None,
    dataset_dir: str | os.PathLike | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    seed: int = 0,
    label_value: int | None = None,
    group_regex: str | None = None,
) -> Path:
    """Pair ``images/<name>.<ext>`` with ``labels/<name>.<ext'>`` by name and write a datalist.

    Every entry gets a ``group`` (the patient or subject its scan belongs to; cross-validation and the
    training / validation / testing split keep a group together): from ``group_regex``, else from a
    ``group`` column of ``keypoints_csv``, else the image's file stem (every scan its own group, split
    by file as before groups existed).

    Args:
        keypoints_csv: ``image, k, row, col`` rows (the format ``glsmonai predict`` writes), matched
            on the image file name; an optional ``group`` column names each image's group.
        keypoint_rule: rule recorded in the task block for entries without keypoints.
        dataset_dir: paths are written relative to it (default: the common parent of both folders).
        group_regex: searched in each image file name; the group is its first capture group, or the
            whole match when it has none (``"^(patient\\d+)_"`` groups ``patient0001_2CH_ED.png`` as
            ``patient0001``).

    Raises:
        ValueError: the regex is invalid or does not match an image's name, the CSV lacks a column or
            gives one image two groups (the message names the file).
    """
    images, labels = Path(images), Path(labels)
    try:
        pattern = re.compile(group_regex) if group_regex else None
    except re.error as err:
        raise ValueError(f"--group-regex {group_regex!r}: {err}") from None
    base = Path(dataset_dir) if dataset_dir else Path(os.path.commonpath([images.resolve(), labels.resolve()]))
    label_files = {split_ext(p)[0]: p for p in list_images(labels)}
    points: dict[str, list] = {}
    csv_groups: dict[str, str] = {}
    if keypoints_csv:
        table = pd.read_csv(keypoints_csv)
        missing = {"image", "k", "row", "col"} - set(table.columns)
        if missing:
            raise ValueError(f"{keypoints_csv}: missing column(s) {sorted(missing)}")
        for name, rows in table.sort_values(["image", "k"]).groupby("image"):
            points[str(name)] = rows[["row", "col"]].to_numpy(float).tolist()
        if "group" in table.columns and pattern is None:
            for name, rows in table.groupby("image"):
                found = rows["group"].dropna().astype(str).unique()
                if len(found) > 1:
                    raise ValueError(f"{keypoints_csv}: image {name} has several groups {sorted(found)}")
                if len(found):
                    csv_groups[str(name)] = found[0]
    entries = []
    for image in list_images(images):
        stem = split_ext(image)[0]
        if stem not in label_files:
            logger.warning("%s has no label in %s: skipped", image, labels)
            continue
        entry = {"image": _relative(image.resolve(), base.resolve()),
                 "label": _relative(label_files[stem].resolve(), base.resolve())}
        if image.name in points:
            entry["keypoints"] = points[image.name]
        entry["group"] = _file_group(image, pattern, csv_groups, keypoints_csv)
        entries.append(entry)
    if not entries:
        raise ValueError(f"no image in {images} has a label of the same name in {labels}")
    grouped = pattern is not None or bool(csv_groups)
    key = (lambda e: e["group"]) if grouped else (lambda e: e["image"])  # one scan per group: the split by file of old
    split = split_groups([key(e) for e in entries], val_fraction, test_fraction, seed)
    lists: dict[str, list] = {"training": [], "validation": [], "testing": []}
    for entry in entries:
        lists[split[key(entry)]].append(entry)
    counts = {len(e.get("keypoints", [])) for e in entries} - {0}
    if len(counts) > 1:
        raise ValueError(f"{keypoints_csv}: images have different keypoint counts {sorted(counts)}")
    num = counts.pop() if counts else (rule_keypoint_count(keypoint_rule) if keypoint_rule else None)
    task = {"num_keypoints": num, "keypoint_rule": keypoint_rule, "label_value": label_value}
    task = {k: v for k, v in task.items() if v is not None}
    path = write_datalist(out, {"name": f"{images} with {labels}", "dataset_dir": str(base), "task": task, **lists})
    logger.info("%s (dataset_dir %s): %s", path, base, {k: len(v) for k, v in lists.items()})
    return path
