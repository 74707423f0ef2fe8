"""Heatmaps and keypoint decoding: Gaussian targets, arg-max, sub-pixel peaks, the boundary constraint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import GenerateHeatmapd

from glsmonai.transforms import decode_keypoints, heatmap_argmax, refine_peaks


def _peak(arr) -> tuple[int, int]:
    arr = np.asarray(arr)
    return tuple(int(i) for i in np.unravel_index(arr.argmax(), arr.shape))


def gaussian(shape, centre, sigma):
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * sigma**2))


class TestHeatmap:
    def test_peak_at_each_keypoint(self):
        pts = np.array([[5.0, 7.0], [20.0, 30.0]], dtype=np.float32)
        d = {"image": torch.zeros(1, 32, 40), "label": torch.zeros(1, 32, 40), "keypoints": pts}
        out = GenerateHeatmapd(keys="keypoints", heatmap_keys="heatmap", ref_image_keys="image", sigma=2.0)(d)
        hm = np.asarray(out["heatmap"])
        assert hm.shape == (2, 32, 40)
        assert _peak(hm[0]) == (5, 7) and _peak(hm[1]) == (20, 30)
        assert hm[0].max() == pytest.approx(1.0)
        # Gaussian falls off with the set sigma: one sigma away, exp(-1/2)
        assert hm[0, 5, 9] == pytest.approx(np.exp(-0.5), abs=0.02)

    def test_argmax_recovers_points_and_scores(self):
        hm = torch.zeros(2, 3, 10, 12)
        hm[0, 0, 2, 3], hm[0, 1, 9, 11], hm[0, 2, 0, 0] = 0.9, 0.8, 0.7
        hm[1, :, 4, 5] = 0.5
        points, scores = heatmap_argmax(hm)
        assert points.tolist() == [[[2, 3], [9, 11], [0, 0]], [[4, 5], [4, 5], [4, 5]]]
        assert scores[0].tolist() == pytest.approx([0.9, 0.8, 0.7])


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.5])
def test_refine_peaks_recovers_sub_pixel_centres(sigma):
    rng = np.random.default_rng(1)
    truth = np.stack([rng.uniform(5, 27, 6), rng.uniform(5, 35, 6)], axis=1)  # 6 peaks, off the grid
    heat = torch.tensor(np.stack([gaussian((32, 40), c, sigma) for c in truth]), dtype=torch.float32)[None]
    points, _ = heatmap_argmax(heat)
    refined = refine_peaks(heat, points)[0].numpy()
    # the arg-max alone is the nearest pixel (the Gaussian is separable), off by up to half a pixel (0.49 here)
    assert np.array_equal(points[0].numpy(), np.round(truth))
    # log of a Gaussian is a parabola, so the three-point fit is exact up to float32 rounding (about 1e-6 px)
    assert np.allclose(refined, truth, rtol=0, atol=1e-4)


def test_refine_peaks_stays_put_at_the_border_and_on_flat_tops():
    heat = torch.zeros(1, 2, 10, 10)
    heat[0, 0, 0, 4] = 1.0  # peak on the first row: no neighbour above
    heat[0, 0, 1, 4] = 0.5
    heat[0, 1, 5, 5:7] = 1.0  # flat top of two pixels
    points, _ = heatmap_argmax(heat)
    refined = refine_peaks(heat, points)[0]
    assert refined[0].tolist() == [0.0, 4.0]
    # across the flat top (cols 4, 5, 6 hold log 1e-6, 0, 0): shift 0.5 * (log 1e-6 - 0) / (log 1e-6 - 2 * 0 + 0) = 0.5,
    # the vertex half-way between the two tied pixels; down the rows (log 1e-6, 0, log 1e-6) the shift is 0
    assert refined[1].tolist() == [5.0, 5.5]


def test_decode_keypoints_keeps_peaks_near_the_predicted_boundary():
    heat = torch.zeros(2, 1, 40, 40)
    heat[:, 0] = torch.tensor(0.9 * gaussian((40, 40), (30, 30), 1.5) + 0.6 * gaussian((40, 40), (10.3, 14.6), 1.5))
    mask = torch.zeros(2, 1, 40, 40)
    mask[0, 0, 5:11, 5:15] = 1  # image 0: a structure whose corner holds the weaker peak
    heat = torch.logit(heat.clamp(1e-6, 1 - 1e-6))  # decode_keypoints takes logits
    free = decode_keypoints(heat, None, 0)
    assert torch.allclose(free["points"][0, 0], torch.tensor([30.0, 30.0]), atol=0.05)
    found = decode_keypoints(heat, mask, band=2)
    assert torch.allclose(found["points"][0, 0], torch.tensor([10.3, 14.6]), atol=0.1)
    # the strongest response was off the structure: the kept peak's probability over the free one's. The kept
    # pixel (10, 15) is the nearest to (10.3, 14.6): 0.6 * exp(-(0.3**2 + 0.4**2) / (2 * 1.5**2)) = 0.6 * exp(-0.25 / 4.5)
    # = 0.56758 (the 0.9 peak adds 0.9 * exp(-(20**2 + 15**2) / 4.5) ~ 1e-60); over 0.9: 0.63064
    assert float(found["confidence"][0, 0]) == pytest.approx(0.6 * np.exp(-0.25 / 4.5) / 0.9, abs=1e-4)
    # image 1 has an empty mask: the fallback is the unconstrained peak, with full confidence
    assert torch.allclose(found["points"][1, 0], torch.tensor([30.0, 30.0]), atol=0.05)
    assert float(found["confidence"][1, 0]) == pytest.approx(1.0)


def test_decode_keypoints_finds_the_peak_of_a_saturated_heatmap():
    """A confident decoder's sigmoid is exactly 1.0 over many pixels; the peak must still be found."""
    rows, cols = np.mgrid[:40, :50]
    logits = torch.tensor(40.0 - ((rows - 22.3) ** 2 + (cols - 31.6) ** 2) / 8.0, dtype=torch.float32)[None, None]
    assert (torch.sigmoid(logits) == 1.0).sum() > 20  # ties on the probabilities
    found = decode_keypoints(logits)
    assert torch.allclose(found["points"][0, 0], torch.tensor([22.3, 31.6]), atol=0.05)
    assert float(found["scores"][0, 0]) == pytest.approx(1.0)


