"""Group K-fold cross-validation datalists: every labelled case tested once, all cases of a group together.

A datalist entry's group (patient, subject) is its ``"group"`` field, else its ``"patient"`` field
(CAMUS datalists written before ``group`` existed), else the image path (each scan its own group).
:func:`assign_folds` deals whole groups into ``K`` folds of nearly equal case counts;
:func:`fold_split` makes fold ``k``'s training / validation / testing groups; and
:func:`write_fold_datalists` pools a datalist's labelled entries of all its splits and writes one
datalist per fold (``fold<k>.json``, with the original ``task`` block).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from glsmonai.data.datalist import read_datalist, write_datalist

logger = logging.getLogger(__name__)

__all__ = ["SPLITS", "entry_group", "assign_folds", "fold_split", "pooled_entries", "write_fold_datalists"]

SPLITS = ("training", "validation", "testing")


def entry_group(entry: dict) -> str:
    """The group of a datalist entry: ``group``, else ``patient``, else the ``image`` path."""
    for key in ("group", "patient"):
        if entry.get(key) not in (None, ""):
            return str(entry[key])
    return str(entry["image"])


def assign_folds(groups: Sequence[str], n_folds: int, seed: int = 0) -> dict[str, int]:
    """Deal whole groups into ``n_folds`` folds, balanced by case count, seeded.

    The distinct groups are shuffled (``np.random.default_rng(seed)``), then ordered by case count,
    largest first (ties keep the shuffled order), and each goes to the fold with the fewest cases so
    far (ties: fewest groups, then the lowest fold). So the folds' case counts differ by at most the
    largest group's count, and the same groups and seed always give the same folds.

    Args:
        groups: ``(N,)`` the group of each case (a group appears once per case).
        n_folds: ``K >= 2``.
        seed: shuffling seed.

    Returns:
        ``{group: fold}`` with folds ``0 .. K-1``, every fold non-empty.

    Raises:
        ValueError: ``n_folds < 2`` or more folds than distinct groups.
    """
    counts = Counter(str(g) for g in groups)
    unique = sorted(counts)
    if n_folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {n_folds}")
    if n_folds > len(unique):
        raise ValueError(f"{len(unique)} group(s) cannot fill {n_folds} folds")
    shuffled = [unique[i] for i in np.random.default_rng(seed).permutation(len(unique))]
    ordered = sorted(shuffled, key=lambda g: -counts[g])  # stable: ties keep the shuffled order
    cases, members = [0] * n_folds, [0] * n_folds
    folds = {}
    for group in ordered:
        fold = min(range(n_folds), key=lambda f: (cases[f], members[f], f))
        folds[group] = fold
        cases[fold] += counts[group]
        members[fold] += 1
    return folds


def fold_split(
    groups: Sequence[str], folds: dict[str, int], k: int, val_fraction: float = 0.2, seed: int = 0
) -> dict[str, str]:
    """Fold ``k``'s split of the groups: ``testing`` = fold ``k``, ``validation`` = a fraction of the rest.

    The validation groups (which choose each stage's best checkpoint) are drawn from the groups outside
    fold ``k`` (shuffled by ``np.random.default_rng([seed, k])``) until they hold at least
    ``val_fraction`` of those groups' cases (at least one group, and never all of them). A fixed
    fraction rather than "the next fold" because it works for any ``K >= 2`` (with ``K = 2`` the
    next fold is all that is left, so nothing would train) and keeps the training share at
    ``(1 - val_fraction) (K - 1) / K`` of the cases instead of ``(K - 2) / K`` (64 % rather than 60 %
    at ``K = 5``; 40 % rather than none at ``K = 2``).

    Args:
        groups: ``(N,)`` the group of each case.
        folds: ``{group: fold}`` from :func:`assign_folds`.
        k: the test fold.
        val_fraction: share of the remaining cases used for validation, in ``(0, 1)``.
        seed: seed of the validation draw.

    Returns:
        ``{group: "training" | "validation" | "testing"}``.

    Raises:
        ValueError: ``k`` is not a fold, ``val_fraction`` is outside ``(0, 1)``, a group has no fold,
            or fewer than two groups lie outside fold ``k``.
    """
    counts = Counter(str(g) for g in groups)
    missing = sorted(set(counts) - set(folds))
    if missing:
        raise ValueError(f"group(s) {missing[:5]} have no fold")
    if k not in set(folds.values()):
        raise ValueError(f"fold {k} does not exist (folds: {sorted(set(folds.values()))})")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rest = sorted(g for g in counts if folds[g] != k)
    if len(rest) < 2:
        raise ValueError(f"fold {k}: {len(rest)} group(s) outside the test fold; need one to train and one to validate")
    wanted = val_fraction * sum(counts[g] for g in rest)
    split = {g: "testing" for g in counts if folds[g] == k}
    chosen = 0
    for rank, i in enumerate(np.random.default_rng([seed, k]).permutation(len(rest))):
        take = rank < len(rest) - 1 and (rank == 0 or chosen < wanted)
        split[rest[i]] = "validation" if take else "training"
        chosen += counts[rest[i]] if take else 0
    return split


def pooled_entries(datalist: str | os.PathLike) -> tuple[dict, list[dict]]:
    """The datalist's JSON content and its labelled entries of every split, each with its ``group``.

    Raises:
        FileNotFoundError: the datalist is missing.
        ValueError: not valid JSON, no labelled entry, an entry without ``image``, or one image in two
            entries (the message names the datalist).
    """
    path = Path(datalist)
    content = read_datalist(path)
    if not isinstance(content, dict):
        raise ValueError(f"{path}: a datalist is a JSON object, got {type(content).__name__}")
    entries, seen, unlabelled = [], set(), 0
    for split in SPLITS:
        for i, entry in enumerate(content.get(split) or []):
            if not isinstance(entry, dict) or "image" not in entry:
                raise ValueError(f"{path}: {split}[{i}] has no 'image'")
            if "label" not in entry:
                unlabelled += 1
                continue
            if entry["image"] in seen:
                raise ValueError(f"{path}: {entry['image']} appears in more than one entry")
            seen.add(entry["image"])
            entries.append({**entry, "group": entry_group(entry)})
    if unlabelled:
        logger.info("%s: %d unlabelled entr(ies) left out of the folds", path, unlabelled)
    if not entries:
        raise ValueError(f"{path}: no labelled entries to cross-validate")
    if not any("group" in e or "patient" in e for split in SPLITS for e in content.get(split) or []):
        logger.warning("%s: entries have no 'group': every scan is its own group", path)
    return content, entries


def write_fold_datalists(
    datalist: str | os.PathLike, out_dir: str | os.PathLike, n_folds: int, seed: int = 0, val_fraction: float = 0.2
) -> list[Path]:
    """Pool the labelled entries of all splits of ``datalist`` and write ``out_dir/fold<k>.json``, k < K.

    Each fold datalist has the original ``task`` block, fold ``k``'s groups as ``testing``, validation
    and training groups from :func:`fold_split`, entries unchanged apart from an added ``group``, and
    ``"folds": {"k", "n_folds", "seed", "val_fraction", "source"}`` (``source``: the datalist's file
    name). Paths stay relative to the same ``dataset_dir``. A file whose content is already the same
    is not rewritten (so its models' ``train_time.json`` still matches it).

    Returns:
        the ``K`` datalist paths, fold 0 first.

    Raises:
        FileNotFoundError, ValueError: see :func:`pooled_entries`; too few groups for ``n_folds`` or a
            bad ``val_fraction`` (the message names the datalist).
    """
    source = Path(datalist)
    content, entries = pooled_entries(source)
    groups = [e["group"] for e in entries]
    try:
        folds = assign_folds(groups, n_folds, seed)
        splits = [fold_split(groups, folds, k, val_fraction, seed) for k in range(n_folds)]
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None
    paths = []
    for k, split in enumerate(splits):
        lists = {s: [e for e in entries if split[e["group"]] == s] for s in SPLITS}
        fold = {
            "name": f"{content.get('name', source.stem)}: fold {k} of {n_folds}",
            "folds": {"k": k, "n_folds": n_folds, "seed": seed, "val_fraction": val_fraction, "source": source.name},
            "task": content.get("task", {}),
            **lists,
        }
        path = Path(out_dir) / f"fold{k}.json"
        if not (path.is_file() and _same_json(path, fold)):
            write_datalist(path, fold)
        paths.append(path)
        logger.info("fold %d: %s cases, %d test groups", k, {s: len(v) for s, v in lists.items()},
                    len({e["group"] for e in lists["testing"]}))
    return paths


def _same_json(path: Path, content: dict) -> bool:
    try:
        return json.loads(path.read_text()) == json.loads(json.dumps(content))
    except (OSError, json.JSONDecodeError):
        return False
