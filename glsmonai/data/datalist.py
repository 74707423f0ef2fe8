"""Decathlon-style datalists: ``{"training": [...], "validation": [...], "testing": [...]}``.

Each entry is ``{"image": path, "label": path, "keypoints": [[row, col], ...], "group": id}`` with paths
relative to the data folder (``dataset_dir``); ``keypoints`` is optional when a keypoint rule is
configured. ``group`` (optional) names the patient or subject the scan belongs to: cross-validation
(:mod:`glsmonai.data.folds`) keeps a group's cases in one fold and bootstraps over groups. Other fields
(``patient``, ``view``, ``phase``, ...) are kept as they are.

An optional ``"task"`` block describes the task so the bundle needs no further overrides:
``{"num_keypoints": 3, "keypoint_names": [...], "keypoint_rule": "lv_apex_base",
"flip_swap": [[1, 2]], "label_value": 1, "num_components": 1}`` (``num_components``: how many
connected pieces the structure has, for the predictor's optional post-processing; without it, the
keypoint rule's count, :func:`task_num_components`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from glsmonai.keypoints import get_rule, rule_component_count
from glsmonai.utils import atomic_write

__all__ = ["load_datalist", "load_task", "task_num_components", "write_datalist", "scan_list", "datalist_keypoints"]


def read_datalist(datalist: str | os.PathLike) -> object:
    """The parsed JSON of a datalist file (callers check its shape).

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: not valid JSON (the message names the file).
    """
    path = Path(datalist)
    if not path.is_file():
        raise FileNotFoundError(f"datalist not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def _image_shape(path: Path) -> tuple[int, int] | None:
    """``(rows, cols)`` from a scan's header (the last two array axes), or ``None`` when unreadable."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None
    size = [s for s in reader.GetSize() if s != 1] or [1, 1]
    return (int(size[1]), int(size[0])) if len(size) >= 2 else None


def _keypoint_problems(points: object, shape: tuple[int, int] | None, num_keypoints: int | None) -> str | None:
    """What is wrong with an entry's ``keypoints`` (``[[row, col], ...]`` on an image of ``shape``), or ``None``."""
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        return "keypoints are not a list of [row, col] numbers"
    if array.ndim != 2 or array.shape[1] != 2 or not np.isfinite(array).all():
        return f"keypoints must be [[row, col], ...] numbers, got shape {array.shape}"
    if num_keypoints is not None and len(array) != num_keypoints:
        return f"{len(array)} keypoint(s), the task has {num_keypoints}"
    if shape is not None:
        outside = [i for i, (r, c) in enumerate(array) if not (-0.5 <= r <= shape[0] - 0.5 and -0.5 <= c <= shape[1] - 0.5)]
        if outside:
            return f"keypoint(s) {outside} lie outside the {shape[0]} x {shape[1]} image"
    return None


def load_datalist(
    datalist: str | os.PathLike,
    dataset_dir: str | os.PathLike,
    split: str,
    num_keypoints: int | None = None,
    keypoint_rule: str | None = None,
) -> list[dict]:
    """Entries of one split with absolute paths, every entry checked before any is used.

    Checked: each entry has an ``image``; its image and label files exist; its ``keypoints``, when given,
    are ``[row, col]`` numbers, ``num_keypoints`` of them (when given) and on the image (read from the
    file's header); with ``keypoint_rule``, the rule finds ``num_keypoints`` keypoints on the label of
    each entry that gives none. Every problem of the split is collected and reported at once.

    Args:
        datalist: the JSON file.
        dataset_dir: folder the entries' paths are relative to.
        split: ``"training"``, ``"validation"`` or ``"testing"``.
        num_keypoints: the task's keypoint count, or ``None`` to accept any.
        keypoint_rule: the rule (:func:`glsmonai.keypoints.get_rule`) that gives the keypoints of entries
            without them, as training's ``Keypointsd`` does: run here on their labels, so that a label on
            which it finds nothing is named with the other bad entries before training starts. The
            points it finds are kept as the entry's ``keypoints`` (the transform takes them and does not
            run the rule again: the same points, from the same label).

    Raises:
        FileNotFoundError: the datalist is missing, or (all other problems fine) only files are missing.
        ValueError: the JSON is malformed, the split is missing or empty, or entries are bad: one line
            naming the datalist and the count, then one line per bad entry.
    """
    datalist, dataset_dir = Path(datalist), Path(dataset_dir)
    content = read_datalist(datalist)
    entries = content.get(split) if isinstance(content, dict) else None
    if not entries:
        present = list(content) if isinstance(content, dict) else type(content).__name__
        raise ValueError(f"{datalist}: no entries under {split!r} (keys present: {present})")
    out, problems, missing_only = [], [], True
    rule = _RuleCheck(keypoint_rule, num_keypoints) if keypoint_rule else None
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "image" not in entry:
            problems.append(f"{split}[{i}] has no 'image'")
            missing_only = False
            continue
        item = dict(entry)
        for key in ("image", "label"):
            if key in item:
                path = Path(str(item[key]))
                path = path if path.is_absolute() else dataset_dir / path
                if not path.is_file():
                    problems.append(f"{split}[{i}] {key} file not found: {path}")
                item[key] = str(path)
        if item.get("keypoints") is not None and Path(item["image"]).is_file():
            reason = _keypoint_problems(item["keypoints"], _image_shape(Path(item["image"])), num_keypoints)
            if reason:
                problems.append(f"{split}[{i}] ({Path(item['image']).name}): {reason}")
                missing_only = False
        elif rule is not None and item.get("keypoints") is None and "label" in item and Path(item["label"]).is_file():
            points, reason = rule(Path(item["label"]))
            if reason:
                problems.append(f"{split}[{i}] {reason}")
                missing_only = False
            else:
                item["keypoints"] = points
        out.append(item)
    if problems:
        head = f"{datalist}: {len(problems)} bad entr{'y' if len(problems) == 1 else 'ies'} in {split!r}"
        error = FileNotFoundError if missing_only else ValueError
        raise error("\n  ".join([head + ":", *problems]) if len(problems) > 1 else f"{datalist}: {problems[0]}")
    return out


