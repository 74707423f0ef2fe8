"""Paired differences between two models with a cluster-bootstrap confidence interval.

Frames of one patient (views, phases) are correlated: a model that fails on a patient tends to fail on
all of that patient's frames. Resampling frames as if they were independent then gives intervals that
are too narrow. :func:`paired_difference` resamples whole groups (patients) instead, with replacement,
and recomputes the mean difference over all cases of the drawn groups (a cluster bootstrap); with one
case per group it is the ordinary bootstrap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["paired_difference"]

#: resampled means are computed in chunks of at most this many drawn group indices (memory bound)
_CHUNK_DRAWS = 2_000_000


def paired_difference(
    diff: Sequence[float] | np.ndarray,
    groups: Sequence | np.ndarray,
    n_boot: int = 10000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Mean paired per-case difference and its cluster-bootstrap percentile interval.

    Each of the ``n_boot`` resamples draws ``G`` groups with replacement from the ``G`` distinct groups
    (``np.random.default_rng(seed).integers(0, G, size=(n_boot, G))``, groups in sorted order) and
    takes the mean over every case of the drawn groups, a group drawn twice counting twice; the
    interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles (NumPy's default, linear
    interpolation) of these means.

    Args:
        diff: ``(N,)`` per-case differences, e.g. ``dice(model) - dice(reference)`` of the same case;
            finite.
        groups: ``(N,)`` the group (patient) of each case; any hashable, sortable labels.
        n_boot: number of resamples.
        seed: seed of the resampling; the same inputs and seed give the same interval.
        level: coverage of the interval, in ``(0, 1)``.

    Returns:
        ``{"mean", "lo", "hi", "n", "n_groups"}``: the mean of ``diff`` over all cases, the interval's
        bounds, the number of cases and of distinct groups.

    Raises:
        ValueError: ``diff`` is empty, not finite, or not the length of ``groups``; ``n_boot < 1``;
            ``level`` outside ``(0, 1)``.
    """
    values = np.asarray(diff, dtype=np.float64).ravel()
    labels = np.asarray(groups).ravel()
    if values.size == 0:
        raise ValueError("paired_difference: no differences given")
    if labels.size != values.size:
        raise ValueError(f"paired_difference: {values.size} differences but {labels.size} group labels")
    if not np.isfinite(values).all():
        raise ValueError("paired_difference: differences must be finite (leave out cases without a score)")
    if n_boot < 1:
        raise ValueError(f"paired_difference: n_boot must be positive, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"paired_difference: level must be in (0, 1), got {level}")
    _, index = np.unique(labels, return_inverse=True)
    n_groups = int(index.max()) + 1
    sums = np.bincount(index, weights=values, minlength=n_groups)  # (G,)
    counts = np.bincount(index, minlength=n_groups).astype(np.float64)  # (G,)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    step = max(1, _CHUNK_DRAWS // n_groups)
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        drawn = rng.integers(0, n_groups, size=(stop - start, n_groups))  # (chunk, G) group indices
        means[start:stop] = sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return {"mean": float(values.mean()), "lo": float(lo), "hi": float(hi), "n": int(values.size), "n_groups": n_groups}
