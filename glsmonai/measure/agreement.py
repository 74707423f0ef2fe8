"""Agreement of measures taken on predictions with the same measures on the references (Bland-Altman).

Per measure, over the cases where both values are known: the mean difference (prediction minus
reference, the bias), its standard deviation (``ddof = 1``), the 95 % limits of agreement
``bias -/+ 1.96 SD``, the mean absolute error and Pearson's correlation. One Bland-Altman plot per
measure (difference against the mean of the two), drawn with PIL.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont
from scipy import stats

from glsmonai.measure.units import unit_of
from glsmonai.utils import atomic_write

__all__ = ["AGREEMENT_COLUMNS", "agreement_stats", "agreement_table", "bland_altman_plot"]

#: columns of the agreement table, in order
AGREEMENT_COLUMNS = ["measure", "unit", "level", "n", "mean_reference", "mean_prediction", "bias", "sd",
                     "loa_lower", "loa_upper", "mae", "pearson_r"]


def agreement_stats(prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Bland-Altman statistics of paired values (pairs with a NaN are left out).

    Args:
        prediction, reference: ``(N,)`` values of one measure.

    Returns:
        ``n``, ``mean_reference``, ``mean_prediction``, ``bias`` (mean of prediction - reference),
        ``sd`` (its sample standard deviation; NaN below 2 pairs), ``loa_lower`` / ``loa_upper``
        (``bias -/+ 1.96 sd``), ``mae`` and ``pearson_r`` (NaN below 3 pairs or for a constant side).
    """
    p, r = np.asarray(prediction, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    ok = np.isfinite(p) & np.isfinite(r)
    p, r = p[ok], r[ok]
    n = int(ok.sum())
    nan = float("nan")
    if n == 0:
        return {"n": 0, "mean_reference": nan, "mean_prediction": nan, "bias": nan, "sd": nan,
                "loa_lower": nan, "loa_upper": nan, "mae": nan, "pearson_r": nan}
    diff = p - r
    bias = float(diff.mean())
    sd = float(diff.std(ddof=1)) if n > 1 else nan
    constant = n < 3 or np.ptp(p) == 0 or np.ptp(r) == 0  # two points always correlate perfectly
    return {
        "n": n,
        "mean_reference": float(r.mean()),
        "mean_prediction": float(p.mean()),
        "bias": bias,
        "sd": sd,
        "loa_lower": bias - 1.96 * sd,
        "loa_upper": bias + 1.96 * sd,
        "mae": float(np.abs(diff).mean()),
        "pearson_r": nan if constant else float(stats.pearsonr(p, r)[0]),
    }


def agreement_table(prediction: pd.DataFrame, reference: pd.DataFrame, measures: list[str], key: str = "image",
                    level: str = "scan") -> pd.DataFrame:
    """One row of :func:`agreement_stats` per measure present in both tables, cases matched on ``key``.

    Args:
        prediction, reference: tables with a ``key`` column and the measure columns.
        measures: the measure columns to compare, in order.
        key: the column naming the case (``image``, ``patient``).
        level: written in the ``level`` column (``scan`` or ``patient``).

    Returns:
        a table with :data:`AGREEMENT_COLUMNS`.
    """
    rows = []
    if len(prediction) and len(reference):
        both = prediction.merge(reference, on=key, suffixes=("_pred", "_ref"))
        for name in measures:
            if name in prediction.columns and name in reference.columns:
                values = agreement_stats(both[f"{name}_pred"].to_numpy(float), both[f"{name}_ref"].to_numpy(float))
                rows.append({"measure": name, "unit": unit_of(name), "level": level, **values})
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


def _ticks(lo: float, hi: float, n: int = 7) -> np.ndarray:
    """About ``n`` round tick values covering ``[lo, hi]`` (1, 2 or 5 times a power of ten apart)."""
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    raw = span / max(n - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return np.arange(math.ceil(lo / step) * step, hi + 0.5 * step, step)


def _label(value: float) -> str:
    return f"{value:.4g}"


def bland_altman_plot(path: str | os.PathLike, prediction: np.ndarray, reference: np.ndarray, title: str,
                      size: tuple[int, int] = (640, 480)) -> Path:
    """Write a Bland-Altman plot (PNG): prediction - reference against their mean, with the bias and
    the 95 % limits of agreement as horizontal lines.

    Drawn with PIL (matplotlib is not a dependency of the project).

    Args:
        path: the PNG to write (atomically).
        prediction, reference: ``(N,)`` paired values (pairs with a NaN are left out).
        title: the plot's title (the measure and its unit).
        size: ``(width, height)`` in pixels.

    Returns:
        ``path``.
    """
    p, r = np.asarray(prediction, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    ok = np.isfinite(p) & np.isfinite(r)
    mean, diff = (p[ok] + r[ok]) / 2.0, p[ok] - r[ok]
    s = agreement_stats(p, r)
    width, height = size
    left, right, top, bottom = 78, 150, 48, 52
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.text((left, 10), f"{title}  (n = {s['n']})", fill="black", font=font)
    lines = [v for v in (s["bias"], s["loa_lower"], s["loa_upper"]) if np.isfinite(v)]
    ys = np.concatenate([diff, lines, [0.0]])
    xs = mean if len(mean) else np.array([0.0, 1.0])
    x_lo, x_hi = float(xs.min()), float(xs.max())
    y_lo, y_hi = float(ys.min()), float(ys.max())
    pad_x = 0.05 * (x_hi - x_lo) or max(abs(x_hi), 1.0) * 0.05
    pad_y = 0.08 * (y_hi - y_lo) or max(abs(y_hi), 1.0) * 0.08
    x_lo, x_hi, y_lo, y_hi = x_lo - pad_x, x_hi + pad_x, y_lo - pad_y, y_hi + pad_y

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x_lo) / (x_hi - x_lo) * (width - left - right),
                height - bottom - (y - y_lo) / (y_hi - y_lo) * (height - top - bottom))

    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for t in _ticks(x_lo, x_hi):
        if x_lo <= t <= x_hi:
            px, _ = to_px(t, y_lo)
            draw.line([px, height - bottom, px, height - bottom + 4], fill="black")
            draw.text((px - 12, height - bottom + 6), _label(t), fill="black", font=font)
    for t in _ticks(y_lo, y_hi):
        if y_lo <= t <= y_hi:
            _, py = to_px(x_lo, t)
            draw.line([left - 4, py, left, py], fill="black")
            draw.text((6, py - 6), _label(t), fill="black", font=font)
    draw.text((left, height - 20), "mean of prediction and reference", fill="black", font=font)
    draw.text((6, top - 16), "prediction - reference", fill="black", font=font)
    _, y0 = to_px(x_lo, 0.0)
    draw.line([left, y0, width - right, y0], fill=(190, 190, 190))
    for value, name, colour in ((s["bias"], "bias", (0, 90, 200)), (s["loa_upper"], "+1.96 SD", (200, 40, 40)),
                                (s["loa_lower"], "-1.96 SD", (200, 40, 40))):
        if not np.isfinite(value):
            continue
        _, y = to_px(x_lo, value)
        dash = 0 if name == "bias" else 6
        x = float(left)
        while x < width - right:
            end = min(x + (dash or width), width - right)
            draw.line([x, y, end, y], fill=colour, width=2)
            x = end + dash if dash else end
        draw.text((width - right + 6, y - 6), f"{name} {_label(value)}", fill=colour, font=font)
    for x, y in zip(mean, diff):
        cx, cy = to_px(x, y)
        draw.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], outline=(0, 0, 0), fill=(90, 90, 90))
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
