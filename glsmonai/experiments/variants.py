"""Prediction of a round's test cases by a trained model, plainly and with prediction-time variants.

A variant (:data:`~glsmonai.inference.options.VARIANTS`, e.g. ``stage1``, ``tta``, ``components``) predicts
with the same trained networks and other options (:func:`~glsmonai.inference.options.variant_options`), so
its paired difference to its own model (``levers.csv``) is the lever's alone. A compared name is
``<model>`` or ``<model>+<variant>``; the model's own predictions are made with every option off
(:data:`~glsmonai.inference.options.PLAIN`), whatever its folder records.

One variant is not an option but an oracle: ``ref_keypoints`` puts the local windows at the test cases'
reference keypoints (the datalist's, else the task's keypoint rule on the label, as training finds them), as
a reviewer's prompts would (``predict --keypoints``). Its difference to the model is what the model loses
to its keypoint errors: the most that better keypoints could buy. A model without keypoints (a baseline)
predicts as it does plainly.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from glsmonai.data.datalist import load_datalist
from glsmonai.data.io import split_ext
from glsmonai.experiments.rounds import Round
from glsmonai.inference import PLAIN, run_inference, variant_options
from glsmonai.inference import VARIANT_NAMES as OPTION_VARIANTS
from glsmonai.model_folder import ModelFolder

__all__ = ["ORACLE", "VARIANT_NAMES", "predict_round", "reference_prompts", "split_name"]

#: the oracle variant: the local windows at the reference keypoints
ORACLE = "ref_keypoints"
#: every variant compare knows: the prediction options' (:data:`~glsmonai.inference.options.VARIANTS`), then the oracle
VARIANT_NAMES: tuple[str, ...] = (*OPTION_VARIANTS, ORACLE)


def split_name(name: str) -> tuple[str, str]:
    """``(model, predictions folder name)`` of a compared name such as ``gls`` or ``gls+tta``."""
    model, _, variant = name.partition("+")
    return model, f"predictions_{variant}" if variant else "predictions"


def predict_round(round_: Round, run: Path, variant: str | None = None) -> float:
    """Predict the round's test cases with the model trained in ``run`` (``run/models``) into
    ``run/predictions`` (``run/predictions_<variant>`` with a variant); the seconds it took.

    Raises:
        RuntimeError: a case could not be predicted (the message names it).
    """
    options = variant_options(variant) if variant and variant != ORACLE else PLAIN
    keypoints = reference_prompts(round_, run / "models") if variant == ORACLE else None
    start = time.perf_counter()
    folder = run / split_name(f"+{variant}" if variant else "")[1]
    failures = run_inference(round_.datalist.path, folder, run / "models", options, overlays=False, split=round_.split,
                             dataset_dir=round_.datalist.dataset_dir, keypoints=keypoints)
    if failures:
        raise RuntimeError(f"{run}: prediction{f' with {variant}' if variant else ''} failed for {len(failures)} "
                           f"case(s): {failures[0]}")
    return time.perf_counter() - start


def reference_prompts(round_: Round, model_dir: Path) -> dict[str, np.ndarray] | None:
    """``{scan stem: (K, 2) reference keypoints}`` of the round's test cases in original pixels, for the model
    in ``model_dir``; ``None`` for a model that finds no keypoints.

    Raises:
        ValueError: a case gives no keypoints and the model's keypoint rule finds none on its label.
    """
    settings = ModelFolder.open(model_dir).settings
    if settings.network.baseline:
        return None
    num_keypoints = int(settings.network.args["num_keypoints"])
    entries = load_datalist(round_.datalist.path, round_.datalist.dataset_dir, round_.split, num_keypoints,
                            settings.keypoint_rule)
    return {split_ext(e["image"])[0]: np.asarray(e["keypoints"], dtype=np.float64).reshape(-1, 2) for e in entries}
