"""Reading scans ahead of the network: files in, the network's prepared input views out.

:class:`ScanPreparer` turns a scan read into the network's input views (the scan, and with TTA the scan
flipped left-right), by the model folder's deterministic preprocessing; :class:`ScanReader` reads and
prepares scans in DataLoader workers (:func:`scan_loader`), so the network is not left waiting for files. A
file that cannot be read becomes a :class:`ReadScan` holding the reason, and the run goes on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from glsmonai.data.io import Geometry, read_image

__all__ = ["ReadScan", "ScanPreparer", "ScanReader", "as_tensor", "default_workers", "scan_loader"]


def as_tensor(value) -> torch.Tensor:
    """A plain tensor of a MetaTensor, array or tensor."""
    return value.as_tensor() if hasattr(value, "as_tensor") else torch.as_tensor(value)


@dataclass
class ScanPreparer:
    """A scan read -> the network's input views: the scan, and with ``tta`` the scan flipped left-right.

    Small and picklable, so that DataLoader workers prepare scans while the network runs.

    Attributes:
        transforms: the deterministic preprocessing (``{"image": (1, rows, cols), "geometry"}`` in).
        tta: add the mirrored view.
    """

    transforms: object
    tta: bool = False

    def __call__(self, raw: np.ndarray, geometry: Geometry | None) -> list[dict]:
        """``(rows, cols)`` scan -> one dict per view (``image`` ``(1, H, W)``, ``working_grid``; with
        ``crop_space original`` also ``source``, ``to_source``, ``window``)."""
        scans = [raw] + ([np.ascontiguousarray(raw[:, ::-1])] if self.tta else [])
        views = []
        for scan in scans:
            data = self.transforms({"image": torch.from_numpy(scan)[None], "geometry": geometry})
            views.append({key: as_tensor(value) if hasattr(value, "as_tensor") else value for key, value in data.items()
                          if key != "geometry"})
        return views


@dataclass
class ReadScan:
    """One scan as a worker read and prepared it, or the reason it could not."""

    index: int
    path: Path
    raw: np.ndarray | None = None
    geometry: Geometry | None = None
    views: list[dict] = field(default_factory=list)
    error: str | None = None


class ScanReader(Dataset):
    """Reads and prepares scans (in DataLoader workers, ahead of the network); a bad file becomes a
    :class:`ReadScan` with its ``error`` instead of an exception, so the batch goes on."""

    def __init__(self, paths: Sequence[Path], preparer: ScanPreparer) -> None:
        self.paths, self.preparer = list(paths), preparer

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> ReadScan:
        path = self.paths[index]
        try:
            raw, geometry = read_image(path)
            return ReadScan(index, path, raw, geometry, self.preparer(raw, geometry))
        except (OSError, ValueError, RuntimeError) as err:
            return ReadScan(index, path, error=str(err))


def _as_list(items: list) -> list:
    """DataLoader ``collate_fn``: keep a batch as the list of its scans (their sizes differ)."""
    return items


def default_workers() -> int:
    """DataLoader workers for ``predict``: one core is left to the network (0 on a one-core machine)."""
    return max(0, min(2, (os.cpu_count() or 1) - 1))


def scan_loader(paths: Sequence[Path], preparer: ScanPreparer, batch_size: int = 4,
                num_workers: int | None = None) -> DataLoader:
    """Batches of :class:`ReadScan` (lists, in the order of ``paths``), read and prepared by ``num_workers``
    processes ahead of the caller (default :func:`default_workers`; 0: in this process)."""
    workers = default_workers() if num_workers is None else int(num_workers)
    return DataLoader(ScanReader(paths, preparer), batch_size=batch_size, num_workers=workers, collate_fn=_as_list)
