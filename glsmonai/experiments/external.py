"""An external test set after the cross-validation (``compare --test DATALIST``): fold ensembles against fold models.

A comparison trains every model once per fold (and training seed). On an external test set (the ``testing``
entries of another datalist, e.g. ``data_lists/camus_lockbox.json``, sharing no group with the compared
datalist) each model is predicted twice over, as nnU-Net predicts a test set after its cross-validation:

- by its fold ensemble, all its fold models of one training seed averaged
  (:class:`~glsmonai.inference.predict_from_raw_data.Predictor` with every fold's model folder), into
  ``<model>/test_ensemble/`` (``.../seed<s>/`` with several seeds);
- by each fold model alone, into ``<model>/fold<k>/[seed<s>/]test_predictions/``.

Both are predicted with every prediction-time option off (:data:`~glsmonai.inference.options.PLAIN`), as
compare predicts its folds, and with each of compare's ``--variants`` that is a prediction option (``recorded``:
the options the model folders record, what ``glsmonai predict`` does by default) as ``<model>+<variant>``, into
``test_ensemble_<variant>/`` and ``test_predictions_<variant>/``. The oracle (``ref_keypoints``) is left out: an
external test set is predicted as a user would. Every prediction is scored by the folder scorer of ``evaluate``,
and tabled:

- ``test_cases.csv``: ``model, members, seed, image, group`` and the scores (``members``: ``ensemble`` or
  ``fold<k>``);
- ``test_table.csv`` / ``test_table.md``: per model, its ensemble (``<model>``) and one fold model
  (``<model>@fold``: the means over every fold model), with the prediction seconds of each;
- ``test_paired.csv`` / ``test_paired.md``: each ensemble against the reference's ensemble (the hierarchical
  interval of ``paired.md``), and each ensemble against one of its fold models.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from glsmonai.data.folds import SPLITS, entry_group
from glsmonai.data.io import split_ext
from glsmonai.data.pairs import prediction_path
from glsmonai.evaluation.paired import paired_markdown, paired_table
from glsmonai.evaluation.reports import AREAS, CaseFiles, score_folder, write_csv
from glsmonai.evaluation.scoring import COUNTS
from glsmonai.experiments.rounds import DatalistFile, Round
from glsmonai.experiments.tables import CASE_METRICS, markdown, model_table
from glsmonai.experiments.training import TrainingSeed
from glsmonai.experiments.variants import ORACLE, split_name
from glsmonai.inference import PLAIN, run_inference, variant_options
from glsmonai.utils import atomic_write

logger = logging.getLogger(__name__)

__all__ = ["ENSEMBLE", "FOLD_MODEL", "check_external", "predict_external", "score_external", "write_external_tables"]

#: ``members`` of an ensemble's rows in ``test_cases.csv``
ENSEMBLE = "ensemble"
#: the suffix of a model's fold models in ``test_table`` and ``test_paired`` (``gls@fold``)
FOLD_MODEL = "@fold"
#: the split of the external datalist that is predicted
TEST_SPLIT = "testing"


def check_external(test: DatalistFile, source: DatalistFile, folds: int) -> list[dict]:
    """The external test cases, checked before anything trains.

    Raises:
        ValueError: ``folds`` < 2 (no fold ensemble), no ``testing`` entries or an entry without a label, or a
            group (patient) of the test set that the compared datalist holds too (the message names both files).
    """
    if folds < 2:
        raise ValueError(f"--test predicts with each model's fold ensemble: it needs --folds K >= 2, got {folds}")
    cases = test.cases(TEST_SPLIT)
    seen = {entry_group({**e, "image": Path(str(e["image"])).name}) for s in SPLITS
            for e in source.content.get(s) or [] if isinstance(e, dict) and "image" in e}
    shared = sorted({c["group"] for c in cases} & seen)
    if shared:
        raise ValueError(f"{test.path}: group {shared[0]} ({len(shared)} in all) is also in {source.path}: an "
                         "external test set shares no group (patient) with the compared datalist")
    return cases


def _ensemble_dir(out: Path, name: str, seed: TrainingSeed) -> Path:
    """Where the fold ensemble of one training seed of ``name`` (``<model>`` or ``<model>+<variant>``) predicts the
    test cases."""
    model, folder = split_name(name)  # folder: predictions[_<variant>]
    path = out / model / f"test_ensemble{folder.removeprefix('predictions')}"
    return path / seed.folder if seed.folder else path


def _predictions(out: Path, name: str, seed: TrainingSeed, rounds: Sequence[Round], members: str) -> Path:
    """The prediction folder of ``members`` (``ensemble`` or ``fold<k>``) of ``name`` (``<model>[+<variant>]``) and
    ``seed``."""
    if members == ENSEMBLE:
        return _ensemble_dir(out, name, seed)
    model, folder = split_name(name)
    return rounds[int(members.removeprefix("fold"))].run(out, model, seed.folder) / f"test_{folder}"


def predict_external(
    test: DatalistFile, rounds: Sequence[Round], models: Sequence[str], seeds: Sequence[TrainingSeed], out: Path,
    variants: Sequence[str] = (),
) -> pd.DataFrame:
    """Predict the external test cases with every model's fold ensemble and each of its fold models, per seed:
    plainly, then with each of ``variants`` that is a prediction option (as ``<model>+<variant>``).

    Returns:
        one row per prediction: ``model, members, seed, n_networks, predict_s`` (``model``: the compared name;
        ``predict_s``: the seconds it took, reading, the networks, writing).

    Raises:
        RuntimeError: a case could not be predicted (the message names the folder and the case).
    """
    rows = []
    names = [*((m, None) for m in models), *((m, v) for v in variants if v != ORACLE for m in models)]
    for model, variant in names:
        name, options = (f"{model}+{variant}", variant_options(variant)) if variant else (model, PLAIN)
        for seed in seeds:
            folders = [round_.run(out, model, seed.folder) / "models" for round_ in rounds]
            for members, model_dirs in [(ENSEMBLE, folders), *((f"fold{r.k}", [f]) for r, f in zip(rounds, folders))]:
                target = _predictions(out, name, seed, rounds, members)
                start = time.perf_counter()
                failures = run_inference(test.path, target, model_dirs, options, overlays=False, split=TEST_SPLIT,
                                         dataset_dir=test.dataset_dir)
                if failures:
                    raise RuntimeError(f"{target}: prediction of the external test set failed for {len(failures)} "
                                       f"case(s): {failures[0]}")
                seconds = time.perf_counter() - start
                rows.append({"model": name, "members": members, "seed": seed.value, "n_networks": len(model_dirs),
                             "predict_s": seconds})
            logger.info("%s%s: external test set predicted by the ensemble of %d folds in %.1f s, by one fold model "
                        "in %.1f s (mean)", name, f", seed {seed.value}" if seed.folder else "", len(rounds),
                        rows[-len(rounds) - 1]["predict_s"], sum(r["predict_s"] for r in rows[-len(rounds):]) / len(rounds))
    return pd.DataFrame(rows)


def score_external(
    test_cases: Sequence[dict], timings: pd.DataFrame, rounds: Sequence[Round], seeds: Sequence[TrainingSeed],
    out: Path, window: Callable[[tuple[int, int]], tuple[int, int]], label_value: int | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every prediction of :func:`predict_external`: ``test_cases.csv`` and the keypoint errors.

    Raises:
        RuntimeError: a prediction could not be scored (the message names it).
    """
    by_value = {seed.value: seed for seed in seeds}
    groups = {Path(c["image"]).name: c["group"] for c in test_cases}
    rows, kp_rows = [], []
    for run in timings.to_dict("records"):
        predictions = _predictions(out, run["model"], by_value[run["seed"]], rounds, run["members"])
        cases = [CaseFiles(Path(c["image"]).name, prediction_path(predictions, *split_ext(Path(c["image"]))),
                           Path(c["label"]), c.get("keypoints")) for c in test_cases]
        scored = score_folder(predictions, cases, label_value, window=window)
        if scored.failures:
            raise RuntimeError(f"{predictions}: {len(scored.failures)} case(s) could not be scored: {scored.failures[0][1]}")
        for case in scored.cases:
            key = {"model": run["model"], "members": run["members"], "seed": run["seed"], "image": case.image}
            rows.append({**key, "group": groups[case.image],
                         **{m: case.scores[m] for m in (*CASE_METRICS, *COUNTS, *AREAS) if m in case.scores}})
            kp_rows += [{**key, "k": k, "error": e, "window_h": case.window[0], "window_w": case.window[1]}
                        for k, e in enumerate(case.kp_errors)]
    columns = ["model", "members", "seed", "image", "k", "error", "window_h", "window_w"]
    return pd.DataFrame(rows), pd.DataFrame(kp_rows, columns=columns)


