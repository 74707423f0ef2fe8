"""The phantom data sets with their true measures: what ``glsmonai synth`` writes.

The data layer draws the phantoms and writes their images, labels and datalist
(:func:`glsmonai.data.synth.write_phantom_dataset`) and knows nothing of measures; this module, above
it, collects the shape each generator drew and writes its measures beside the datalist
(``measures_true.csv``, :func:`~glsmonai.measure.table.truth_table`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from glsmonai.data.synth import write_phantom_dataset
from glsmonai.measure.table import truth_table
from glsmonai.utils import atomic_write

__all__ = ["MEASURE_TASKS", "TRUE_MEASURES", "write_phantoms", "write_true_measures"]

#: the phantoms' true measures, written beside the datalist
TRUE_MEASURES = "measures_true.csv"
#: phantom kind -> the ``glsmonai measure`` task of its measures
MEASURE_TASKS = {"iris": "iris", "echo": "lv"}


def write_phantoms(
    kind: str,
    out_dir: str | os.PathLike,
    n: int,
    seed: int = 0,
    size: Sequence[int] | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    datalist_name: str = "datalist.json",
) -> Path:
    """:func:`~glsmonai.data.synth.write_phantom_dataset` (same arguments), then each case's true
    measures in ``out_dir/measures_true.csv`` (:func:`write_true_measures`).

    Returns:
        the datalist path.
    """
    truths: list[tuple[str, dict]] = []
    path = write_phantom_dataset(kind, out_dir, n, seed, size, val_fraction, test_fraction, datalist_name,
                                 on_truth=lambda stem, truth: truths.append((stem, truth)))
    write_true_measures(kind, truths, Path(out_dir) / TRUE_MEASURES)
    return path


def write_true_measures(kind: str, truths: list[tuple[str, dict]], path: str | os.PathLike) -> Path:
    """Write the phantoms' true measures (``glsmonai measure`` columns, in pixels as their files carry
    no spacing), computed from the shapes the generator drew (``info["truth"]``), not from the masks.

    Args:
        kind: ``iris`` or ``echo`` (measured as the ``lv`` task).
        truths: ``(image stem, info["truth"])`` per case.
        path: the CSV to write.
    """
    if kind not in MEASURE_TASKS:
        raise ValueError(f"unknown phantom kind {kind!r}; known: {sorted(MEASURE_TASKS)}")
    table = truth_table(MEASURE_TASKS[kind], truths)
    return atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))
