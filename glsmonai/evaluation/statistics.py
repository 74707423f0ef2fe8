"""Paired differences between two models with cluster-bootstrap confidence intervals.

Frames of one patient (views, phases) are correlated: a model that fails on a patient tends to fail on
all of that patient's frames. Resampling frames as if they were independent then gives intervals that
are too narrow. :func:`paired_difference` resamples whole groups (patients) instead, with replacement,
and recomputes the mean difference over all cases of the drawn groups (a cluster bootstrap); with one
case per group it is the ordinary bootstrap.

A model trained again with another seed scores differently, so a difference measured with one training
per model also holds the luck of two trainings. :func:`hierarchical_paired_difference` takes every
training seed's scores of both models and resamples in two levels: patients, then, within each drawn
patient, each model's seeds; with one seed per model it is :func:`paired_difference`, draw for draw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["hierarchical_paired_difference", "paired_difference"]

#: resampled means are computed in chunks of at most this many drawn group indices (memory bound)
_CHUNK_DRAWS = 2_000_000


def _check(n: int, n_labels: int, finite: bool, n_boot: int, level: float, what: str = "paired_difference") -> None:
    if n == 0:
        raise ValueError(f"{what}: no differences given")
    if n_labels != n:
        raise ValueError(f"{what}: {n} differences but {n_labels} group labels")
    if not finite:
        raise ValueError(f"{what}: differences must be finite (leave out cases without a score)")
    if n_boot < 1:
        raise ValueError(f"{what}: n_boot must be positive, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"{what}: level must be in (0, 1), got {level}")


def _resampled_means(
    n_groups: int, n_boot: int, seed: int, mean_of: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``(n_boot,)`` means, ``mean_of(drawn)`` of each chunk of ``(chunk, G)`` group indices drawn with replacement
    by ``np.random.default_rng(seed)`` (the chunks keep ``chunk * G`` at most :data:`_CHUNK_DRAWS`)."""
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    step = max(1, _CHUNK_DRAWS // n_groups)
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        means[start:stop] = mean_of(rng.integers(0, n_groups, size=(stop - start, n_groups)))
    return means


def _interval(means: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


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
    _check(values.size, labels.size, bool(np.isfinite(values).all()), n_boot, level)
    _, index = np.unique(labels, return_inverse=True)
    n_groups = int(index.max()) + 1
    sums = np.bincount(index, weights=values, minlength=n_groups)  # (G,)
    counts = np.bincount(index, minlength=n_groups).astype(np.float64)  # (G,)
    means = _resampled_means(n_groups, n_boot, seed, lambda drawn: sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1))
    lo, hi = _interval(means, level)
    return {"mean": float(values.mean()), "lo": lo, "hi": hi, "n": int(values.size), "n_groups": n_groups}


def hierarchical_paired_difference(
    model: np.ndarray,
    reference: np.ndarray,
    groups: Sequence | np.ndarray,
    n_boot: int = 10000,
    seed: int = 0,
    level: float = 0.95,
    paired_seeds: bool = False,
) -> dict:
    """Mean paired difference of two models trained with several seeds, and an interval that covers both
    the patients and the training seeds (a two-level, hierarchical bootstrap).

    The difference of case ``c`` is ``mean_s model[c, s] - mean_t reference[c, t]``: each model's score
    averaged over its own seeds. Each resample draws ``G`` groups with replacement exactly as
    :func:`paired_difference` does (the same generator, the same draws), and then, within each drawn
    group, ``S`` of the model's ``S`` seeds and, independently, ``S_ref`` of the reference's ``S_ref``
    seeds, with replacement (a second generator, ``np.random.default_rng([seed, 1])``); the group counts
    with its cases' mean over the drawn seeds of the model minus that over the drawn seeds of the
    reference, and the resample's mean is over every case of the drawn groups. The interval is the
    percentile interval of these means.

    The two models' seeds are drawn independently, not paired by their number: the model trained with
    seed 3 has nothing in common with the reference trained with seed 3 (another network, another
    stream of random numbers), so pairing them would pretend to a correlation that is not there; the
    difference of interest is between the two training procedures, each with its own seed-to-seed
    spread, and independent draws carry both spreads into the interval. A difference that holds only for
    some seeds of a model therefore widens its interval, and two models that agree with themselves
    across seeds keep the interval of the patients alone. With one seed per model
    (``S = S_ref = 1``) nothing is drawn within the groups and the result is
    :func:`paired_difference` of ``model[:, 0] - reference[:, 0]``, number for number.

    ``paired_seeds`` is for two predictions of the same trained networks (a prediction-time variant and
    its own model: column ``s`` of both comes from the one network trained with seed ``s``): then seed
    ``s`` of one does belong with seed ``s`` of the other, and the seeds drawn within a group are the
    same for both (the bootstrap of the per-seed differences ``model - reference``), so the interval
    holds the variant's effect and how it varies between trained networks, not the networks' own spread.

    Args:
        model: ``(N, S)`` the model's per-case scores, one column per training seed; finite.
        reference: ``(N, S_ref)`` the reference's scores of the same cases; finite.
        groups: ``(N,)`` the group (patient) of each case.
        n_boot, seed, level: as in :func:`paired_difference`.
        paired_seeds: draw the same seeds for both (``S = S_ref``; column ``s`` of both from one network).

    Returns:
        ``{"mean", "lo", "hi", "n", "n_groups", "n_seeds", "n_seeds_ref"}``.

    Raises:
        ValueError: the arrays are empty, not finite, not 2D, or of different case counts (or, with
            ``paired_seeds``, seed counts); ``n_boot < 1``; ``level`` outside ``(0, 1)``.
    """
    a = np.asarray(model, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    labels = np.asarray(groups).ravel()
    what = "hierarchical_paired_difference"
    if a.ndim != 2 or b.ndim != 2 or len(a) != len(b):
        raise ValueError(f"{what}: expected (N, S) and (N, S_ref) scores, got shapes {a.shape} and {b.shape}")
    if len(a) and (a.shape[1] == 0 or b.shape[1] == 0):
        raise ValueError(f"{what}: each model needs at least one seed, got shapes {a.shape} and {b.shape}")
    seeds = {"n_seeds": int(a.shape[1]), "n_seeds_ref": int(b.shape[1])}
    if paired_seeds:
        if a.shape != b.shape:
            raise ValueError(f"{what}: paired seeds need the same seeds for both, got shapes {a.shape} and {b.shape}")
        if a.shape[1] > 1:  # the per-seed differences against nothing: their seeds drawn once, for both
            return {**hierarchical_paired_difference(a - b, np.zeros((len(a), 1)), labels, n_boot, seed, level), **seeds}
    if a.shape[1] == b.shape[1] == 1:
        try:
            return {**paired_difference(a[:, 0] - b[:, 0], labels, n_boot, seed, level), **seeds}
        except ValueError as err:
            raise ValueError(str(err).replace("paired_difference", what)) from None
    _check(len(a), labels.size, bool(np.isfinite(a).all() and np.isfinite(b).all()), n_boot, level, what)
    _, index = np.unique(labels, return_inverse=True)
    n_groups = int(index.max()) + 1
    counts = np.bincount(index, minlength=n_groups).astype(np.float64)  # (G,)
    # (G, S): the sum of each group's cases per seed
    sums_a = np.stack([np.bincount(index, weights=a[:, s], minlength=n_groups) for s in range(a.shape[1])], axis=1)
    sums_b = np.stack([np.bincount(index, weights=b[:, t], minlength=n_groups) for t in range(b.shape[1])], axis=1)
    seed_rng = np.random.default_rng([seed, 1])

    def drawn_seeds(sums: np.ndarray, drawn: np.ndarray) -> np.ndarray:
        """``(chunk,)`` the drawn groups' sums, each averaged over as many of its seeds, drawn with replacement."""
        n_seeds = sums.shape[1]
        if n_seeds == 1:
            return sums[drawn, 0].sum(axis=1)
        total = np.zeros(len(drawn))
        for _ in range(n_seeds):
            total += sums[drawn, seed_rng.integers(0, n_seeds, size=drawn.shape)].sum(axis=1)
        return total / n_seeds

    def mean_of(drawn: np.ndarray) -> np.ndarray:
        return (drawn_seeds(sums_a, drawn) - drawn_seeds(sums_b, drawn)) / counts[drawn].sum(axis=1)

    means = _resampled_means(n_groups, n_boot, seed, mean_of)
    lo, hi = _interval(means, level)
    mean = float((a.mean(axis=1) - b.mean(axis=1)).mean())
    return {"mean": mean, "lo": lo, "hi": hi, "n": len(a), "n_groups": n_groups, **seeds}
