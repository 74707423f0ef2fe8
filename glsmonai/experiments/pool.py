"""``glsmonai compare-pool``: comparisons that differ only in their training seed, pooled into one.

Each run folder is a ``glsmonai compare`` output (``cases.csv``, and ``folds.csv``, ``kp_errors.csv``,
``table.csv`` and ``summary.json`` where it has them). The pooled folder gets the tables ``compare`` writes
(:func:`~glsmonai.experiments.tables.write_tables`), with the runs' seeds as the training seeds: each model's
seed-to-seed spread, and paired intervals that resample seeds within patients.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from glsmonai.evaluation.html_report import write_compare_report
from glsmonai.evaluation.reports import compare_summary, write_json
from glsmonai.experiments.tables import FOLD_COLUMNS, KP_COLUMNS, write_tables

logger = logging.getLogger(__name__)

__all__ = ["pool_runs"]


def _summary(run: Path) -> dict:
    path = run / "summary.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text()).get("evaluated") or {}
    except (OSError, json.JSONDecodeError, AttributeError) as err:
        raise ValueError(f"{path}: not a compare summary.json ({err})") from None


def _without_seed(overrides: Sequence[str]) -> list[str]:
    return [o for i, o in enumerate(overrides) if o != "--seed" and not (i > 0 and overrides[i - 1] == "--seed")]


def _recorded_seeds(cases: pd.DataFrame, evaluated: dict) -> list[int] | None:
    """The training seeds a run records: its ``cases.csv``'s ``seed`` column, else the ``--seed`` override its
    ``summary.json`` lists, else ``None``."""
    if "seed" in cases:
        return sorted(int(s) for s in set(cases["seed"]))
    overrides = list(evaluated.get("overrides") or [])
    given = [overrides[i + 1] for i in range(len(overrides) - 1) if overrides[i] == "--seed"]
    return [int(given[-1])] if given else None


def _read(path: Path, required: bool = False) -> pd.DataFrame | None:
    if not path.is_file():
        if required:
            raise FileNotFoundError(f"{path} not found: is {path.parent} a glsmonai compare output folder?")
        return None
    return pd.read_csv(path)


def pool_runs(
    runs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    reference: str = "unet",
    n_boot: int = 10000,
    seed: int = 0,
) -> pd.DataFrame:
    """Pool ``compare`` runs that differ only in the training seed into ``out``.

    A run's training seed is the ``seed`` column of its ``cases.csv`` (``compare`` writes it), else the
    ``--seed`` override of its ``summary.json`` (``--set seed=N``), else, for runs that record neither, the
    lowest seeds no other run records, in the order given. Writes ``cases.csv`` (with each row's ``seed``),
    ``folds.csv``, ``kp_errors.csv`` (when every run has one), ``table.csv`` / ``table.md`` (means over every
    seed, the seeds' spread, training minutes per seed), ``seeds.csv``, ``paired.csv`` / ``paired.md`` (the
    hierarchical interval over patients and seeds), ``levers.csv`` / ``levers.md`` (when the runs hold
    variants), ``summary.json`` and ``report.html``.

    Args:
        runs: the ``compare`` output folders.
        out: the pooled folder (not one of ``runs``).
        reference: the model the others are paired with.
        n_boot, seed: the bootstrap's resamples and seed.

    Returns:
        the pooled table, one row per model.

    Raises:
        FileNotFoundError: a run has no ``cases.csv``.
        ValueError: no run, ``out`` is a run, the runs hold other models or cases (folds, images, groups),
            other bundle overrides or presets apart from the seed, or two runs the same model and seed.
    """
    folders = [Path(r) for r in runs]
    out = Path(out)
    if not folders:
        raise ValueError("compare-pool needs at least one compare run folder")
    if any(out.resolve() == f.resolve() for f in folders):
        raise ValueError(f"{out} is one of the runs: choose another output folder")
    tables = [_read(f / "cases.csv", required=True) for f in folders]
    settings = [_summary(f) for f in folders]
    recorded = [_recorded_seeds(t, s) for t, s in zip(tables, settings)]
    taken = {s for seeds in recorded if seeds for s in seeds}
    free = (s for s in range(len(taken) + len(folders)) if s not in taken)
    seeds = [seeds if seeds is not None else [next(free)] for seeds in recorded]
    for folder, given, assigned in zip(folders, recorded, seeds):
        if given is None:
            logger.info("%s records no training seed: pooled as seed %d", folder, assigned[0])
    first = tables[0]
    for folder, table, evaluated in zip(folders[1:], tables[1:], settings[1:]):
        if list(dict.fromkeys(table["model"])) != list(dict.fromkeys(first["model"])):
            raise ValueError(f"{folder} holds the models {list(dict.fromkeys(table['model']))}, {folders[0]} "
                             f"{list(dict.fromkeys(first['model']))}: pool runs of the same models")
        for model in dict.fromkeys(first["model"]):
            ours = set(map(tuple, table.loc[table["model"] == model, ["fold", "image", "group"]].astype(str).to_numpy()))
            theirs = set(map(tuple, first.loc[first["model"] == model, ["fold", "image", "group"]].astype(str).to_numpy()))
            if ours != theirs:
                odd = sorted(ours ^ theirs)[0]
                raise ValueError(f"{folder} and {folders[0]} differ in {model}'s cases (fold, image, group), e.g. {odd}: "
                                 "pool runs of the same folds")
        for key in ("presets", "overrides"):
            if key in evaluated and key in settings[0]:
                a, b = _without_seed(evaluated[key]), _without_seed(settings[0][key])
                if a != b:
                    raise ValueError(f"{folder} and {folders[0]} differ in their {key} ({a} vs {b}), not only in the "
                                     "training seed")
    owner: dict[tuple[str, int], Path] = {}
    cases, timings, kp_tables, costs = [], [], [], {}
    for folder, table, run_seeds in zip(folders, tables, seeds):
        if "seed" not in table:
            table.insert(2, "seed", run_seeds[0])
        for model, s in dict.fromkeys(zip(table["model"], table["seed"])):
            if (model, int(s)) in owner:
                raise ValueError(f"{owner[model, int(s)]} and {folder} both hold {model} trained with seed {s}: pool "
                                 "runs trained with different seeds (--set seed=N)")
            owner[model, int(s)] = folder
        cases.append(table)
        folds = _read(folder / "folds.csv")
        if folds is None:
            logger.warning("%s has no folds.csv: training minutes unknown", folder)
            folds = table[["model", "fold", "seed"]].drop_duplicates().assign(train_min=np.nan, infer_s=np.nan)
        elif "seed" not in folds:
            folds.insert(2, "seed", run_seeds[0])
        timings.append(folds)
        kp = _read(folder / "kp_errors.csv")
        kp_tables.append(kp.assign(seed=kp["seed"] if "seed" in kp else run_seeds[0]) if kp is not None else None)
        costs_table = _read(folder / "table.csv")
        if costs_table is not None and {"params_M", "gflops"} <= set(costs_table):
            for row in costs_table.to_dict("records"):
                costs.setdefault(row["model"], (row["params_M"], row["gflops"]))
    kp_errors = None
    if all(kp is not None for kp in kp_tables):
        kp_errors = pd.concat(kp_tables, ignore_index=True)[KP_COLUMNS]
    else:
        logger.warning("not every run has kp_errors.csv (compare writes it since glsmonai 0.5): keypoint columns left empty")
    pooled = pd.concat(cases, ignore_index=True)
    timing = pd.concat(timings, ignore_index=True)
    timing = timing[[c for c in FOLD_COLUMNS if c in timing]]
    all_seeds = sorted({s for run_seeds in seeds for s in run_seeds})
    n_cases = len(first.drop_duplicates(["model", "fold", "image"])) // first["model"].nunique()
    note = (f"\n{n_cases} cases, pooled from {len(folders)} compare runs ({', '.join(str(f) for f in folders)}) with the "
            f"training seeds {', '.join(map(str, all_seeds))}; each run's own table.md has its scheme and wall time.\n")
    out.mkdir(parents=True, exist_ok=True)
    written = write_tables(out, pooled, timing, kp_errors, costs, reference, note, n_boot=n_boot, seed=seed)
    names = list(dict.fromkeys(pooled["model"]))
    evaluated = {"runs": [os.path.abspath(f) for f in folders], "models": names, "reference": reference,
                 "scheme": f"{len(folders)} compare runs pooled over their training seeds", "seed": seed,
                 "training_seeds": all_seeds, **{k: settings[0][k] for k in ("datalist", "dataset_dir", "folds", "presets")
                                                 if k in settings[0]},
                 "overrides": _without_seed(settings[0].get("overrides") or []),
                 "summary_json": os.path.abspath(out / "summary.json")}
    errors = windows = None
    if kp_errors is not None:
        errors = {m: kp_errors.loc[kp_errors["model"] == m, "error"].tolist() for m in names}
        windows = {m: kp_errors.loc[kp_errors["model"] == m, ["window_h", "window_w"]].to_numpy().tolist() for m in names}
    document = compare_summary(pooled, written.table, written.paired, evaluated, errors, windows, written.levers)
    write_json(out / "summary.json", document)
    write_compare_report(out / "report.html", document, written.table, written.paired, pooled, written.levers)
    return written.table
