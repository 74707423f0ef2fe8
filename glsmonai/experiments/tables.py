"""The tables of a comparison, written the same way by ``compare`` and ``compare-pool``.

From the per-case scores (``cases.csv``: one row per model, case and training seed), the per-run timings
(``folds.csv``) and the keypoint errors (``kp_errors.csv``): ``table.csv`` / ``table.md`` (per model),
``seeds.csv`` (per model and training seed), ``paired.csv`` / ``paired.md`` (every model against the
reference) and, for prediction-time variants, ``levers.csv`` / ``levers.md`` (each against its own model).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from glsmonai.evaluation.paired import paired_markdown, paired_table
from glsmonai.evaluation.reports import write_csv
from glsmonai.evaluation.scoring import summarise_cases
from glsmonai.utils import atomic_write

__all__ = ["CASE_METRICS", "FOLD_COLUMNS", "KP_COLUMNS", "Tables", "markdown", "model_table", "seeds_table", "write_tables"]

#: the per-case columns of ``cases.csv`` after ``model, fold, seed, image, group`` (``key_dice`` where a case has keypoints)
CASE_METRICS = ("dice", "iou", "hd95", "key_dice")
#: the columns of ``folds.csv``: one row per compared name, round and training seed
FOLD_COLUMNS = ["model", "fold", "seed", "n_training", "n_validation", "n_testing", "test_groups", "train_min", "infer_s"]
#: the columns of ``kp_errors.csv``: one row per predicted keypoint, with its case's key-region window
KP_COLUMNS = ["model", "fold", "seed", "image", "k", "error", "window_h", "window_w"]


def markdown(table: pd.DataFrame) -> str:
    """A markdown table, floats to 4 decimals."""
    cells = [[str(c) for c in table.columns]] + [
        [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row] for row in table.itertuples(index=False)
    ]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    lines.insert(1, "|" + "---|" * len(table.columns))
    return "\n".join(lines) + "\n"


def _stat(summary: pd.DataFrame, metric: str, column: str = "mean") -> float:
    """``column`` of ``metric`` in a :func:`~glsmonai.evaluation.scoring.summarise_cases` table indexed by
    metric; NaN when the metric was not measured."""
    return float(summary.at[metric, column]) if metric in summary.index else float("nan")


def _seeds_of(rows: pd.DataFrame) -> list:
    return sorted(set(rows["seed"])) if "seed" in rows else [0]


def _per_seed(cases: pd.DataFrame, metric: str) -> pd.Series:
    """The mean of ``metric`` over each seed's cases."""
    return cases.groupby(cases["seed"] if "seed" in cases else np.zeros(len(cases), int))[metric].mean()


