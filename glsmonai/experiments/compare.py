"""``glsmonai compare``: train GLS and its baselines on one datalist, score them on one table.

Every model is trained with the same bundle (``bundles/gls/configs/train.json`` plus its overlay), the same
data, overrides and budget, predicted with the same predictor, and scored per case as ``glsmonai
evaluate`` scores one (:mod:`glsmonai.evaluation.scoring`): Dice, IoU, 95 % Hausdorff distance (MONAI),
key-region Dice inside the GLS crop windows at the reference keypoints, and, for the models that
predict keypoints (GS, GLS), the keypoint error in original pixels.

With ``folds = K >= 2`` (the default, 5) the comparison is cross-validated by group (patient): every
labelled case of the datalist, whatever its split, is tested exactly once, by models that never saw
its group (:mod:`glsmonai.data.folds`), and each model's per-case differences to a reference model
get a cluster-bootstrap confidence interval (:mod:`glsmonai.evaluation.statistics`). With
``folds = 0`` the datalist's own split is used: train on ``training``, choose checkpoints on
``validation``, score ``testing`` (``validation`` when there is none).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw
from torch.utils.flop_counter import FlopCounterMode

from glsmonai.data.datalist import load_datalist, load_task, read_datalist
from glsmonai.data.folds import entry_group, write_fold_datalists
from glsmonai.data.io import read_image, split_ext
from glsmonai.data.pairs import foreground, prediction_path
from glsmonai.evaluation.html_report import write_compare_report
from glsmonai.evaluation.reports import AREAS, compare_summary, write_csv, write_json
from glsmonai.evaluation.scoring import COUNTS, score_case, summarise_cases
from glsmonai.evaluation.statistics import paired_difference
from glsmonai.inference import PLAIN_OPTIONS, run_inference
from glsmonai.model_folder import network_from_args, read_model_info, trained_stage
from glsmonai.resources import configs_dir
from glsmonai.stages import Stage
from glsmonai.transforms.spatial import WorkingGrid
from glsmonai.utils import atomic_write
from glsmonai.visualize import GREEN, RED, contour, to_rgb

logger = logging.getLogger(__name__)

__all__ = ["MODELS", "PAIRED_METRICS", "VARIANTS", "compare", "paired_table"]

#: model name -> overlay on train.json, relative to the bundle's configs folder (None: GLS itself)
MODELS: dict[str, str | None] = {
    "unet": "baselines/unet.json",
    "unetpp": "baselines/unetpp.json",
    "cenet": "baselines/cenet.json",
    "gs": "baselines/gs.json",
    "gls": None,
    "gls_working": "crop_working.json",
    "gls_original": "crop_original.json",
}
#: the per-case columns of ``cases.csv`` after ``model, fold, image, group`` (``key_dice`` where a case has keypoints)
CASE_METRICS = ("dice", "iou", "hd95", "key_dice")
#: the metrics of ``paired.csv``: model minus reference, per case
PAIRED_METRICS = ("dice", "key_dice", "hd95")
#: prediction-time variants of a trained model: name -> Predictor options (``<model>+<variant>`` rows,
#: scored from the same trained models, compared with their own model in ``levers.csv``). The models
#: themselves are predicted with every option off (PLAIN_OPTIONS), whatever their folder records, and
#: ``recorded`` predicts as the model folder says (e.g. the CPU preset's options).
VARIANTS: dict[str, dict] = {
    "stage1": {"stage": "stage1"},  # a GLS model's global branch alone: the GS baseline, without training it again
    # the options the model folder records (e.g. the CPU preset's)
    "recorded": {"tta": None, "components": None, "blend": None, "min_confidence": None},
    "tta": {"tta": True},
    "components": {"components": "task"},
    "tta+components": {"tta": True, "components": "task"},
    "tta+components+blend": {"tta": True, "components": "task", "blend": 0.25},
    "blend": {"blend": 0.25},  # windows feathered into the global prediction (cosine ramp over a quarter per side)
    # windows of keypoints with confidence < 0.5 dropped: the decoder's best peak off the boundary is more than
    # twice as likely as the one on it. Tiny demo-like models scored 0.85 to 1 (most exactly 1), so it drops rarely
    "gate": {"min_confidence": 0.5},
}
#: models whose crop windows define the key regions, in order of preference
WINDOW_MODELS = ("gls", "gls_working", "gls_original", "gs")


TIMING_FILE = "train_time.json"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _train(
    model: str, configs: Path, datalist: Path, dataset_dir: Path, out: Path, overrides: Sequence[str],
    presets: Sequence[str] = (),
) -> tuple[float, bool]:
    """Train one model into ``out``; return the seconds its training took and whether it ran now.

    The bundle is ``configs/train.json``, then each preset overlay ``configs/<preset>.json`` (e.g. ``cpu``),
    then the model's overlay, then ``overrides``.

    A model whose training finished earlier (``out/train_time.json`` written after a successful run,
    with the same overrides and the same datalist content) is not trained again: an interrupted
    comparison goes on where it stopped. (Records written before the datalist's digest was kept are
    matched on the overrides alone.)
    """
    timing = out / TIMING_FILE
    digest = _digest(datalist)
    overrides = [*(f"preset={p}" for p in presets), *overrides]  # what the record is matched on
    if timing.is_file():
        done = json.loads(timing.read_text())
        if done.get("overrides") == list(overrides) and done.get("datalist_sha256", digest) == digest:
            logger.info("%s: trained earlier (%s), not retrained", model, timing)
            return float(done["seconds"]), False
        logger.info("%s: earlier training used other overrides %s or another datalist: retraining", model,
                    done.get("overrides"))
        timing.unlink()
    files = [str(configs / "train.json"), *(str(configs / f"{p}.json") for p in presets)]
    files += [str(configs / MODELS[model])] if MODELS[model] else []
    missing = [c for c in files if not Path(c).is_file()]
    if missing:
        raise FileNotFoundError(f"bundle config not found: {missing[0]}")
    cmd = [
        sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", repr(files),
        "--dataset_dir", str(dataset_dir), "--datalist", str(datalist), "--output_dir", str(out),
        "--progress", "false", *overrides[len(presets):],
    ]
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(out / "train.log", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode:
        raise RuntimeError(f"training {model} failed (exit {proc.returncode}); see {out / 'train.log'}")
    seconds = time.perf_counter() - start
    record = {"seconds": seconds, "overrides": list(overrides), "datalist_sha256": digest}
    atomic_write(timing, lambda tmp: tmp.write_text(json.dumps(record)))
    return seconds, True
def _cost(info: dict, stage: Stage) -> tuple[float, float]:
    """Parameters (millions) of the parts used up to the stage's output and GFLOPs of one forward pass
    at the working size."""
    net = network_from_args(info["network"]).eval()
    net.output = stage.output
    used = net.part("global_net") if stage.output == "global" else net
    x = torch.zeros(1, info["network"].get("in_channels", 1), *info["image_size"])
    extra = {}
    if info["network"].get("crop_space") == "original":  # the local cost depends on local_size only
        extra = {"source": x, "to_source": torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]),
                 "window": torch.tensor([info["network"]["crop_size"]], dtype=torch.float32)}
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(x, **extra)
    return sum(p.numel() for p in used.parameters()) / 1e6, counter.get_total_flops() / 1e9


def _markdown(table: pd.DataFrame) -> str:
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


def _panel(path: Path, image: np.ndarray, ref: np.ndarray, preds: dict[str, np.ndarray]) -> None:
    """One row, one tile per model (named at its top left): its contour in red over the reference in green."""
    tiles = []
    for pred in preds.values():
        rgb = to_rgb(image)
        rgb[contour(ref)] = GREEN
        rgb[contour(pred)] = RED
        tiles.append(rgb)
    strip = np.concatenate([np.pad(t, ((0, 0), (0, 4), (0, 0)), constant_values=255) for t in tiles], axis=1)
    picture = Image.fromarray(strip)
    draw = ImageDraw.Draw(picture)
    for i, name in enumerate(preds):
        draw.text((i * (image.shape[1] + 4) + 3, 2), name, fill=(255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)


@dataclass(frozen=True)
class _Fold:
    """One train / test round: its datalist, the split it scores, and where its models go."""

    k: int
    datalist: Path
    split: str
    subdir: str  # "" (folds = 0: ``out/<model>``) or ``fold<k>`` (``out/<model>/fold<k>``)

    def run(self, out: Path, model: str) -> Path:
        return out / model / self.subdir if self.subdir else out / model


def _folds(datalist: Path, out: Path, folds: int, seed: int, val_fraction: float) -> list[_Fold]:
    """The rounds of a comparison: the datalist's own split (``folds = 0``) or ``K`` group folds."""
    if folds == 0:
        split = "testing" if read_datalist(datalist).get("testing") else "validation"
        return [_Fold(0, datalist, split, "")]
    if folds < 2:
        raise ValueError(f"--folds must be 0 (the datalist's own split) or at least 2, got {folds}")
    paths = write_fold_datalists(datalist, out / "folds", folds, seed, val_fraction)
    return [_Fold(k, path, "testing", f"fold{k}") for k, path in enumerate(paths)]