class _RuleCheck:
    """``(label file) -> (keypoints, None)``, or ``(None, what is wrong)`` naming the file: a keypoint rule
    run on a label as training's ``Keypointsd`` runs it."""

    def __init__(self, name: str, num_keypoints: int | None) -> None:
        self.name, self.rule, self.num_keypoints = name, get_rule(name), num_keypoints

    def __call__(self, label: Path) -> tuple[np.ndarray | None, str | None]:
        from glsmonai.data.io import read_image

        try:
            array, _ = read_image(label)
        except (OSError, ValueError) as err:
            return None, f"label {err}"  # read_image's messages start with the file
        try:
            points = self.rule(array)
        except ValueError as err:
            return None, f"label {label}: the keypoint rule {self.name} finds no keypoints on it: {err}"
        if self.num_keypoints is not None and len(points) != self.num_keypoints:
            return None, (f"label {label}: the keypoint rule {self.name} gives {len(points)} keypoint(s), "
                          f"the task has {self.num_keypoints}")
        return points, None


def load_task(datalist: str | os.PathLike) -> dict:
    """The datalist's ``"task"`` block; empty when the file or the block is absent.

    Raises:
        ValueError: the block is not an object, or its ``num_components`` is not a positive integer.
    """
    path = Path(datalist)
    if not path.is_file():
        return {}
    content = read_datalist(path)
    task = content.get("task", {}) if isinstance(content, dict) else {}
    if not isinstance(task, dict):
        raise ValueError(f"{path}: 'task' must be an object, got {type(task).__name__}")
    count = task.get("num_components")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError(f"{path}: the task's num_components must be a positive integer, got {count!r}")
    return task


def task_num_components(task: dict, keypoint_rule: str | None, required: bool = False) -> int | None:
    """How many connected pieces the task's structure has: the task block's ``num_components``, else
    what the keypoint rule reads (:func:`glsmonai.keypoints.rule_component_count`: iris 2, LV 1).

    Training records it in the model folder, so that ``predict --components task`` works on any folder,
    whether or not the datalist had a task block.

    Args:
        task: the datalist's task block (:func:`load_task`), possibly empty.
        keypoint_rule: the rule training uses (the task's, or the bundle's default), or ``None``.
        required: raise instead of returning ``None`` when neither tells the count.

    Raises:
        ValueError: ``required`` and no count is known; or the rule is unknown.
    """
    if task.get("num_components") is not None:
        return int(task["num_components"])
    if keypoint_rule:
        return rule_component_count(keypoint_rule)
    if required:
        raise ValueError("the datalist's task block has no num_components and no keypoint rule tells it; add "
                         "\"num_components\" (the structure's connected pieces, e.g. 2 for the iris) to the task block")
    return None


def write_datalist(path: str | os.PathLike, splits: dict[str, list[dict]]) -> Path:
    """Write a datalist JSON atomically."""
    text = json.dumps(splits, indent=1)
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def scan_list(
    source: str | os.PathLike, split: str = "testing", dataset_dir: str | os.PathLike | None = None
) -> list[tuple[Path, Path | None]]:
    """``(image, label or None)`` pairs from a folder of scans or from one split of a datalist JSON.

    Args:
        source: a folder (every image file in it, no labels) or a datalist ``.json``.
        split: the datalist split to read.
        dataset_dir: what the datalist's paths are relative to (default: the datalist's
            ``"dataset_dir"`` entry, else its folder).
    """
    from glsmonai.data.io import list_images

    source = Path(source)
    if source.is_dir():
        return [(p, None) for p in list_images(source)]
    entries = load_datalist(source, _dataset_dir_of(source, dataset_dir), split)
    return [(Path(e["image"]), Path(e["label"]) if "label" in e else None) for e in entries]


def _dataset_dir_of(source: Path, dataset_dir: str | os.PathLike | None) -> str | os.PathLike:
    """``dataset_dir``, else the datalist's ``"dataset_dir"`` entry, else its folder."""
    if source.suffix.lower() != ".json":
        raise FileNotFoundError(f"{source}: neither a folder of scans nor a datalist .json")
    if dataset_dir is not None:
        return dataset_dir
    content = json.loads(source.read_text()) if source.is_file() else {}
    return content.get("dataset_dir", source.parent) if isinstance(content, dict) else source.parent


def datalist_keypoints(
    source: str | os.PathLike, split: str = "testing", dataset_dir: str | os.PathLike | None = None
) -> dict[str, list]:
    """``{image file name: [[row, col], ...]}`` for the entries of a datalist split that give keypoints."""
    source = Path(source)
    entries = load_datalist(source, _dataset_dir_of(source, dataset_dir), split)
    return {Path(e["image"]).name: e["keypoints"] for e in entries if e.get("keypoints")}