def model_table(
    cases: pd.DataFrame,
    timings: pd.DataFrame,
    kp_errors: pd.DataFrame | None,
    costs: Mapping[str, tuple[float, float]],
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """``table.csv``: one row per compared name.

    Means are over all of a model's rows, every case of every training seed (so the mean over seeds of
    each seed's mean); ``dice_std`` and ``iou_std`` are the spread over those rows; the keypoint columns come
    from ``kp_errors`` (NaN when it is ``None``); ``train_min`` is the training minutes summed over the folds,
    averaged over the seeds; ``infer_img_s`` the predictions per second; ``n_cases`` the distinct cases.
    When a model has more than one seed, also ``n_seeds`` and the spread of the seeds' mean Dice:
    ``dice_seed_std`` (over seeds, ``ddof = 1``), ``dice_seed_min``, ``dice_seed_max``.

    Args:
        cases: ``cases.csv``; timings: ``folds.csv``; kp_errors: ``kp_errors.csv`` or ``None``.
        costs: ``{model: (parameters in millions, GFLOPs)}`` of the base models (a variant takes its model's).
        names: the rows, in order (default: the models of ``cases`` in their order).
    """
    names = list(names or dict.fromkeys(cases["model"]))
    seeded = any(len(_seeds_of(cases[cases["model"] == m])) > 1 for m in names)
    rows = []
    for model in names:
        table = cases[cases["model"] == model]
        metrics = [m for m in CASE_METRICS if m in table]
        errors = windows = None
        if kp_errors is not None:
            kp = kp_errors[kp_errors["model"] == model]
            errors, windows = kp["error"].to_numpy(np.float64), kp[["window_h", "window_w"]].to_numpy(np.float64)
        stats = summarise_cases(table, metrics, errors, windows).set_index("metric")
        times = timings[timings["model"] == model]
        n_seeds = len(_seeds_of(table))
        params, gflops = costs.get(model.partition("+")[0], (float("nan"), float("nan")))
        summary = {
            "model": model,
            "dice": _stat(stats, "dice"), "dice_std": _stat(stats, "dice", "std"),
            "iou": _stat(stats, "iou"), "iou_std": _stat(stats, "iou", "std"),
            "key_dice": _stat(stats, "key_dice"),
            "hd95": _stat(stats, "hd95"),
            "kp_err_mean": _stat(stats, "kp_error"), "kp_err_median": _stat(stats, "kp_error", "median"),
            "kp_err_max": _stat(stats, "kp_error", "max"), "kp_missed": _stat(stats, "kp_missed"),
            "params_M": params, "gflops": gflops, "train_min": float(times["train_min"].sum(skipna=False)) / n_seeds,
            "infer_img_s": len(table) / float(times["infer_s"].sum(skipna=False)),
            "n_cases": len(table.drop_duplicates(["fold", "image"])),
        }
        if seeded:
            per_seed = _per_seed(table, "dice") if "dice" in table else pd.Series(dtype=float)
            summary.update(n_seeds=n_seeds, dice_seed_std=float(per_seed.std(ddof=1)) if n_seeds > 1 else float("nan"),
                           dice_seed_min=float(per_seed.min()), dice_seed_max=float(per_seed.max()))
        rows.append(summary)
    return pd.DataFrame(rows)


def seeds_table(cases: pd.DataFrame, timings: pd.DataFrame, names: Sequence[str] | None = None) -> pd.DataFrame:
    """``seeds.csv``: per compared name and training seed, ``n_cases``, the mean of each of ``dice, iou, key_dice,
    hd95`` over the seed's cases and ``train_min`` (that seed's training minutes summed over the folds)."""
    names = list(names or dict.fromkeys(cases["model"]))
    metrics = [m for m in ("dice", "iou", "key_dice", "hd95") if m in cases]
    rows = []
    for model in names:
        table = cases[cases["model"] == model]
        times = timings[timings["model"] == model]
        for seed in _seeds_of(table):
            one = table[table["seed"] == seed] if "seed" in table else table
            minutes = times[times["seed"] == seed] if "seed" in times else times
            rows.append({"model": model, "seed": seed, "n_cases": len(one), **{m: float(one[m].mean()) for m in metrics},
                         "train_min": float(minutes["train_min"].sum(skipna=False))})
    return pd.DataFrame(rows, columns=["model", "seed", "n_cases", *metrics, "train_min"])


@dataclass
class Tables:
    """What :func:`write_tables` wrote: ``table``, ``paired``, ``levers`` (``None`` without variants), ``seeds``."""

    table: pd.DataFrame
    paired: pd.DataFrame
    levers: pd.DataFrame | None
    seeds: pd.DataFrame


def write_tables(
    out: Path,
    cases: pd.DataFrame,
    timings: pd.DataFrame,
    kp_errors: pd.DataFrame | None,
    costs: Mapping[str, tuple[float, float]],
    reference: str,
    note: str,
    names: Sequence[str] | None = None,
    n_boot: int = 10000,
    seed: int = 0,
) -> Tables:
    """Write ``cases.csv``, ``folds.csv``, ``kp_errors.csv`` (when known), ``table.csv`` / ``table.md`` (the table, then
    ``note``), ``seeds.csv``, ``paired.csv`` / ``paired.md`` against ``reference`` and, when ``names`` hold
    variants ``<model>+<variant>``, ``levers.csv`` / ``levers.md`` (each variant against its own model, seed
    with seed: the same trained networks).

    Args:
        cases, timings, kp_errors, costs, names: see :func:`model_table`.
        reference: the model the others are paired with.
        note: the text under ``table.md``'s table (how many cases, the scheme, the wall time).
        n_boot, seed: the bootstrap's resamples and seed.

    Raises:
        ValueError: ``reference`` is not among the models.
    """
    names = list(names or dict.fromkeys(cases["model"]))
    table = model_table(cases, timings, kp_errors, costs, names)
    seeds = seeds_table(cases, timings, names)
    paired = paired_table(cases, reference, n_boot=n_boot, seed=seed)
    levers = None
    variants = [name for name in names if "+" in name]
    if variants:
        # a variant predicts with its model's own networks: seed s of the one belongs with seed s of the other
        levers = pd.concat([paired_table(cases[cases["model"].isin([name.partition("+")[0], name])],
                                         name.partition("+")[0], n_boot=n_boot, seed=seed, paired_seeds=True)
                            for name in variants], ignore_index=True)
        write_csv(levers, out / "levers.csv")
        atomic_write(out / "levers.md", lambda tmp: tmp.write_text(paired_markdown(levers, n_boot, seed, 0.95, True)))
    write_csv(table, out / "table.csv")
    write_csv(cases, out / "cases.csv")
    write_csv(timings[[c for c in FOLD_COLUMNS if c in timings]], out / "folds.csv")
    if kp_errors is not None:
        write_csv(kp_errors[KP_COLUMNS], out / "kp_errors.csv")
    write_csv(seeds, out / "seeds.csv")
    write_csv(paired, out / "paired.csv")
    if "n_seeds" in table:
        counts = sorted(set(table["n_seeds"]))
        note += (f"Training seeds per model: {', '.join(map(str, counts))}. Means are over every seed's predictions; "
                 "dice_seed_std, dice_seed_min and dice_seed_max are the spread of the seeds' mean Dice (per seed: "
                 "seeds.csv); train_min is per seed, summed over the folds.\n")
    atomic_write(out / "table.md", lambda tmp: tmp.write_text(markdown(table) + note))
    atomic_write(out / "paired.md", lambda tmp: tmp.write_text(paired_markdown(paired, n_boot, seed, 0.95)))
    return Tables(table, paired, levers, seeds)