def test_decode_keypoints_keeps_two_channels_off_one_spot():
    """Channel 1 answers both roots, the left one more strongly than the right one; channel 0 owns the
    left root. With a separation, channel 1 takes the right root."""
    rows, cols = np.mgrid[:40, :80]
    blob = lambda r, c, h: h - ((rows - r) ** 2 + (cols - c) ** 2) / 4.0  # noqa: E731
    left, right = blob(20, 10, 30.0), blob(22, 70, 10.0)
    logits = torch.tensor(np.stack([left, np.maximum(blob(20, 10, 16.0), right)]), dtype=torch.float32)[None]
    together = decode_keypoints(logits)["points"][0]
    assert torch.allclose(together[1], together[0], atol=0.5)
    apart = decode_keypoints(logits, separation=10.0)["points"][0]
    assert torch.allclose(apart[0], torch.tensor([20.0, 10.0]), atol=0.1)
    assert torch.allclose(apart[1], torch.tensor([22.0, 70.0]), atol=0.1)


def _separate_by_loop(logs: torch.Tensor, separation: float) -> torch.Tensor:
    """What ``_separate`` computes, written as the plain loop it replaces: image by image, channels from the
    strongest peak down (ties: lower channel first), each channel's pixels near a peak already taken set to -inf."""
    out = logs.clone()
    rows, cols = np.mgrid[: logs.shape[2], : logs.shape[3]]
    for i in range(logs.shape[0]):
        taken = np.zeros(logs.shape[2:], dtype=bool)
        peaks = logs[i].flatten(1).amax(dim=1).numpy()
        for ch in sorted(range(logs.shape[1]), key=lambda c: (-peaks[c], c)):
            out[i, ch][torch.from_numpy(taken)] = -torch.inf
            r, c = np.unravel_index(int(out[i, ch].flatten().argmax()), logs.shape[2:])
            taken |= (rows - r) ** 2 + (cols - c) ** 2 < separation**2
    return out


def test_separation_equals_the_channel_by_channel_loop_with_ties():
    from glsmonai.transforms.heatmap import _separate

    gen = torch.Generator().manual_seed(0)
    for trial in range(40):
        # integer levels: many ties between pixels and between channel peaks
        logs = -torch.randint(0, 4, (3, 4, 12, 15), generator=gen).float()
        if trial % 2:
            logs[:, 2] = logs[:, 0]  # two identical channels
        assert torch.equal(_separate(logs, 3.5), _separate_by_loop(logs, 3.5))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # shape checks, fixed on purpose
def test_decoding_traces_with_positions_that_follow_the_input():
    """Traced on one batch, the decoding finds the peaks of another batch of another size (nothing frozen)."""
    gen = torch.Generator().manual_seed(1)
    mask = (torch.rand(2, 1, 20, 24, generator=gen) > 0.5).float()
    decode = lambda logits, m: tuple(decode_keypoints(logits, m, band=2, separation=4.0).values())  # noqa: E731
    traced = torch.jit.trace(decode, (torch.randn(2, 3, 20, 24, generator=gen) * 4, mask), check_trace=False)
    logits, other = torch.randn(3, 3, 20, 24, generator=gen) * 4, (torch.rand(3, 1, 20, 24, generator=gen) > 0.5).float()
    for got, want in zip(traced(logits, other), decode(logits, other)):
        assert torch.equal(got, want)
