"""The predictor's optional steps: mirror test-time augmentation, feathered window blending and keypoint
gating (component post-processing: tests/transforms/test_postprocess.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from glsmonai.cli import build_parser
from glsmonai.experiments.variants import VARIANT_NAMES as COMPARE_VARIANTS
from glsmonai.inference import VARIANT_NAMES, PredictOptions, Predictor, predict_folder
from glsmonai.model_folder import ModelSettings, NetworkArgs
from glsmonai.transforms import WorkingGrid


class _MirrorStub(Predictor):
    """A predictor whose 'network' is flip-equivariant: probability = the scan, keypoints = the brightest
    pixel of the left half, then of the right half (as the iris roots are ordered left first)."""

    def __init__(self, tta: bool) -> None:  # no model folder: only what predict_array() reads
        self.options = PredictOptions(tta=tta).resolve(ModelSettings((4, 10), NetworkArgs()))
        self.postprocess, self.flip_swap = None, [(0, 1)]

    def transforms(self, data: dict) -> dict:
        return {"image": data["image"]}

    def forward(self, views):
        return views

    def assemble(self, out, view):
        raw = view["image"][0].numpy()
        half = raw.shape[1] // 2
        left = np.unravel_index(raw[:, :half].argmax(), (raw.shape[0], half))
        right = np.unravel_index(raw[:, half:].argmax(), (raw.shape[0], raw.shape[1] - half))
        points = np.array([[left[0], left[1]], [right[0], right[1] + half]], dtype=np.float64)
        scores = raw[points[:, 0].astype(int), points[:, 1].astype(int)]  # the heatmap value at each keypoint
        return raw.astype(np.float32), points, scores, scores / 2, None

    def predict_raw(self, raw: np.ndarray):
        return self.predict_array(raw)


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


GLOBAL_P, WINDOW_P = 0.2, 0.9  # the stand-in network's global and window (fused) probabilities


class _FixedGLS:
    """Stands in for a trained stage-3 GLSNet on a 12 x 12 scan: global probability 0.2, fused 0.9, keypoints at
    (3, 3) (confidence 1) and (8, 8) (confidence 0.3), 4 x 4 windows: rows and columns 1..4 and 6..9 in both
    crop spaces (working: crop_at_points windows; original: windows of 4 pixels centred at the keypoints)."""

    crop_size = (4, 4)

    def __init__(self, original: bool) -> None:
        self.original = original

    def __call__(self, image: torch.Tensor, **scan) -> dict[str, torch.Tensor]:
        logit = lambda p, *shape: torch.full(shape, float(torch.logit(torch.tensor(p))))  # noqa: E731
        points = torch.tensor([[[3.0, 3.0], [8.0, 8.0]]])
        out = {"global": logit(GLOBAL_P, 1, 1, 12, 12), "keypoints": points, "scores": torch.tensor([[0.9, 0.8]]),
               "confidence": torch.tensor([[1.0, 0.3]])}
        if self.original:
            return {**out, "fused": logit(WINDOW_P, 2, 1, 4, 4), "centres": points, "window": torch.tensor([[4.0, 4.0]])}
        return {**out, "fused": logit(WINDOW_P, 1, 1, 12, 12)}


class _FixedStub(Predictor):
    """A predictor around :class:`_FixedGLS`: the real assembly, gating and blending, no model folder
    (working grid = original grid)."""

    def __init__(self, crop_space: str, blend: float = 0.0, min_confidence: float = 0.0) -> None:
        settings = ModelSettings((12, 12), NetworkArgs())
        self.options = PredictOptions(blend=blend, min_confidence=min_confidence).resolve(settings)
        self.folder = SimpleNamespace(settings=settings)
        self.postprocess, self.flip_swap = None, []
        self.original, self.device = crop_space == "original", torch.device("cpu")
        self.stage = SimpleNamespace(output="fused")
        self.network = _FixedGLS(self.original)

    def transforms(self, data: dict) -> dict:
        image = data["image"].float()
        identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        scan = {"source": image, "to_source": identity, "window": torch.tensor([4.0, 4.0])}
        return {"image": image, "working_grid": WorkingGrid((12, 12), (12, 12)), **(scan if self.original else {})}

    def predict_raw(self, raw: np.ndarray):
        return self.predict_array(raw)


@pytest.mark.parametrize("crop_space", ["working", "original"])
def test_an_unsure_keypoint_leaves_the_global_probability_in_its_window(crop_space):
    raw = np.zeros((12, 12), np.float32)
    plain = _FixedStub(crop_space).predict_raw(raw)
    gated = _FixedStub(crop_space, min_confidence=0.5).predict_raw(raw)
    # working: the fused probability covers the image; original: the global one, the windows pasted over it
    expected = np.full((12, 12), WINDOW_P if crop_space == "working" else GLOBAL_P, np.float32)
    expected[1:5, 1:5] = expected[6:10, 6:10] = WINDOW_P
    assert np.allclose(plain.probability, expected, atol=1e-6) and not plain.unsure.any()
    expected[6:10, 6:10] = GLOBAL_P  # the second keypoint (confidence 0.3) is unsure, the first unchanged
    assert np.allclose(gated.probability, expected, atol=1e-6)
    assert gated.unsure.tolist() == [False, True]
    assert np.array_equal(gated.keypoints, plain.keypoints) and np.array_equal(gated.confidence, plain.confidence)


@pytest.mark.parametrize(("crop_space", "profile"), [("working", [0.5, 1, 1, 0.5]), ("original", [0, 1, 1, 1])])
def test_blend_feathers_the_windows_into_the_global_probability(crop_space, profile):
    # working: pixel centres 1.5 and 0.5 from a window's border, ramp of 1; original: the window [1, 5) puts
    # pixel 1's centre on its border. Outside the windows the global probability stands in both
    weight = np.outer(profile, profile)
    expected = np.full((12, 12), GLOBAL_P, np.float32)
    expected[1:5, 1:5] = expected[6:10, 6:10] = weight * WINDOW_P + (1 - weight) * GLOBAL_P
    blended = _FixedStub(crop_space, blend=0.25).predict_raw(np.zeros((12, 12), np.float32))
    assert np.allclose(blended.probability, expected, atol=1e-6)


def test_keypoints_csv_flags_unsure_keypoints(tmp_path):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(tmp_path / "in" / "scan.png")
    stub = _FixedStub("working", min_confidence=0.5)
    assert predict_folder(stub, tmp_path / "in", tmp_path / "out", overlays=False, num_workers=0) == []
    table = pd.read_csv(tmp_path / "out" / "keypoints.csv")
    assert table["flag"].tolist() == ["ok", "unsure"] and table["confidence"].tolist() == [1.0, 0.3]


def test_predict_options_and_compare_variants_reach_the_command_line():
    args = build_parser().parse_args(["predict", "-i", "a", "-o", "b", "-m", "c", "--blend", "0.25",
                                      "--min-confidence", "0.5"])
    assert (args.blend, args.min_confidence) == (0.25, 0.5)
    compare = build_parser().parse_args(["compare", "--datalist", "d", "--dataset_dir", "e", "--out", "f",
                                         "--variants", *COMPARE_VARIANTS])
    assert compare.variants == list(COMPARE_VARIANTS) and set(VARIANT_NAMES) < set(COMPARE_VARIANTS)
