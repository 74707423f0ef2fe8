"""Keypointsd: keypoints from the datalist, else from the task's rule, and a wrong count names the file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glsmonai.transforms import Keypointsd


class TestKeypointsd:
    def test_keypointsd_prefers_datalist_then_rule(self):
        label = torch.zeros(1, 30, 60)
        label[0, 10:16, 5:25] = 1
        label[0, 10:16, 35:55] = 1
        t = Keypointsd("label", 2, "iris_roots")
        given = t({"label": label, "keypoints": [[1, 2], [3, 4]]})["keypoints"]
        assert given.tolist() == [[1, 2], [3, 4]]
        derived = t({"label": label})["keypoints"]
        assert np.allclose(derived, [[12.5, 6.0], [12.5, 53.0]], atol=0.01)

    def test_keypointsd_wrong_count_names_the_file(self):
        t = Keypointsd("label", 3, None)
        with pytest.raises(ValueError, match="case7.nii.gz: expected 3 keypoints"):
            t({"label": torch.zeros(1, 4, 4), "label_path": "case7.nii.gz", "keypoints": [[1, 1]]})
