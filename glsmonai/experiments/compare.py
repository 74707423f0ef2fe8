"""``glsmonai compare``: train GLS and its baselines on one datalist, score them on one table.

Every model is trained with the same bundle (``bundles/gls/configs/train.json`` plus its overlay), the same
data, overrides and budget, predicted with the same predictor, and scored per case by the folder scorer
of ``glsmonai evaluate`` (:func:`~glsmonai.evaluation.reports.score_folder`): Dice, IoU, 95 % Hausdorff
distance (MONAI), key-region Dice inside the GLS crop windows at the reference keypoints, and, for the
models that predict keypoints (GS, GLS), the keypoint error in original pixels.

With ``folds = K >= 2`` (the default, 5) the comparison is cross-validated by group (patient): every
labelled case of the datalist, whatever its split, is tested exactly once, by models that never saw
its group (:mod:`glsmonai.data.folds`), and each model's per-case differences to a reference model
get a cluster-bootstrap confidence interval (:mod:`glsmonai.evaluation.statistics`). With
``folds = 0`` the datalist's own split is used: train on ``training``, choose checkpoints on
``validation``, score ``testing`` (``validation`` when there is none). With ``seeds = S > 1`` every model is
trained ``S`` times per round with different training seeds, and the intervals cover the seeds too.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from glsmonai.data.io import split_ext
from glsmonai.data.pairs import prediction_path
from glsmonai.evaluation.html_report import write_compare_report
from glsmonai.evaluation.reports import AREAS, CaseFiles, compare_summary, score_folder, write_json
from glsmonai.evaluation.scoring import COUNTS
from glsmonai.experiments.cost import model_cost
from glsmonai.experiments.external import check_external, predict_external, score_external, write_external_tables
from glsmonai.experiments.panels import write_panels
from glsmonai.experiments.rounds import DatalistFile, Round, plan_rounds, select_rounds
from glsmonai.experiments.runner import train_and_predict
from glsmonai.experiments.tables import CASE_METRICS, KP_COLUMNS, write_tables
from glsmonai.experiments.training import MODELS, Arm, TrainingSeed, bundle_files, training_seeds
from glsmonai.experiments.variants import VARIANT_NAMES, split_name
from glsmonai.model_folder import read_model_info
from glsmonai.resources import configs_dir
from glsmonai.transforms.spatial import WorkingGrid

logger = logging.getLogger(__name__)

__all__ = ["WINDOW_MODELS", "compare", "key_window"]

#: models whose crop windows define the key regions, in order of preference
WINDOW_MODELS = ("gls", "gls_working", "gls_original", "gs")


def key_window(info: dict) -> Callable[[tuple[int, int]], tuple[int, int]]:
    """The key-region window ``(h, w)`` in original pixels of a scan of ``(rows, cols)``, as the GLS model whose
    ``gls_model.json`` is ``info`` crops it: its fixed ``crop_window``, else its working crop seen at the scan's size."""
    crop, fixed = info["network"]["crop_size"], info.get("crop_window")  # fixed: original pixels

    def window(shape: tuple[int, int]) -> tuple[int, int]:
        if fixed:
            return tuple(int(round(c)) for c in fixed)
        scale = WorkingGrid(shape, tuple(info["image_size"])).scale
        return tuple(int(round(c / scale)) for c in crop)

    return window