def _split_sizes(datalist: Path) -> dict[str, int]:
    content = read_datalist(datalist)
    return {f"n_{s}": len(content.get(s) or []) for s in ("training", "validation", "testing")}


def paired_table(
    cases: pd.DataFrame,
    reference: str,
    metrics: Sequence[str] = PAIRED_METRICS,
    n_boot: int = 10000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Paired per-case differences ``model - reference`` with cluster-bootstrap intervals.

    Args:
        cases: one row per model and case, with ``model, fold, image, group`` and the ``metrics``
            columns (``cases.csv``).
        reference: the model every other model is compared with.
        metrics: the columns compared; a metric missing from ``cases`` gets no rows.
        n_boot, seed, level: see :func:`~glsmonai.evaluation.statistics.paired_difference`.

    Returns:
        one row per other model and metric: ``model, reference, metric, mean, lo, hi, n, n_groups``,
        over the cases where both models have a finite score (``n = 0`` and NaN statistics when none).

    Raises:
        ValueError: ``reference`` has no rows in ``cases``.
    """
    if reference not in set(cases["model"]):
        raise ValueError(f"reference model {reference!r} is not among the compared models {sorted(set(cases['model']))}")
    keys = ["fold", "image", "group"]
    base = cases[cases["model"] == reference].set_index(keys)
    rows = []
    for model in dict.fromkeys(cases["model"]):
        if model == reference:
            continue
        other = cases[cases["model"] == model].set_index(keys)
        for metric in metrics:
            if metric not in cases:
                continue
            pair = pd.concat({"model": other[metric], "reference": base[metric]}, axis=1, join="inner").dropna()
            row = {"model": model, "reference": reference, "metric": metric}
            if pair.empty:
                rows.append({**row, "mean": np.nan, "lo": np.nan, "hi": np.nan, "n": 0, "n_groups": 0})
                continue
            diff = (pair["model"] - pair["reference"]).to_numpy(np.float64)
            groups = pair.index.get_level_values("group").astype(str).to_numpy()
            rows.append({**row, **paired_difference(diff, groups, n_boot=n_boot, seed=seed, level=level)})
    return pd.DataFrame(rows, columns=["model", "reference", "metric", "mean", "lo", "hi", "n", "n_groups"])


def paired_runs(before: str | os.PathLike, after: str | os.PathLike, models: Sequence[str] | None = None,
                metrics: Sequence[str] = PAIRED_METRICS, seed: int = 0) -> tuple[pd.DataFrame, str]:
    """Two ``cases.csv`` of the same folds and cases (e.g. before and after a change of the code): each
    model's paired differences ``after - before`` with cluster-bootstrap intervals.

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
    return paired, _paired_markdown(paired, 10000, seed, 0.95)


def _paired_markdown(paired: pd.DataFrame, n_boot: int, seed: int, level: float) -> str:
    """``paired.md``: a header saying how to read it, then one row per model and metric."""
    references = list(dict.fromkeys(paired["reference"]))
    reference = references[0] if len(references) == 1 else "reference"
    lines = [
        f"Paired per-case differences, model - {reference}: mean over the cases both models scored, and its "
        f"{level * 100:g} % cluster-bootstrap interval (groups resampled with replacement, {n_boot} resamples, seed {seed}). "
        "Dice and key-region Dice: above 0 is better than the reference; HD95 (pixels): below 0 is better. "
        "An interval that contains 0 does not tell the two models apart.",
        "",
        "| model | reference | metric | difference | CI | cases | groups |",
        "|---|---|---|---|---|---|---|",
    ]
    digits = {"hd95": 2}
    for r in paired.itertuples(index=False):
        d = digits.get(r.metric, 4)
        interval = f"[{r.lo:+.{d}f}, {r.hi:+.{d}f}]"
        lines.append(f"| {r.model} | {r.reference} | {r.metric} | {r.mean:+.{d}f} | {interval} | {r.n} | {r.n_groups} |")
    return "\n".join(lines) + "\n"


def _predictions(name: str) -> tuple[str, str]:
    """``(model, predictions folder name)`` of a compared name such as ``gls`` or ``gls+tta``."""
    model, _, variant = name.partition("+")
    return model, f"predictions_{variant}" if variant else "predictions"


def _score_round(
    fold: _Fold, model: str, run: Path, cases: list[dict], label_value: int | None, window_info: dict, keep: set[str]
) -> tuple[list[dict], list[float], list[tuple[int, int]], dict[str, np.ndarray]]:
    """Score one model's (or one of its variants') predictions of one round's cases.

    Returns:
        per-case rows, the keypoint errors of all cases, each error's ``(h, w)`` window, and the
        predicted masks of the cases named in ``keep`` (for the panels).
    """
    predictions = run / _predictions(model)[1]
    keypoints = pd.read_csv(predictions / "keypoints.csv")
    crop = window_info["network"]["crop_size"]
    fixed_window = window_info.get("crop_window")  # original pixels; None: the working crop's view
    rows, errors, windows, masks = [], [], [], {}
    for case in cases:
        image_path = Path(case["image"])
        stem = split_ext(image_path)[0]
        pred = read_image(prediction_path(predictions, stem, split_ext(image_path)[1]))[0] > 0
        ref_map, geometry = read_image(case["label"])
        ref = foreground(ref_map, label_value)
        scale = WorkingGrid(geometry.shape, tuple(window_info["image_size"])).scale
        window = tuple(int(round(c)) for c in fixed_window) if fixed_window else tuple(int(round(c / scale)) for c in crop)
        ref_points = found = None
        if case.get("keypoints"):
            ref_points = np.asarray(case["keypoints"], float)
            found = keypoints[keypoints["image"] == image_path.name].sort_values("k")[["row", "col"]].to_numpy()
            if len(found) != len(ref_points):  # the model predicts no keypoints, or not these
                found = None
        scores = score_case(pred, ref, ref_points, found, window, with_counts=True, spacing=geometry.pixel_size_mm())
        rows.append({"model": model, "fold": fold.k, "image": image_path.name, "group": case["group"],
                     **{m: scores[m] for m in (*CASE_METRICS, *COUNTS, *AREAS) if m in scores}})
        kp_errors = scores.get("kp_errors", ())
        errors += list(kp_errors)
        windows += [window] * len(kp_errors)
        if image_path.name in keep:
            masks[image_path.name] = pred
    return rows, errors, windows, masks


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
) -> pd.DataFrame:
    """Train, predict and score ``models``, cross-validated by group or on the datalist's own split.

    Writes into ``out``:

    - ``folds/fold<k>.json`` (``folds >= 2``): each round's datalist;
    - ``<model>/fold<k>/`` (``<model>/`` with ``folds = 0``): the training run, its ``models/`` and the
      test cases' ``predictions/``;
    - ``cases.csv``: ``model, fold, image, group, dice, iou, hd95, key_dice``, the pixel counts ``tp, fp,
      fn, ref_px, pred_px`` (and ``ref_mm2, pred_mm2`` where the labels record their pixel size), every
      case once per model (as a test case of its fold);
    - ``folds.csv``: ``model, fold, n_training, n_validation, n_testing, test_groups, train_min, infer_s``;
    - ``table.csv`` / ``table.md``: per model, means over all cases (Dice and IoU with their std,
      key-region Dice, HD95, keypoint error mean / median / max and missed rate), parameters and
      GFLOPs (fold 0's model), training minutes summed over the folds, images per second, case count;
      ``table.md`` ends with this call's wall time;
    - ``paired.csv`` / ``paired.md``: :func:`paired_table` against ``reference``;
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
        models: names from :data:`MODELS`.
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
        variants: names from :data:`VARIANTS`: every trained model also predicts the test cases with
            these prediction-time options (``<model>/fold<k>/predictions_<variant>``), scored as models
            ``<model>+<variant>``; ``levers.csv`` / ``levers.md`` hold each variant's paired difference
            to its own model (the same trained networks, so the difference is the lever's alone).

    Returns:
        the table, one row per model.

    Raises:
        ValueError: an unknown model, a ``reference`` not among ``models``, no key-region model among
            ``models``, a bad ``folds`` value or too few groups for it.
        RuntimeError: a training or a prediction failed (the message names the log).
    """
    wall_start = time.perf_counter()
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    if reference not in models:
        raise ValueError(f"reference model {reference!r} is not one of the compared models {list(models)} (see --reference)")
    window_model = next((m for m in WINDOW_MODELS if m in models), None)
    if window_model is None:
        raise ValueError(f"compare needs one of {WINDOW_MODELS} among the models: the key regions are the GLS windows")
    datalist, dataset_dir, out = Path(datalist), Path(dataset_dir), Path(out)
    configs = Path(configs) if configs is not None else configs_dir()
    if not datalist.is_file():
        raise FileNotFoundError(f"datalist not found: {datalist}")
    rounds = _folds(datalist, out, folds, seed, val_fraction)
    label_value = load_task(datalist).get("label_value")
    timing_rows = []
    total, done, trained_now = len(rounds) * len(models), 0, []  # the ETA counts trainings run by this call
    for fold in rounds:  # train and predict every model first: the key-region window is GLS's crop
        sizes = _split_sizes(fold.datalist)
        for model in models:
            run = fold.run(out, model)
            done += 1
            logger.info("[%d/%d] %s, fold %d of %d: training (log: %s)", done, total, model, fold.k + 1,
                        len(rounds), run / "train.log")
            train_s, ran = _train(model, configs, fold.datalist, dataset_dir, run, overrides, presets)
            if ran:
                trained_now.append(train_s)
                left = (total - done) * sum(trained_now) / len(trained_now) / 60
                logger.info("[%d/%d] %s trained in %.1f min; at most about %.0f min of training left", done, total,
                            model, train_s / 60, left)
            start = time.perf_counter()
            failures = run_inference(fold.datalist, run / "predictions", run / "models", overlays=False,
                                     split=fold.split, dataset_dir=dataset_dir, **PLAIN_OPTIONS)
            infer_s = time.perf_counter() - start
            if failures:
                raise RuntimeError(f"{model}, fold {fold.k}: prediction failed for {len(failures)} case(s): {failures[0]}")
            logger.info("%s, fold %d: training %.1f min, prediction of %d case(s) %.1f s", model, fold.k, train_s / 60,
                        sizes[f"n_{fold.split}"], infer_s)
            timing_rows.append({"model": model, "fold": fold.k, **sizes, "train_min": train_s / 60, "infer_s": infer_s})
            for variant in variants:
                start = time.perf_counter()
                failures = run_inference(fold.datalist, run / f"predictions_{variant}", run / "models", overlays=False,
                                         split=fold.split, dataset_dir=dataset_dir, **{**PLAIN_OPTIONS, **VARIANTS[variant]})
                if failures:
                    raise RuntimeError(f"{model}+{variant}, fold {fold.k}: prediction failed: {failures[0]}")
                timing_rows.append({"model": f"{model}+{variant}", "fold": fold.k, **sizes, "train_min": 0.0,
                                    "infer_s": time.perf_counter() - start})
    names = [*models, *(f"{m}+{v}" for m in models for v in variants)]
    per_case, errors, windows, panel_masks = [], {m: [] for m in names}, {m: [] for m in names}, {}
    panel_cases: list[dict] = []
    for fold in rounds:
        # the image's file name stands for a missing group (load_datalist made the path absolute)
        cases = [{**c, "group": entry_group({**c, "image": Path(c["image"]).name})}
                 for c in load_datalist(fold.datalist, dataset_dir, fold.split)]
        if fold is rounds[0]:
            panel_cases = cases[:n_panels]
        keep = {Path(c["image"]).name for c in panel_cases} if fold is rounds[0] else set()
        for row in timing_rows:
            if row["fold"] == fold.k:
                row["test_groups"] = len({c["group"] for c in cases})
        window_info = read_model_info(fold.run(out, window_model) / "models")
        for model in names:
            rows, kp_errors, kp_windows, masks = _score_round(fold, model, fold.run(out, _predictions(model)[0]), cases,
                                                              label_value, window_info, set() if "+" in model else keep)
            per_case += rows
            errors[model] += kp_errors
            windows[model] += kp_windows
            for name, mask in masks.items():
                panel_masks.setdefault(name, {})[model] = mask
    cases_table = pd.DataFrame(per_case)
    timings = pd.DataFrame(timing_rows)
    duplicated = cases_table.duplicated(["model", "image"])
    if duplicated.any():
        raise ValueError(f"{datalist}: image {cases_table.loc[duplicated, 'image'].iloc[0]} is scored twice: "
                         "image file names must be unique")
    rows = []
    for model in names:
        table = cases_table[cases_table["model"] == model]
        first = rounds[0].run(out, _predictions(model)[0]) / "models"
        params, gflops = _cost(read_model_info(first), trained_stage(first))
        metrics = [m for m in CASE_METRICS if m in table]
        stats = summarise_cases(table, metrics, np.array(errors[model]), np.array(windows[model])).set_index("metric")
        times = timings[timings["model"] == model]
        summary = {
            "model": model,
            "dice": _stat(stats, "dice"), "dice_std": _stat(stats, "dice", "std"),
            "iou": _stat(stats, "iou"), "iou_std": _stat(stats, "iou", "std"),
            "key_dice": _stat(stats, "key_dice"),
            "hd95": _stat(stats, "hd95"),
            "kp_err_mean": _stat(stats, "kp_error"), "kp_err_median": _stat(stats, "kp_error", "median"),
            "kp_err_max": _stat(stats, "kp_error", "max"), "kp_missed": _stat(stats, "kp_missed"),
            "params_M": params, "gflops": gflops, "train_min": float(times["train_min"].sum()),
            "infer_img_s": len(table) / float(times["infer_s"].sum()), "n_cases": len(table),
        }
        rows.append(summary)
        logger.info("%s: %s", model, {k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()})
    result = pd.DataFrame(rows)
    paired = paired_table(cases_table, reference, n_boot=n_boot, seed=seed)
    if variants:
        levers = pd.concat([
            paired_table(cases_table[cases_table["model"].isin([m, f"{m}+{v}"])], m, n_boot=n_boot, seed=seed)
            for m in models for v in variants
        ], ignore_index=True)
        write_csv(levers, out / "levers.csv")
        atomic_write(out / "levers.md", lambda tmp: tmp.write_text(_paired_markdown(levers, n_boot, seed, 0.95)))
    write_csv(result, out / "table.csv")
    write_csv(cases_table, out / "cases.csv")
    write_csv(timings[["model", "fold", "n_training", "n_validation", "n_testing", "test_groups", "train_min", "infer_s"]],
              out / "folds.csv")
    write_csv(paired, out / "paired.csv")
    wall_min = (time.perf_counter() - wall_start) / 60
    scheme = (f"{len(rounds)}-fold cross-validation by group (seed {seed})" if folds else
              f"the datalist's own split, scored on {rounds[0].split}")
    note = (f"\n{len(cases_table) // len(names)} cases, {scheme}; wall time of this call {wall_min:.1f} min "
            f"(models trained by an earlier call are reused; per model and fold: folds.csv).\n")
    atomic_write(out / "table.md", lambda tmp: tmp.write_text(_markdown(result) + note))
    atomic_write(out / "paired.md", lambda tmp: tmp.write_text(_paired_markdown(paired, n_boot, seed, 0.95)))
    logger.info("compare: %d model(s) x %d round(s) in %.1f min", len(models), len(rounds), wall_min)
    for case in panel_cases:
        name = Path(case["image"]).name
        ref = foreground(read_image(case["label"])[0], label_value)
        _panel(out / "panels" / f"{split_ext(name)[0]}.png", read_image(case["image"])[0], ref, panel_masks[name])
    panels = {Path(c["image"]).name: out / "panels" / f"{split_ext(Path(c['image']).name)[0]}.png" for c in panel_cases}
    evaluated = {"datalist": os.path.abspath(datalist), "dataset_dir": os.path.abspath(dataset_dir), "models": names,
                 "reference": reference, "folds": folds, "scheme": scheme, "seed": seed, "val_fraction": val_fraction,
                 "variants": list(variants), "presets": list(presets), "overrides": list(overrides),
                 "summary_json": os.path.abspath(out / "summary.json")}
    document = compare_summary(cases_table, result, paired, evaluated, errors, windows, levers if variants else None)
    write_json(out / "summary.json", document)
    write_compare_report(out / "report.html", document, result, paired, cases_table, levers if variants else None, panels)
    return result
