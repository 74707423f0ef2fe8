"""Paired per-case differences between models of one ``cases.csv`` table (``glsmonai compare``, ``paired``).

A ``cases.csv`` holds one row per model, case and training seed: ``model, fold, seed, image, group`` and
the scores. :func:`paired_table` pairs every model with a reference case by case and gives each mean
difference its bootstrap interval over the groups (patients) and, when the models were trained with
several seeds, over the seeds too (:func:`~glsmonai.evaluation.statistics.hierarchical_paired_difference`).
A table without a ``seed`` column (written before seeds were recorded) is one seed per model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from glsmonai.evaluation.statistics import hierarchical_paired_difference

__all__ = ["PAIRED_COLUMNS", "PAIRED_METRICS", "paired_markdown", "paired_runs", "paired_table", "seed_matrix"]

#: the metrics of ``paired.csv``: model minus reference, per case
PAIRED_METRICS = ("dice", "key_dice", "hd95")
#: the columns of :func:`paired_table`
PAIRED_COLUMNS = ["model", "reference", "metric", "mean", "lo", "hi", "n", "n_groups", "n_seeds", "n_seeds_ref"]
#: what identifies a case across models
CASE_KEYS = ["fold", "image", "group"]


def seed_matrix(cases: pd.DataFrame, model: str, metric: str) -> pd.DataFrame:
    """One model's ``metric``, one row per case (indexed by ``fold, image, group`` in the table's order) and one
    column per training seed (in sorted order; a table without ``seed`` has one column, 0).

    Raises:
        ValueError: a case appears twice for one model and seed (the message names it).
    """
    rows = cases[cases["model"] == model]
    rows = rows.assign(seed=rows["seed"] if "seed" in rows else 0)
    duplicated = rows.duplicated([*CASE_KEYS, "seed"])
    if duplicated.any():
        first = rows.loc[duplicated].iloc[0]
        raise ValueError(f"model {model!r}: case {first['image']} (fold {first['fold']}, seed {first['seed']}) "
                         "appears twice")
    wide = rows.set_index([*CASE_KEYS, "seed"])[metric].unstack("seed")
    order = pd.MultiIndex.from_frame(rows[CASE_KEYS].drop_duplicates())  # first appearance, as in the table
    return wide.reindex(order)


def paired_table(
    cases: pd.DataFrame,
    reference: str,
    metrics: Sequence[str] = PAIRED_METRICS,
    n_boot: int = 10000,
    seed: int = 0,
    level: float = 0.95,
    paired_seeds: bool = False,
) -> pd.DataFrame:
    """Paired per-case differences ``model - reference`` with bootstrap intervals over groups and seeds.

    Args:
        cases: one row per model, case (and training seed), with ``model, fold, image, group``, optionally
            ``seed``, and the ``metrics`` columns (``cases.csv``).
        reference: the model every other model is compared with.
        metrics: the columns compared; a metric missing from ``cases`` gets no rows.
        n_boot, seed, level: see :func:`~glsmonai.evaluation.statistics.hierarchical_paired_difference`
            (with one seed per model, :func:`~glsmonai.evaluation.statistics.paired_difference`).
        paired_seeds: the models are predictions of the same trained networks (a variant and its model): seed
            ``s`` of one is paired with seed ``s`` of the other, and both must have the same seeds.

    Returns:
        one row per other model and metric (:data:`PAIRED_COLUMNS`): ``model, reference, metric, mean, lo, hi,
        n, n_groups, n_seeds, n_seeds_ref``, over the cases where every seed of both models has a finite
        score (``n = 0`` and NaN statistics when none).

    Raises:
        ValueError: ``reference`` has no rows in ``cases``; with ``paired_seeds``, a model with other seeds.
    """
    if reference not in set(cases["model"]):
        raise ValueError(f"reference model {reference!r} is not among the compared models {sorted(set(cases['model']))}")
    rows = []
    for model in dict.fromkeys(cases["model"]):
        if model == reference:
            continue
        for metric in metrics:
            if metric not in cases:
                continue
            ours, theirs = seed_matrix(cases, model, metric), seed_matrix(cases, reference, metric)
            if paired_seeds and list(ours.columns) != list(theirs.columns):
                raise ValueError(f"{model} has the seeds {list(ours.columns)}, {reference} {list(theirs.columns)}: "
                                 "predictions of the same networks have the same seeds")
            pair = pd.concat({"model": ours, "reference": theirs}, axis=1, join="inner").dropna()
            row = {"model": model, "reference": reference, "metric": metric}
            if pair.empty:
                rows.append({**row, "mean": np.nan, "lo": np.nan, "hi": np.nan, "n": 0, "n_groups": 0,
                             "n_seeds": ours.shape[1], "n_seeds_ref": theirs.shape[1]})
                continue
            groups = pair.index.get_level_values("group").astype(str).to_numpy()
            rows.append({**row, **hierarchical_paired_difference(
                pair["model"].to_numpy(np.float64), pair["reference"].to_numpy(np.float64), groups,
                n_boot=n_boot, seed=seed, level=level, paired_seeds=paired_seeds)})
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def paired_runs(before: str | os.PathLike, after: str | os.PathLike, models: Sequence[str] | None = None,
                metrics: Sequence[str] = PAIRED_METRICS, seed: int = 0) -> tuple[pd.DataFrame, str]:
    """Two ``cases.csv`` of the same folds and cases (e.g. before and after a change of the code): each
    model's paired differences ``after - before`` with bootstrap intervals (over groups, and over each run's
    seeds when it has several).

    Returns:
        the :func:`paired_table` rows (``model`` is ``<model>@after``, ``reference`` ``<model>@before``)
        and their markdown.
    """
    tables = {tag: pd.read_csv(path) for tag, path in (("before", before), ("after", after))}
    models = list(models or [m for m in dict.fromkeys(tables["before"]["model"]) if m in set(tables["after"]["model"])])
    rows = []
    for model in models:
        both = pd.concat([t[t["model"] == model].assign(model=f"{model}@{tag}") for tag, t in tables.items()])
        if both["model"].nunique() < 2:
            raise ValueError(f"model {model!r} is not in both {before} and {after}")
        rows.append(paired_table(both, f"{model}@before", metrics, seed=seed))
    paired = pd.concat(rows, ignore_index=True)
    return paired, paired_markdown(paired, 10000, seed, 0.95)


def paired_markdown(paired: pd.DataFrame, n_boot: int, seed: int, level: float, paired_seeds: bool = False) -> str:
    """``paired.md``: a header saying how to read it, then one row per model and metric (with the seed counts
    when a model was trained with more than one seed; ``paired_seeds``: as :func:`paired_table` drew them)."""
    references = list(dict.fromkeys(paired["reference"]))
    reference = references[0] if len(references) == 1 else "reference"
    seeded = "n_seeds" in paired and bool((paired[["n_seeds", "n_seeds_ref"]] > 1).any().any())
    within = ("the training seeds, the same for both (the two are predictions of the same trained networks)"
              if paired_seeds else "each model's training seeds, independently of the other model's")
    how = (f"{level * 100:g} % hierarchical bootstrap interval (groups resampled with replacement, and within each "
           f"drawn group {within}; {n_boot} resamples, seed {seed}: it covers patients and training runs)" if seeded else
           f"{level * 100:g} % cluster-bootstrap interval (groups resampled with replacement, {n_boot} resamples, seed {seed})")
    lines = [
        f"Paired per-case differences, model - {reference}: mean over the cases both models scored, and its {how}. "
        "Dice and key-region Dice: above 0 is better than the reference; HD95 (pixels): below 0 is better. "
        "An interval that contains 0 does not tell the two models apart.",
        "",
        "| model | reference | metric | difference | CI | cases | groups |" + (" seeds |" if seeded else ""),
        "|---|---|---|---|---|---|---|" + ("---|" if seeded else ""),
    ]
    digits = {"hd95": 2}
    for r in paired.to_dict("records"):
        d = digits.get(r["metric"], 4)
        interval = f"[{r['lo']:+.{d}f}, {r['hi']:+.{d}f}]"
        seeds = f" {r['n_seeds']} / {r['n_seeds_ref']} |" if seeded else ""
        lines.append(f"| {r['model']} | {r['reference']} | {r['metric']} | {r['mean']:+.{d}f} | {interval} | {r['n']} | "
                     f"{r['n_groups']} |{seeds}")
    return "\n".join(lines) + "\n"
