"""Decathlon-style datalists: ``{"training": [...], "validation": [...], "testing": [...]}``.

Each entry is ``{"image": path, "label": path, "keypoints": [[row, col], ...], "group": id}`` with paths
relative to the data folder (``dataset_dir``); ``keypoints`` is optional when a keypoint rule is
configured. ``group`` (optional) names the patient or subject the scan belongs to: cross-validation
(:mod:`glsmonai.data.folds`) keeps a group's cases in one fold and bootstraps over groups. Other fields
(``patient``, ``view``, ``phase``, ...) are kept as they are.

An optional ``"task"`` block describes the task so the bundle needs no further overrides:
``{"num_keypoints": 3, "keypoint_names": [...], "keypoint_rule": "lv_apex_base",
"flip_swap": [[1, 2]], "label_value": 1, "num_components": 1}`` (``num_components``: how many
connected pieces the structure has, for the predictor's optional post-processing).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from glsmonai.utils import atomic_write

__all__ = ["load_datalist", "load_task", "write_datalist", "scan_list", "datalist_keypoints"]


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


def load_datalist(datalist: str | os.PathLike, dataset_dir: str | os.PathLike, split: str) -> list[dict]:
    """Entries of one split with absolute paths, every referenced file checked.

    Args:
        datalist: the JSON file.
        dataset_dir: folder the entries' paths are relative to.
        split: ``"training"``, ``"validation"`` or ``"testing"``.

    Raises:
        FileNotFoundError: the datalist or a file it names is missing (the message names both).
        ValueError: the JSON is malformed, the split is missing or empty, or an entry lacks ``image``.
    """
    datalist, dataset_dir = Path(datalist), Path(dataset_dir)
    content = read_datalist(datalist)
    entries = content.get(split) if isinstance(content, dict) else None
    if not entries:
        raise ValueError(f"{datalist}: no entries under {split!r} (keys present: {list(content) if isinstance(content, dict) else type(content).__name__})")
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "image" not in entry:
            raise ValueError(f"{datalist}: {split}[{i}] has no 'image'")
        item = dict(entry)
        for key in ("image", "label"):
            if key in item:
                path = Path(item[key])
                path = path if path.is_absolute() else dataset_dir / path
                if not path.is_file():
                    raise FileNotFoundError(f"{datalist}: {split}[{i}] {key} file not found: {path}")
                item[key] = str(path)
        out.append(item)
    return out


def load_task(datalist: str | os.PathLike) -> dict:
    """The datalist's ``"task"`` block; empty when the file or the block is absent."""
    path = Path(datalist)
    if not path.is_file():
        return {}
    content = read_datalist(path)
    task = content.get("task", {}) if isinstance(content, dict) else {}
    if not isinstance(task, dict):
        raise ValueError(f"{path}: 'task' must be an object, got {type(task).__name__}")
    return task


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
