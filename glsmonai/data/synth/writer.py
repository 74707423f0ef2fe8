"""Write phantom data sets to disk: ``images/``, ``labels/`` and a decathlon datalist."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from glsmonai.data.datalist import write_datalist
from glsmonai.data.io import write_image, write_mask

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_DEMO_DIR", "PHANTOMS", "write_phantom_dataset", "ensure_demo_data"]

#: where the bundle generates its default data set on first use (relative to the working directory)
DEFAULT_DEMO_DIR = "data/iris_phantom"


def _iris(rng: np.random.Generator, size: tuple[int, int]):
    from glsmonai.data.synth.iris import make_iris_case

    return make_iris_case(rng, size)


#: the datalist "task" block of each phantom kind
TASKS: dict[str, dict] = {
    "iris": {
        "num_keypoints": 2,
        "keypoint_names": ["left iris root", "right iris root"],
        "keypoint_rule": "iris_roots",
        "flip_swap": [[0, 1]],
        "label_value": None,
        "num_components": 2,
    },
    "echo": {
        "num_keypoints": 3,
        "keypoint_names": ["LV apex", "mitral annulus (left)", "mitral annulus (right)"],
        "keypoint_rule": "lv_apex_base",
        "flip_swap": [[1, 2]],
        "label_value": 1,
        "num_components": 1,
    },
}

def _echo(rng: np.random.Generator, size: tuple[int, int]):
    from glsmonai.data.synth.echo import make_echo_case

    return make_echo_case(rng, size)


#: phantom kind -> (case generator, default (rows, cols))
PHANTOMS: dict[str, tuple[Callable, tuple[int, int]]] = {"iris": (_iris, (256, 288)), "echo": (_echo, (256, 256))}


def write_phantom_dataset(
    kind: str,
    out_dir: str | os.PathLike,
    n: int,
    seed: int = 0,
    size: Sequence[int] | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    datalist_name: str = "datalist.json",
    on_truth: Callable[[str, dict], object] | None = None,
) -> Path:
    """Generate ``n`` phantom cases of ``kind`` and their datalist.

    Case ``i`` is drawn from ``np.random.default_rng([seed, i])``, so a seed always gives the same
    images. Files are named ``<kind>_s<seed>_<i>.nii.gz`` (uint8 scan; labels: iris = 1, or CAMUS
    values for ``echo``: 1 LV, 2 myocardium, 3 left atrium) and split at random (by ``seed``) into
    training / validation / testing. Each case is its own ``group`` (``<kind>_s<seed>_<i>``): phantoms
    are drawn independently, so none is correlated with another the way frames of one patient are.

    Args:
        on_truth: called with ``(image stem, case.info["truth"])`` for each case in order, the shape its
            generator drew: how a layer above this one gets the phantoms' true measures without drawing
            the cases again (:func:`glsmonai.measure.phantoms.write_phantoms`, which ``glsmonai synth``
            runs, writes them to ``measures_true.csv``).

    Returns:
        the datalist path.
    """
    if kind not in PHANTOMS:
        raise ValueError(f"unknown phantom kind {kind!r}; known: {sorted(PHANTOMS)}")
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    make, default_size = PHANTOMS[kind]
    shape = tuple(int(s) for s in (size or default_size))
    out = Path(out_dir)
    entries = []
    for i in range(n):
        case = make(np.random.default_rng([seed, i]), shape)
        name = f"{kind}_s{seed}_{i:04d}.nii.gz"
        if on_truth is not None:
            on_truth(f"{kind}_s{seed}_{i:04d}", case.info["truth"])
        write_image(out / "images" / name, np.clip(np.round(case.image * 255), 0, 255).astype(np.uint8))
        write_mask(out / "labels" / name, case.label)
        entries.append(
            {
                "image": f"images/{name}",
                "label": f"labels/{name}",
                "keypoints": np.round(case.keypoints, 2).tolist(),
                "group": f"{kind}_s{seed}_{i:04d}",
            }
        )
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    splits = {
        "name": f"{kind} phantoms, seed {seed}, size {shape[0]} x {shape[1]}",
        "task": TASKS[kind],
        "testing": [entries[i] for i in sorted(order[:n_test])],
        "validation": [entries[i] for i in sorted(order[n_test : n_test + n_val])],
        "training": [entries[i] for i in sorted(order[n_test + n_val :])],
    }
    path = write_datalist(out / datalist_name, splits)
    logger.info("wrote %d %s phantoms of size %s to %s", n, kind, shape, out)
    return path


def ensure_demo_data(
    dataset_dir: str | os.PathLike = DEFAULT_DEMO_DIR,
    kind: str = "iris",
    n: int = 60,
    seed: int = 0,
    size: Sequence[int] | None = None,
) -> Path:
    """Generate the default phantom set into ``dataset_dir`` unless its datalist already exists (the
    images, labels and datalist that training needs; ``glsmonai synth`` also writes the true measures)."""
    datalist = Path(dataset_dir) / "datalist.json"
    if datalist.is_file():
        return datalist
    logger.info("generating the demo data set (%d %s phantoms) into %s", n, kind, dataset_dir)
    return write_phantom_dataset(kind, dataset_dir, n, seed, size)
