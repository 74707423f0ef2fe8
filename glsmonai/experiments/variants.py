"""Prediction of a round's test cases by a trained model, plainly and with prediction-time variants.

A variant (:data:`~glsmonai.inference.options.VARIANTS`, e.g. ``stage1``, ``tta``, ``components``) predicts
with the same trained networks and other options (:func:`~glsmonai.inference.options.variant_options`), so
its paired difference to its own model (``levers.csv``) is the lever's alone. A compared name is
``<model>`` or ``<model>+<variant>``; the model's own predictions are made with every option off
(:data:`~glsmonai.inference.options.PLAIN`), whatever its folder records.
"""

from __future__ import annotations

import time
from pathlib import Path

from glsmonai.experiments.rounds import Round
from glsmonai.inference import PLAIN, VARIANT_NAMES, run_inference, variant_options

__all__ = ["VARIANT_NAMES", "predict_round", "split_name"]


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
    options = variant_options(variant) if variant else PLAIN
    start = time.perf_counter()
    folder = run / split_name(f"+{variant}" if variant else "")[1]
    failures = run_inference(round_.datalist.path, folder, run / "models", options, overlays=False, split=round_.split,
                             dataset_dir=round_.datalist.dataset_dir)
    if failures:
        raise RuntimeError(f"{run}: prediction{f' with {variant}' if variant else ''} failed for {len(failures)} "
                           f"case(s): {failures[0]}")
    return time.perf_counter() - start
