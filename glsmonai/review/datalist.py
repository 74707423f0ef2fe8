"""``glsmonai datalist review``: a reviewed prediction folder as a datalist, to fine-tune the model on.

Every scan whose latest decision in ``review.csv`` is ``accepted`` or ``corrected`` becomes an entry: its image,
the mask that stands for it (the model's own for an accepted scan, ``corrected/<name>_seg.<ext>`` for a corrected
one) as its label, and its keypoints (the model's table, or the corrected one: a reviewer's keypoints are the
targets of the keypoint heatmaps). Scans still to review are left out. The entries are split into training and
validation by group, as ``glsmonai datalist folder`` splits them; the task block records the keypoint count and,
with the model folder, what it records of the task (``num_components``, ``keypoint_rule``, ``keypoint_names``,
``flip_swap``), so that fine-tuning (``bundles/gls/configs/finetune.json``) trains the same task.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from pathlib import Path

from glsmonai.data.builders import split_groups
from glsmonai.data.datalist import write_datalist
from glsmonai.data.io import read_image
from glsmonai.model_folder import ModelFolder
from glsmonai.review.folder import ReviewFolder, count_components

logger = logging.getLogger(__name__)

__all__ = ["review_datalist"]


def _keypoints(rows: list[list[str]]) -> list[list[float]]:
    """``[[row, col], ...]`` in ``k`` order from keypoint table rows."""
    return [[float(r[2]), float(r[3])] for r in sorted(rows, key=lambda r: int(r[1]))]


def review_datalist(
    pred_dir: str | os.PathLike,
    images: str | os.PathLike,
    out: str | os.PathLike,
    model_dir: str | os.PathLike | None = None,
    split: str = "testing",
    dataset_dir: str | os.PathLike | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    group_regex: str | None = None,
) -> Path:
    """Write the datalist of the reviewed scans of ``pred_dir``.

    Args:
        pred_dir: a prediction folder ``glsmonai review`` wrote into (``review.csv``, ``corrected/``).
        images: the scans predicted (a folder, or a datalist JSON and its ``split``).
        out: the datalist JSON to write; its paths are relative to its ``dataset_dir``, the common parent of the
            scans and ``pred_dir``.
        split, dataset_dir: the split of ``images`` when it is a datalist, and what its paths are relative to.
        model_dir: the model folder that predicted them: its task settings go into the task block (else the
            number of connected pieces is the one most masks have).
        val_fraction, seed: the share of groups in ``validation``, and the seed of the split.
        group_regex: each image's group from its file name (the first capture group, or the match); default: the
            file stem (every scan its own group).

    Raises:
        FileNotFoundError: no review table, or no accepted or corrected scan.
        ValueError: a bad ``group_regex``, or a mask that cannot be read (named).
    """
    folder = ReviewFolder(pred_dir, images, None, split, dataset_dir)
    if not folder.table.path.is_file():
        raise FileNotFoundError(f"{folder.path}: no {folder.table.path.name}: review the folder first (glsmonai review)")
    try:
        pattern = re.compile(group_regex) if group_regex else None
    except re.error as err:
        raise ValueError(f"--group-regex {group_regex!r}: {err}") from None
    latest = folder.table.latest()
    corrected_rows: dict[str, list[list[str]]] = {}
    if folder.corrected_keypoints.path.is_file():
        for row in folder.corrected_keypoints.rows():
            corrected_rows.setdefault(row[0], []).append(row)
    chosen = [(entry, latest[name]["state"]) for name, entry in folder.scans.items()
              if latest.get(name, {}).get("state") in ("accepted", "corrected")]
    if not chosen:
        raise FileNotFoundError(f"{folder.path}: no scan is accepted or corrected yet ({len(folder.scans)} to review)")
    labels = [folder.current_mask(entry.name) for entry, _ in chosen]
    base = Path(os.path.commonpath([str(folder.path), *(str(Path(entry.image).resolve().parent) for entry, _ in chosen)]))
    entries, pieces = [], Counter()
    for (entry, state), label in zip(chosen, labels):
        rows = corrected_rows.get(entry.name, []) if state == "corrected" else entry.model_rows
        item = {"image": os.path.relpath(Path(entry.image).resolve(), base.resolve()),
                "label": os.path.relpath(label.resolve(), base.resolve()), "review": state}
        if rows:
            item["keypoints"] = _keypoints(rows)
        if pattern is not None:
            match = pattern.search(entry.name)
            if match is None:
                raise ValueError(f"--group-regex {group_regex!r} does not match {entry.name}")
            item["group"] = match.group(1) if match.groups() else match.group(0)
        else:
            item["group"] = entry.stem
        if model_dir is None:
            try:
                pieces[count_components(read_image(label)[0] > 0)] += 1
            except (OSError, ValueError) as err:
                raise ValueError(str(err)) from None
        entries.append(item)
    assignment = split_groups([e["group"] for e in entries], val_fraction, 0.0, seed)
    lists: dict[str, list] = {"training": [], "validation": []}
    for item in entries:
        lists["validation" if assignment[item["group"]] == "validation" else "training"].append(item)
    if not lists["validation"] and len(lists["training"]) > 1 and val_fraction > 0:  # a few scans: one to validate on
        lists["validation"].append(lists["training"].pop())
    counts = {len(e.get("keypoints", [])) for e in entries} - {0}
    task: dict = {"num_keypoints": counts.pop()} if len(counts) == 1 else {}
    if model_dir is not None:
        settings = ModelFolder.open(model_dir).settings
        recorded = {"num_components": settings.num_components, "keypoint_rule": settings.keypoint_rule,
                    "keypoint_names": list(settings.keypoint_names) if settings.keypoint_names else None,
                    "flip_swap": [list(p) for p in settings.flip_swap] or None, "label_value": None}
        task.update({k: v for k, v in recorded.items() if v is not None})
    elif pieces:
        task["num_components"] = int(max(sorted(pieces), key=lambda n: pieces[n]))
    path = write_datalist(out, {"name": f"reviewed scans of {folder.path}", "dataset_dir": str(base.resolve()),
                                "task": task, **lists})
    states = Counter(state for _, state in chosen)
    logger.info("%s: %d accepted and %d corrected scan(s) (training %d, validation %d; %d left to review)", path,
                states["accepted"], states["corrected"], len(lists["training"]), len(lists["validation"]),
                len(folder.scans) - len(chosen))
    return path

