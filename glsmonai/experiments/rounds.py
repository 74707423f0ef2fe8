"""The rounds of a comparison: the datalist read once, the folds dealt, and where each model's training goes.

A :class:`DatalistFile` is a datalist read from disk once (its bytes' digest, its content); a :class:`Round`
is one train / test round, a fold of a group K-fold cross-validation or the datalist's own split, with its
datalist, the split it tests and its test cases. Training (:mod:`glsmonai.experiments.training`), prediction
and scoring all take these objects instead of reading the file again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from glsmonai.data.folds import SPLITS, entry_group, write_fold_datalists

__all__ = ["select_rounds", "DatalistFile", "Round", "plan_rounds"]


@dataclass(frozen=True)
class DatalistFile:
    """A datalist JSON read once.

    Attributes:
        path: the file (the training subprocess and the predictor are given it).
        dataset_dir: the folder its entries' paths are relative to.
        content: the parsed JSON object.
        sha256: the digest of its bytes (a trained model records it: a changed datalist is trained again).
    """

    path: Path
    dataset_dir: Path
    content: dict
    sha256: str

    @classmethod
    def read(cls, path: str | os.PathLike, dataset_dir: str | os.PathLike) -> DatalistFile:
        """Read ``path``.

        Raises:
            FileNotFoundError: the file is missing.
            ValueError: not valid JSON, not a JSON object, or a ``task`` that is not an object (the message
                names the file).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"datalist not found: {path}")
        data = path.read_bytes()
        try:
            content = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(content, dict):
            raise ValueError(f"{path}: a datalist is a JSON object, got {type(content).__name__}")
        if not isinstance(content.get("task", {}), dict):
            raise ValueError(f"{path}: 'task' must be an object, got {type(content['task']).__name__}")
        return cls(path, Path(dataset_dir), content, hashlib.sha256(data).hexdigest())

    @property
    def task(self) -> dict:
        """The ``task`` block (empty when there is none)."""
        return self.content.get("task") or {}

    def size(self, split: str) -> int:
        return len(self.content.get(split) or [])

    def sizes(self) -> dict[str, int]:
        """``{"n_training", "n_validation", "n_testing"}``: the entries of each split."""
        return {f"n_{s}": self.size(s) for s in SPLITS}

    def cases(self, split: str) -> list[dict]:
        """The entries of ``split`` with absolute ``image`` and ``label`` paths and their ``group`` (the image's file
        name when the entry names none).

        Raises:
            ValueError: the split is empty, or an entry has no ``image`` or no ``label``.
        """
        entries = self.content.get(split) or []
        if not entries:
            raise ValueError(f"{self.path}: no entries under {split!r} (keys present: {list(self.content)})")
        cases = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
                raise ValueError(f"{self.path}: {split}[{i}] needs an 'image' and a 'label' to be scored")
            case = dict(entry)
            for key in ("image", "label"):
                path = Path(str(entry[key]))
                case[key] = str(path if path.is_absolute() else self.dataset_dir / path)
            case["group"] = entry_group({**entry, "image": Path(str(entry["image"])).name})
            if entry.get("keypoints"):
                case["keypoints"] = np.asarray(entry["keypoints"], dtype=np.float64)
            cases.append(case)
        return cases


@dataclass(frozen=True)
class Round:
    """One train / test round.

    Attributes:
        k: the fold (0 for the datalist's own split).
        datalist: the round's datalist (``folds/fold<k>.json``, or the datalist itself).
        split: the split it tests.
        subdir: ``""`` (the datalist's own split: ``out/<model>``) or ``fold<k>`` (``out/<model>/fold<k>``).
    """

    k: int
    datalist: DatalistFile
    split: str
    subdir: str

    def run(self, out: Path, model: str, seed_dir: str = "") -> Path:
        """Where ``model`` trained with one seed is trained and predicts: ``out/<model>[/fold<k>][/seed<s>]``."""
        path = out / model
        for part in (self.subdir, seed_dir):
            path = path / part if part else path
        return path

    @cached_property
    def cases(self) -> list[dict]:
        """The test cases (:meth:`DatalistFile.cases` of :attr:`split`)."""
        return self.datalist.cases(self.split)


def plan_rounds(source: DatalistFile, out: Path, folds: int, seed: int, val_fraction: float) -> list[Round]:
    """The rounds of a comparison: the datalist's own split (``folds = 0``) or ``K`` group folds, whose
    datalists are written into ``out/folds/`` (:func:`~glsmonai.data.folds.write_fold_datalists`).

    Raises:
        ValueError: ``folds`` is 1 or negative, too few groups for it, or (``folds = 0``) the datalist has
            neither testing nor validation entries.
    """
    if folds == 0:
        split = "testing" if source.content.get("testing") else "validation"
        source.cases(split)  # raises before anything trains when the split cannot be scored
        return [Round(0, source, split, "")]
    if folds < 2:
        raise ValueError(f"--folds must be 0 (the datalist's own split) or at least 2, got {folds}")
    paths = write_fold_datalists(source.path, out / "folds", folds, seed, val_fraction)
    return [Round(k, DatalistFile.read(path, source.dataset_dir), "testing", f"fold{k}") for k, path in enumerate(paths)]


def select_rounds(rounds: Sequence[Round], only: Sequence[int] | None) -> list[Round]:
    """The rounds of the folds ``only`` (all of them when ``None``), in fold order.

    The folds are dealt as for the full comparison, so a comparison of some folds trains exactly the runs
    the full one would, and a later call with more folds reuses them.

    Raises:
        ValueError: a fold that the split does not have.
    """
    if only is None:
        return list(rounds)
    have = [r.k for r in rounds]
    missing = sorted(set(only) - set(have))
    if missing:
        raise ValueError(f"--fold {missing[0]}: the split has folds {have[0]} .. {have[-1]} only")
    return [r for r in rounds if r.k in set(only)]
