"""Dictionary transforms that read scans and labels and attach their keypoints.

``LoadScand`` replaces MONAI's ``LoadImaged`` here because keypoints are ``[row, col]``: the arrays must
come rows first whatever the format (MONAI's readers give ``(x, y)``), and a failed read must say
which file and why.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from glsmonai.data.io import read_image
from glsmonai.data.pairs import foreground
from glsmonai.keypoints import get_rule

__all__ = ["LoadScand", "Keypointsd", "BinarizeLabeld"]


class LoadScand(MapTransform):
    """Read each key's file into a ``(1, rows, cols)`` float32 tensor.

    The first key's :class:`~glsmonai.data.io.Geometry` goes to ``d["geometry"]``; every later key must
    have the same shape as the first, else ``ValueError`` naming both files.
    """

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        reference = None
        for key in self.key_iterator(d):
            path = str(d[key])
            arr, geometry = read_image(path)
            if reference is None:
                reference = geometry
                d["geometry"] = geometry
            elif geometry.shape != reference.shape:
                raise ValueError(
                    f"{path}: size {geometry.shape} differs from its image {reference.path} of size {reference.shape}"
                )
            d[f"{key}_path"] = path
            d[key] = torch.from_numpy(arr)[None]
        return d


class BinarizeLabeld(MapTransform):
    """Make the target structure the foreground: ``label == label_value``, or ``label > 0`` if ``None``."""

    def __init__(self, keys: KeysCollection, label_value: int | None = None, allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.label_value = label_value

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = foreground(d[key], self.label_value).float()
        return d


class Keypointsd(MapTransform):
    """Attach ``(K, 2)`` ``[row, col]`` keypoints: from the datalist, else from the label by a rule.

    Args:
        keys: the label key the rule reads.
        num_keypoints: K; a datalist entry or rule giving another count is an error.
        rule: name of a rule in :mod:`glsmonai.keypoints`, used when ``d[points_key]`` is absent.
        points_key: where the keypoints are read from and written to.
    """

    def __init__(
        self,
        keys: KeysCollection,
        num_keypoints: int,
        rule: str | None = "iris_roots",
        points_key: str = "keypoints",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.num_keypoints = int(num_keypoints)
        self.rule = get_rule(rule) if rule else None
        self.points_key = points_key

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        label_key = next(iter(self.key_iterator(d)), None)
        source = d.get(f"{label_key}_path", label_key)
        if d.get(self.points_key) is not None:
            pts = np.asarray(d[self.points_key], dtype=np.float32)
        elif self.rule is not None and label_key is not None:
            try:
                pts = self.rule(np.asarray(d[label_key])[0]).astype(np.float32)
            except ValueError as err:
                raise ValueError(f"{source}: keypoint rule failed: {err}") from None
        else:
            raise ValueError(f"{source}: no keypoints in the datalist and no keypoint rule configured")
        if pts.shape != (self.num_keypoints, 2):
            raise ValueError(f"{source}: expected {self.num_keypoints} keypoints as [row, col], got shape {pts.shape}")
        d[self.points_key] = pts
        return d

