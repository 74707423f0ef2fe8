"""Panel figures of a comparison: one row per case, one tile per model, its contour over the reference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from glsmonai.data.io import read_image, split_ext
from glsmonai.data.pairs import foreground, prediction_path
from glsmonai.visualize import GREEN, RED, contour, to_rgb

__all__ = ["draw_panel", "write_panels"]


def draw_panel(path: Path, image: np.ndarray, ref: np.ndarray, preds: Mapping[str, np.ndarray]) -> None:
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


def write_panels(
    folder: Path, cases: Sequence[dict], predictions: Mapping[str, Path], label_value: int | None
) -> dict[str, Path]:
    """Draw ``folder/<stem>.png`` for each case: every model's prediction (``{model: predictions folder}``, in
    that order) over the case's scan and reference; ``{image file name: panel}``."""
    panels = {}
    for case in cases:
        image = Path(case["image"])
        stem, ext = split_ext(image)
        ref = foreground(read_image(case["label"])[0], label_value)
        preds = {model: read_image(prediction_path(pred_dir, stem, ext))[0] > 0 for model, pred_dir in predictions.items()}
        panels[image.name] = folder / f"{split_ext(image.name)[0]}.png"
        draw_panel(panels[image.name], read_image(image)[0], ref, preds)
    return panels