def _score(
    rounds: Sequence[Round], names: Sequence[str], seeds: Sequence[TrainingSeed], out: Path, window_model: str,
    label_value: int | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every compared name's predictions of every round and seed: ``cases.csv`` and ``kp_errors.csv``.

    Raises:
        RuntimeError: a prediction could not be scored (the message names it).
    """
    rows, kp_rows = [], []
    for round_ in rounds:
        window = key_window(read_model_info(round_.run(out, window_model, seeds[0].folder) / "models"))
        for name in names:
            model, folder = split_name(name)
            for seed in seeds:
                predictions = round_.run(out, model, seed.folder) / folder
                cases = [CaseFiles(Path(c["image"]).name, prediction_path(predictions, *split_ext(Path(c["image"]))),
                                   Path(c["label"]), c.get("keypoints")) for c in round_.cases]
                scored = score_folder(predictions, cases, label_value, window=window)
                if scored.failures:
                    reason = scored.failures[0][1]
                    raise RuntimeError(f"{name}, fold {round_.k}: {len(scored.failures)} case(s) could not be scored: {reason}")
                groups = {Path(c["image"]).name: c["group"] for c in round_.cases}
                for case in scored.cases:
                    key = {"model": name, "fold": round_.k, "seed": seed.value, "image": case.image}
                    rows.append({**key, "group": groups[case.image],
                                 **{m: case.scores[m] for m in (*CASE_METRICS, *COUNTS, *AREAS) if m in case.scores}})
                    kp_rows += [{**key, "k": k, "error": e, "window_h": case.window[0], "window_w": case.window[1]}
                                for k, e in enumerate(case.kp_errors)]
    return pd.DataFrame(rows), pd.DataFrame(kp_rows, columns=KP_COLUMNS)


def compare(
    datalist: str | os.PathLike,
    dataset_dir: str | os.PathLike,
    out: str | os.PathLike,
    models: Sequence[str] = tuple(MODELS),
    overrides: Sequence[str] = (),
    configs: str | os.PathLike | None = None,
    n_panels: int = 4,
    folds: int = 5,
    reference: str = "unet",
    seed: int = 0,
    val_fraction: float = 0.2,
    n_boot: int = 10000,
    variants: Sequence[str] = (),
    presets: Sequence[str] = (),
    seeds: int = 1,
    test: str | os.PathLike | None = None,
    only_folds: Sequence[int] | None = None,
    arms: Sequence[Arm] = (),
) -> pd.DataFrame:
    """Train, predict and score ``models``, cross-validated by group or on the datalist's own split.

    Writes into ``out``:

    - ``folds/fold<k>.json`` (``folds >= 2``): each round's datalist;
    - ``<model>/fold<k>/`` (``<model>/`` with ``folds = 0``; ``.../seed<s>/`` below it with ``seeds > 1``): the
      training run, its ``models/`` and the test cases' ``predictions/``;
    - ``cases.csv``: ``model, fold, seed, image, group, dice, iou, hd95, key_dice``, the pixel counts ``tp, fp,
      fn, ref_px, pred_px`` (and ``ref_mm2, pred_mm2`` where the labels record their pixel size), every
      case once per model and training seed (as a test case of its fold);
    - ``folds.csv``: ``model, fold, seed, n_training, n_validation, n_testing, test_groups, train_min, infer_s``;
    - ``kp_errors.csv``: ``model, fold, seed, image, k, error, window_h, window_w``, every predicted keypoint's
      error (original pixels) and its case's key-region window;
    - ``table.csv`` / ``table.md``: per model, means over all cases (Dice and IoU with their std,
      key-region Dice, HD95, keypoint error mean / median / max and missed rate), parameters and
      GFLOPs (fold 0's model), training minutes summed over the folds (per seed), images per second, case
      count, and with ``seeds > 1`` the seeds' spread of mean Dice; ``table.md`` ends with this call's wall time;
    - ``seeds.csv``: per model and training seed, its mean scores and training minutes;
    - ``paired.csv`` / ``paired.md``: :func:`~glsmonai.evaluation.paired.paired_table` against ``reference``;
    - ``panels/*.png``: the first ``n_panels`` test cases of fold 0, every model's contour in red over
      the reference in green;
    - ``summary.json`` (:func:`~glsmonai.evaluation.reports.compare_summary`: per model, per case and mean
      scores, and the tables above) and ``report.html`` with ``report_files/``
      (:func:`~glsmonai.evaluation.html_report.write_compare_report`), a page that opens from disk.

    Models are trained round by round (every model of fold 0, then of fold 1, ...), and a model already
    trained with the same overrides and datalist is not trained again, so an interrupted comparison
    resumes where it stopped.

    Args:
        datalist, dataset_dir: the data (its ``task`` block sets keypoints and label value; its entries'
            ``group``, else ``patient``, else their image path, the groups).
        out: output folder.
        models: names from :data:`~glsmonai.experiments.training.MODELS`.
        overrides: extra ``--key value`` bundle overrides given to every model (e.g. ``--epochs 20``).
        n_panels: how many test cases get a figure.
        folds: ``K >= 2`` group folds, or 0 for the datalist's own split.
        reference: the model of ``models`` the paired differences are taken against.
        seed: seed of the fold assignment, of the validation draw and of the bootstrap (the training
            seed is the bundle's ``seed`` override).
        val_fraction: share of the groups outside the test fold used for validation
            (see :func:`~glsmonai.data.folds.fold_split`).
        n_boot: bootstrap resamples of the paired intervals.
        configs: the bundle's configs folder (default: the installed package's, :func:`~glsmonai.resources.configs_dir`).
        presets: overlays ``configs/<name>.json`` applied to every model before its own overlay
            (e.g. ``cpu``, the CPU preset).
        variants: names from :data:`~glsmonai.inference.options.VARIANTS`: every trained model also predicts
            the test cases with these prediction-time options (``<model>/fold<k>/predictions_<variant>``), scored
            as models ``<model>+<variant>``; ``levers.csv`` / ``levers.md`` hold each variant's paired difference
            to its own model (the same trained networks, so the difference is the lever's alone).
        seeds: ``S``: every model is trained ``S`` times per round, with the training seeds ``base .. base + S - 1``
            (``base``: the overrides' ``--seed``, else the bundle's; see
            :func:`~glsmonai.experiments.training.training_seeds`), and the paired intervals resample the seeds
            within each group (:func:`~glsmonai.evaluation.statistics.hierarchical_paired_difference`).
        test: a datalist whose ``testing`` entries (paths relative to ``dataset_dir``) are an external test set,
            sharing no group with ``datalist``: after the cross-validation every model's fold ensemble (per
            seed) and each of its fold models predict it, and ``test_cases.csv``, ``test_table.csv`` / ``.md`` and
            ``test_paired.csv`` / ``.md`` are written (:mod:`~glsmonai.experiments.external`); the other outputs
            are the same as without it. The ``variants`` that are prediction options (not the oracle) predict it
            too, as ``<model>+<variant>``. Needs ``folds >= 2``.
        arms: training-time levers (:class:`~glsmonai.experiments.training.Arm`): each is compared as one more
            model, named by the arm, trained as its model with its overrides on the same rounds and seeds; with
            ``reference`` its model (or the model it is to be measured against), ``paired.md`` gives the lever's
            difference. An arm's training minutes are in ``table.md`` beside the others', for equal-time
            comparisons; an arm that takes a stage from another compared model (``stage1_of=NAME``) counts the
            minutes that stage cost there too, where that run recorded them (``models/stage_seconds.json``).

    Returns:
        the table, one row per model.

    Raises:
        ValueError: an unknown model, a ``reference`` not among ``models``, no key-region model among
            ``models``, a bad ``folds`` or ``seeds`` value or too few groups for it; a ``test`` datalist without
            labelled ``testing`` entries, sharing a group with ``datalist``, or with ``folds = 0``.
        RuntimeError: a training or a prediction failed (the message names the log).
    """
    wall_start = time.perf_counter()
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    arm_names = [a.name for a in arms]
    if len(set(arm_names)) < len(arm_names) or set(arm_names) & set(models):
        raise ValueError(f"arm names {arm_names} must differ from each other and from the models {list(models)}")
    by_arm = {a.name: a for a in arms}
    models = [*models, *arm_names]
    if not models:
        raise ValueError("no model to compare: name --models, or give --arm")
    for arm in arms:  # a stage taken from another compared model: that model trains first
        for stage, name in arm.stages_of:
            if name not in models[: models.index(arm.name)]:
                raise ValueError(f"--arm {arm.name}: {stage}_of={name}: {name} must be one of --models or an arm "
                                 f"given before it ({models[: models.index(arm.name)]})")
    unknown = [v for v in variants if v not in VARIANT_NAMES]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {list(VARIANT_NAMES)}")
    if reference not in models:
        raise ValueError(f"reference model {reference!r} is not one of the compared models {list(models)} (see --reference)")
    window_model = next((m for w in WINDOW_MODELS for m in models if (by_arm[m].model if m in by_arm else m) == w),
                        None)
    if window_model is None:
        raise ValueError(f"compare needs one of {WINDOW_MODELS} among the models: the key regions are the GLS windows")
    out = Path(out)
    configs = Path(configs) if configs is not None else configs_dir()
    first = by_arm[models[0]].model if models[0] in by_arm else models[0]
    training = training_seeds(seeds, overrides, bundle_files(configs, first, presets))
    source = DatalistFile.read(datalist, dataset_dir)
    external = DatalistFile.read(test, dataset_dir) if test is not None else None
    test_cases = check_external(external, source, folds) if external is not None else None
    rounds = select_rounds(plan_rounds(source, out, folds, seed, val_fraction), only_folds)
    timings = pd.DataFrame(train_and_predict(rounds, models, training, out, configs, presets, variants, by_arm))
    names = [*models, *(f"{m}+{v}" for m in models for v in variants)]
    cases, kp_errors = _score(rounds, names, training, out, window_model, source.task.get("label_value"))
    duplicated = cases.duplicated(["model", "seed", "image"])
    if duplicated.any():
        raise ValueError(f"{source.path}: image {cases.loc[duplicated, 'image'].iloc[0]} is scored twice: "
                         "image file names must be unique")
    costs = {m: model_cost(rounds[0].run(out, m, training[0].folder) / "models") for m in models}
    wall_min = (time.perf_counter() - wall_start) / 60
    scheme = (f"{folds}-fold cross-validation by group (seed {seed})" if folds and only_folds is None else
              f"fold(s) {', '.join(str(r.k) for r in rounds)} of a {folds}-fold cross-validation by group (seed {seed})"
              if folds else
              f"the datalist's own split, scored on {rounds[0].split}")
    n_cases = len(cases.drop_duplicates(["model", "fold", "image"])) // len(names)
    note = (f"\n{n_cases} cases, {scheme}; wall time of this call {wall_min:.1f} min "
            f"(models trained by an earlier call are reused; per model and fold: folds.csv).\n")
    tables = write_tables(out, cases, timings, kp_errors, costs, reference, note, names, n_boot, seed)
    for row in tables.table.to_dict("records"):
        logger.info("%s: %s", row["model"], {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
    logger.info("compare: %d model(s) x %d round(s) x %d seed(s) in %.1f min", len(models), len(rounds), len(training),
                wall_min)
    panels = write_panels(out / "panels", rounds[0].cases[:n_panels],
                          {m: rounds[0].run(out, m, training[0].folder) / "predictions" for m in models},
                          source.task.get("label_value"))
    evaluated = {"datalist": os.path.abspath(source.path), "dataset_dir": os.path.abspath(source.dataset_dir),
                 "models": names, "reference": reference, "folds": folds, "scheme": scheme, "seed": seed,
                 "val_fraction": val_fraction, "variants": list(variants), "presets": list(presets),
                 "overrides": list(overrides), "training_seeds": [s.value for s in training],
                 "arms": {a.name: {"model": a.model, "overrides": list(a.overrides), "stages_of": dict(a.stages_of)}
                          for a in arms},
                 "summary_json": os.path.abspath(out / "summary.json")}
    errors = {m: kp_errors.loc[kp_errors["model"] == m, "error"].tolist() for m in names}
    windows = {m: kp_errors.loc[kp_errors["model"] == m, ["window_h", "window_w"]].to_numpy().tolist() for m in names}
    document = compare_summary(cases, tables.table, tables.paired, evaluated, errors, windows, tables.levers)
    write_json(out / "summary.json", document)
    write_compare_report(out / "report.html", document, tables.table, tables.paired, cases, tables.levers, panels)
    if external is not None:  # after the cross-validation's outputs, which it leaves as they are
        runs = predict_external(external, rounds, models, training, out, variants)
        window = key_window(read_model_info(rounds[0].run(out, window_model, training[0].folder) / "models"))
        label_value = external.task.get("label_value", source.task.get("label_value"))
        test_scores, test_kp = score_external(test_cases, runs, rounds, training, out, window, label_value)
        write_external_tables(out, test_scores, runs, test_kp, list(runs["model"].unique()), reference, len(rounds),
                              n_boot, seed)
    return tables.table