def _as_compared(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``test_cases.csv`` (or its keypoint errors, its timings) under the names of the tables: ``<model>``
    for the ensembles, ``<model>@fold`` for the fold models; one fold (0) for all, as one test set."""
    single = frame["members"] != ENSEMBLE
    return frame.assign(model=frame["model"].where(~single, frame["model"] + FOLD_MODEL), fold=0)


def write_external_tables(
    out: Path, cases: pd.DataFrame, timings: pd.DataFrame, kp_errors: pd.DataFrame, models: Sequence[str],
    reference: str, n_folds: int, n_boot: int = 10000, seed: int = 0,
) -> pd.DataFrame:
    """Write ``test_cases.csv``, ``test_table.csv`` / ``.md`` and ``test_paired.csv`` / ``.md``.

    ``test_table``: per model two rows, ``<model>`` (its fold ensembles) and ``<model>@fold`` (its fold models),
    with the columns of ``table.csv`` that concern prediction (the scores, their spread, ``infer_img_s``), the
    networks each prediction runs (``n_networks``) and the seconds one prediction of the test set took
    (``predict_s``: the mean over the seeds, and for ``@fold`` over the fold models too).

    ``test_paired``: ``<model> - <reference>`` for every ensemble against the reference's ensemble
    (:func:`~glsmonai.evaluation.paired.paired_table`: patients resampled and, with several seeds, each model's
    seeds independently); and ``<model> - <model>@fold`` for every ensemble against one of its fold models: the
    fold models of every seed stand as the reference's "seeds", drawn independently of the ensemble's, so the
    mean is the ensemble against the average fold model and the interval carries the spread between fold models.

    Returns:
        the test table.
    """
    compared = _as_compared(cases)
    names = [name for model in models for name in (model, model + FOLD_MODEL)]
    table = model_table(compared, _as_compared(timings).assign(train_min=float("nan"), infer_s=timings["predict_s"]),
                        _as_compared(kp_errors), {}, names)
    table = table.drop(columns=["params_M", "gflops", "train_min"])
    table.insert(1, "n_networks", [n_folds if "@" not in name else 1 for name in names])
    table["predict_s"] = [float(timings.loc[_as_compared(timings)["model"] == name, "predict_s"].mean()) for name in names]
    ensembles = compared[compared["members"] == ENSEMBLE]
    against_reference = paired_table(ensembles, reference, n_boot=n_boot, seed=seed)
    against_members = []
    for model in models:
        rows = compared[compared["model"].isin([model, model + FOLD_MODEL])]
        single = rows["members"] != ENSEMBLE
        # each fold model is a "seed" of one fold model: several per training seed
        rows = rows.assign(seed=rows["seed"].astype(str).where(~single, rows["seed"].astype(str) + "/" + rows["members"]))
        against_members.append(paired_table(rows, model + FOLD_MODEL, n_boot=n_boot, seed=seed))
    against_members = pd.concat(against_members, ignore_index=True)
    write_csv(cases, out / "test_cases.csv")
    write_csv(table, out / "test_table.csv")
    write_csv(pd.concat([against_reference, against_members], ignore_index=True), out / "test_paired.csv")
    n_cases, n_seeds = cases["image"].nunique(), cases["seed"].nunique()
    note = (f"\n{n_cases} external test cases. `<model>`: the fold ensemble (the {n_folds} fold models of a training "
            f"seed, probabilities and heatmaps averaged); `<model>{FOLD_MODEL}`: one fold model (means over the "
            f"{n_folds} fold models{f' of each of {n_seeds} seeds' if n_seeds > 1 else ''}). predict_s: seconds to "
            "predict the test set once (reading, networks, writing), the ensemble's cost against one model's.\n")
    atomic_write(out / "test_table.md", lambda tmp: tmp.write_text(markdown(table) + note))
    text = ("# Fold ensembles on the external test set\n\n## Each ensemble against the reference's ensemble\n\n"
            + paired_markdown(against_reference, n_boot, seed, 0.95)
            + "\n## Each ensemble against one of its fold models (what the ensemble adds over one model)\n\n"
            + paired_markdown(against_members, n_boot, seed, 0.95)
            + f"\nHere the reference's seeds are its {n_folds} fold models per training seed, drawn independently of "
            "the ensemble's seeds: the difference is to the average fold model, and the interval covers the spread "
            "between fold models as well as the patients.\n")
    atomic_write(out / "test_paired.md", lambda tmp: tmp.write_text(text))
    return table
