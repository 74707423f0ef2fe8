"""``glsmonai compare``: train GLS and its baselines on one datalist, score them on one table.

Every model is trained with the same bundle (``bundles/gls/train.json`` plus its overlay), the same
data, overrides and budget, predicted on the test split (the validation split when there is none) with
the same predictor, and scored per case as ``glsmonai evaluate`` scores one
(:mod:`glsmonai.evaluation.scoring`): Dice, IoU, 95 % Hausdorff distance (MONAI), key-region Dice
inside the GLS crop windows at the reference keypoints, and, for the models that predict keypoints
(GS, GLS), the keypoint error in original pixels.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw
from torch.utils.flop_counter import FlopCounterMode

from glsmonai.data.datalist import load_datalist, load_task
from glsmonai.data.io import read_image, split_ext
from glsmonai.data.pairs import foreground, prediction_path
from glsmonai.evaluation.reports import write_csv
from glsmonai.evaluation.scoring import score_case, summarise_cases
from glsmonai.inference import run_inference
from glsmonai.model_folder import network_from_args, read_model_info, trained_stage
from glsmonai.stages import Stage
from glsmonai.transforms.spatial import WorkingGrid
from glsmonai.visualize import GREEN, RED, contour, to_rgb

logger = logging.getLogger(__name__)

__all__ = ["MODELS", "compare"]

#: model name -> overlay on train.json (None: GLS itself)
MODELS: dict[str, str | None] = {
    "unet": "baselines/unet.json",
    "unetpp": "baselines/unetpp.json",
    "cenet": "baselines/cenet.json",
    "gs": "baselines/gs.json",
    "gls": None,
    "gls_working": "gls/crop_working.json",
    "gls_original": "gls/crop_original.json",
}
#: the per-case columns of ``cases.csv`` after ``model, image`` (``key_dice`` where a case has keypoints)
CASE_METRICS = ("dice", "iou", "hd95", "key_dice")
#: models whose crop windows define the key regions, in order of preference
WINDOW_MODELS = ("gls", "gls_working", "gls_original", "gs")
DEFAULT_BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


TIMING_FILE = "train_time.json"


def _train(model: str, bundles: Path, datalist: Path, dataset_dir: Path, out: Path, overrides: Sequence[str]) -> float:
    """Train one model into ``out`` and return the seconds it took.

    A model whose training finished earlier (``out/train_time.json`` written after a successful run,
    with the same overrides) is not trained again: an interrupted comparison goes on where it stopped.
    """
    timing = out / TIMING_FILE
    if timing.is_file():
        done = json.loads(timing.read_text())
        if done.get("overrides") == list(overrides):
            logger.info("%s: trained earlier (%s), not retrained", model, timing)
            return float(done["seconds"])
        logger.info("%s: earlier training used other overrides %s: retraining", model, done.get("overrides"))
        timing.unlink()
    configs = [str(bundles / "gls" / "train.json")] + ([str(bundles / MODELS[model])] if MODELS[model] else [])
    cmd = [
        sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", repr(configs),
        "--dataset_dir", str(dataset_dir), "--datalist", str(datalist), "--output_dir", str(out),
        "--progress", "false", *overrides,
    ]
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(out / "train.log", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode:
        raise RuntimeError(f"training {model} failed (exit {proc.returncode}); see {out / 'train.log'}")
    seconds = time.perf_counter() - start
    timing.write_text(json.dumps({"seconds": seconds, "overrides": list(overrides)}))
    return seconds


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


def compare(
    datalist: str | os.PathLike,
    dataset_dir: str | os.PathLike,
    out: str | os.PathLike,
    models: Sequence[str] = tuple(MODELS),
    overrides: Sequence[str] = (),
    bundles: str | os.PathLike = DEFAULT_BUNDLES,
    n_panels: int = 4,
) -> pd.DataFrame:
    """Train, predict and score ``models``; write ``table.csv``, ``table.md``, ``cases.csv`` and panels.

    Args:
        datalist, dataset_dir: the data (its ``task`` block sets keypoints and label value).
        out: output folder; each model trains into ``out/<model>``.
        models: names from :data:`MODELS`.
        overrides: extra ``--key value`` bundle overrides given to every model (e.g. ``--epochs 20``).
        n_panels: how many test cases get a figure.

    Returns:
        the table, one row per model.
    """
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    datalist, dataset_dir, out, bundles = Path(datalist), Path(dataset_dir), Path(out), Path(bundles)
    split = "testing" if json.loads(datalist.read_text()).get("testing") else "validation"
    cases = load_datalist(datalist, dataset_dir, split)
    label_value = load_task(datalist).get("label_value")
    timings = {}
    for model in models:  # train and predict every model first: the key-region window is GLS's crop
        run = out / model
        train_s = _train(model, bundles, datalist, dataset_dir, run, overrides)
        start = time.perf_counter()
        failures = run_inference(datalist, run / "predictions", run / "models", overlays=False, split=split,
                                 dataset_dir=dataset_dir)
        timings[model] = (train_s, time.perf_counter() - start)
        if failures:
            raise RuntimeError(f"{model}: prediction failed for {len(failures)} case(s): {failures[0]}")
    infos = {m: read_model_info(out / m / "models") for m in models}
    window_model = next((m for m in WINDOW_MODELS if m in infos), None)
    if window_model is None:
        raise ValueError(f"compare needs one of {WINDOW_MODELS} among the models: the key regions are the GLS windows")
    crop = infos[window_model]["network"]["crop_size"]
    fixed_window = infos[window_model].get("crop_window")  # original pixels; None: the working crop's view
    rows, per_case, masks = [], [], {}
    for model in models:
        info, run = infos[model], out / model
        keypoints = pd.read_csv(run / "predictions" / "keypoints.csv")
        errors, windows = [], []  # per keypoint: its error and its case's window (cases differ in size)
        for case in cases:
            image_path = Path(case["image"])
            stem = split_ext(image_path)[0]
            pred = read_image(prediction_path(run / "predictions", stem, split_ext(image_path)[1]))[0] > 0
            ref_map, geometry = read_image(case["label"])
            ref = foreground(ref_map, label_value)
            scale = WorkingGrid(geometry.shape, tuple(infos[window_model]["image_size"])).scale
            window = tuple(int(round(c)) for c in fixed_window) if fixed_window else tuple(int(round(c / scale)) for c in crop)
            ref_points = found = None
            if case.get("keypoints"):
                ref_points = np.asarray(case["keypoints"], float)
                found = keypoints[keypoints["image"] == image_path.name].sort_values("k")[["row", "col"]].to_numpy()
                if len(found) != len(ref_points):  # the model predicts no keypoints, or not these
                    found = None
            scores = score_case(pred, ref, ref_points, found, window)
            per_case.append({"model": model, "image": image_path.name,
                             **{m: scores[m] for m in CASE_METRICS if m in scores}})
            kp_errors = scores.get("kp_errors", ())
            errors += list(kp_errors)
            windows += [window] * len(kp_errors)
            masks.setdefault(image_path.name, {})[model] = pred
        table = pd.DataFrame([r for r in per_case if r["model"] == model])
        params, gflops = _cost(info, trained_stage(out / model / "models"))
        metrics = [m for m in CASE_METRICS if m in table]
        stats = summarise_cases(table, metrics, np.array(errors), np.array(windows)).set_index("metric")
        train_s, infer_s = timings[model]
        summary = {
            "model": model,
            "dice": _stat(stats, "dice"), "dice_std": _stat(stats, "dice", "std"),
            "iou": _stat(stats, "iou"), "iou_std": _stat(stats, "iou", "std"),
            "key_dice": _stat(stats, "key_dice"),
            "hd95": _stat(stats, "hd95"),
            "kp_err_mean": _stat(stats, "kp_error"), "kp_err_median": _stat(stats, "kp_error", "median"),
            "kp_err_max": _stat(stats, "kp_error", "max"), "kp_missed": _stat(stats, "kp_missed"),
            "params_M": params, "gflops": gflops, "train_min": train_s / 60, "infer_img_s": len(cases) / infer_s,
        }
        rows.append(summary)
        logger.info("%s: %s", model, {k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()})
    result = pd.DataFrame(rows)
    write_csv(result, out / "table.csv")
    write_csv(pd.DataFrame(per_case), out / "cases.csv")
    (out / "table.md").write_text(_markdown(result))
    for case in cases[:n_panels]:
        name = Path(case["image"]).name
        ref_map, _ = read_image(case["label"])
        ref = foreground(ref_map, label_value)
        _panel(out / "panels" / f"{split_ext(name)[0]}.png", read_image(case["image"])[0], ref, masks[name])
    return result
