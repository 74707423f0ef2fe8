"""The predictor's optional steps: mirror test-time augmentation and component post-processing."""

from __future__ import annotations

import numpy as np
import torch

from glsmonai.inference import Predictor, _postprocessing


class _MirrorStub(Predictor):
    """A predictor whose 'network' is flip-equivariant: probability = the scan, keypoints = the brightest
    pixel of the left half, then of the right half (as the iris roots are ordered left first)."""

    def __init__(self, tta: bool) -> None:  # no model folder: only what predict() reads
        self.tta, self.threshold, self.postprocess, self.flip_swap = tta, 0.5, None, [(0, 1)]

    def _predict_array(self, raw, geometry):
        half = raw.shape[1] // 2
        left = np.unravel_index(raw[:, :half].argmax(), (raw.shape[0], half))
        right = np.unravel_index(raw[:, half:].argmax(), (raw.shape[0], raw.shape[1] - half))
        points = np.array([[left[0], left[1]], [right[0], right[1] + half]], dtype=np.float64)
        scores = raw[points[:, 0].astype(int), points[:, 1].astype(int)]  # the heatmap value at each keypoint
        return raw.astype(np.float32), points, scores, scores / 2, None

    def predict_raw(self, raw):
        import glsmonai.inference as inference

        original = inference.read_image
        inference.read_image = lambda path: (raw, None)
        try:
            return self.predict("scan")
        finally:
            inference.read_image = original


def test_mirror_tta_maps_the_flipped_prediction_back():
    raw = np.zeros((4, 10), np.float32)
    raw[1, 2], raw[2, 8], raw[3, 5] = 1.0, 0.8, 0.6
    plain, mirrored = _MirrorStub(tta=False).predict_raw(raw), _MirrorStub(tta=True).predict_raw(raw)
    # an equivariant network gives the same answer on the flipped scan, once flipped back and the
    # two roots swapped: the average equals the plain prediction
    assert np.array_equal(mirrored.probability, plain.probability)
    assert np.array_equal(mirrored.keypoints, [[1.0, 2.0], [2.0, 8.0]])
    # scores follow their keypoint through the swap: (1.0 + 1.0) / 2 for the left root, 0.8 for the right
    assert np.allclose(mirrored.scores, [1.0, 0.8]) and np.allclose(mirrored.confidence, [0.5, 0.4])


def test_components_keeps_the_largest_pieces_and_fills_holes():
    mask = np.zeros((12, 20), np.uint8)
    mask[1:6, 1:6] = 1  # 25 px with a hole
    mask[3, 3] = 0
    mask[1:5, 10:14] = 1  # 16 px
    mask[9:11, 17:19] = 1  # 4 px: dropped with two components
    kept = np.asarray(_postprocessing(2)(torch.from_numpy(mask)[None]))[0]
    expected = mask.copy()
    expected[9:11, 17:19] = 0
    expected[3, 3] = 1
    assert np.array_equal(kept, expected)
    assert np.asarray(_postprocessing(1)(torch.from_numpy(mask)[None]))[0].sum() == 25
