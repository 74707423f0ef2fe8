"""GLSLoss and its targets, checked against losses worked out by hand on a 6 x 6 label with two keypoints."""

from __future__ import annotations

import math

import pytest
import torch

from glsmonai.engines.loss import GLSLoss, local_target, output_target

# One image, one 6 x 6 label with a 3 x 3 block at rows 1..3, cols 1..3 (9 of 36 pixels are 1).
LABEL = torch.tensor(
    [
        [0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ],
    dtype=torch.float32,
)[None, None]
# Two keypoints (row, col) and 3 x 3 windows: keypoint p covers [p - 1, p + 2) on each axis.
KEYPOINTS = torch.tensor([[[1.0, 1.0], [4.0, 4.0]]])
CROP = (3, 3)
# LABEL[0:3, 0:3] and LABEL[3:6, 3:6]: 4 + 1 = 5 of the 18 window pixels are 1.
WINDOWS = torch.tensor(
    [
        [[0, 0, 0], [0, 1, 1], [0, 1, 1]],
        [[1, 0, 0], [0, 0, 0], [0, 0, 0]],
    ],
    dtype=torch.float32,
)[:, None]


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error: easy to work out by hand."""
    return (pred - target).abs().mean()


def working_pred() -> dict[str, torch.Tensor]:
    """A network output of crop space ``working``, every value chosen so that each term is easy to count."""
    return {
        "global": torch.zeros(1, 1, 6, 6),  # |0 - LABEL| -> 9 / 36 = 0.25
        "heatmap": torch.zeros(1, 2, 6, 6),  # |0 - 0.125| -> 0.125
        "keypoints": KEYPOINTS,
        "local": torch.ones(2, 1, 3, 3),  # |1 - WINDOWS| -> 13 / 18
        "fused": torch.full((1, 1, 6, 6), 0.5),  # |0.5 - LABEL| -> 0.5
    }


def targets() -> dict[str, torch.Tensor]:
    return {"label": LABEL, "heatmap": torch.full((1, 2, 6, 6), 0.125)}


def original_space_pred(to_source: list[list[float]]) -> dict[str, torch.Tensor]:
    """Windows of the original-space kind: 3 x 3 working pixels around the keypoints, mapped by ``to_source``."""
    return {
        "global": torch.zeros(1, 1, 6, 6),
        "heatmap": torch.zeros(1, 2, 6, 6),
        "keypoints": KEYPOINTS,
        "centres": KEYPOINTS,  # its presence marks the fused output as windows (crop_space original)
        "frame_centres": KEYPOINTS,
        "frame_window": torch.tensor([[3.0, 3.0]]),
        "to_source": torch.tensor([to_source]),
        "local": torch.ones(2, 1, 3, 3),
        "fused": torch.zeros(2, 1, 3, 3),
    }


IDENTITY = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]


def test_local_target_crops_the_working_label_at_the_keypoints():
    target = local_target(working_pred(), targets(), CROP)
    assert target.shape == (2, 1, 3, 3)  # (B * K, 1, h, w)
    torch.testing.assert_close(target, WINDOWS)


def test_local_target_in_original_space_with_identity_map_gives_the_label_pixels_back():
    # a window as large as the output (3 x 3) centred on a pixel samples exactly the pixels around it
    pred = original_space_pred(IDENTITY)
    torch.testing.assert_close(local_target(pred, {"source_label": LABEL}, CROP), WINDOWS)


def test_local_target_in_original_space_follows_to_source():
    # to_source shifts by (+1, +1): the windows are LABEL[1:4, 1:4] (all 1) and LABEL[4:6, 4:6] padded with 0
    pred = original_space_pred([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    expected = torch.zeros(2, 1, 3, 3)
    expected[0] = 1.0
    torch.testing.assert_close(local_target(pred, {"source_label": LABEL}, CROP), expected)


@pytest.mark.parametrize("output", ["global", "fused"])
def test_output_target_of_a_whole_image_output_is_the_working_label(output):
    assert output_target(output, working_pred(), targets(), CROP) is LABEL


def test_output_target_of_the_local_output_is_the_label_in_the_windows():
    torch.testing.assert_close(output_target("local", working_pred(), targets(), CROP), WINDOWS)


def test_output_target_of_the_original_space_fused_output_is_the_label_in_the_windows():
    pred = original_space_pred(IDENTITY)
    torch.testing.assert_close(output_target("fused", pred, {"label": LABEL, "source_label": LABEL}, CROP), WINDOWS)


def test_stage1_loss_is_global_segmentation_plus_weighted_heatmap():
    loss = GLSLoss("stage1", l1, CROP, heatmap_loss=l1, heatmap_weight=2.0)
    # 0.25 + 2 * 0.125 = 0.5
    assert loss(working_pred(), targets()).item() == pytest.approx(0.5)


def test_stage1_heatmap_weight_zero_drops_the_heatmap_term():
    loss = GLSLoss("stage1", l1, CROP, heatmap_loss=l1, heatmap_weight=0.0)
    assert loss(working_pred(), targets()).item() == pytest.approx(0.25)


def test_stage1_default_heatmap_loss_is_bce_with_logits():
    # BCE of logit 0 is ln 2 whatever the target: 0.25 + 1 * ln 2
    loss = GLSLoss("stage1", l1, CROP)
    assert loss(working_pred(), targets()).item() == pytest.approx(0.25 + math.log(2))


def test_stage2_loss_is_local_segmentation_against_the_cropped_label_only():
    # no heatmap term in stage 2, whatever heatmap_weight says: |1 - WINDOWS| = 13 / 18
    loss = GLSLoss(2, l1, CROP, heatmap_loss=l1, heatmap_weight=2.0, aux_weight=0.5)
    assert loss(working_pred(), targets()).item() == pytest.approx(13 / 18)


def test_stage3_loss_is_fused_plus_heatmap_plus_weighted_global_and_local():
    loss = GLSLoss("stage3", l1, CROP, heatmap_loss=l1, heatmap_weight=2.0, aux_weight=0.5)
    # fused 0.5 + 2 * heatmap 0.125 + 0.5 * (global 0.25 + local 13/18) = 0.75 + 35/72 = 89/72
    assert loss(working_pred(), targets()).item() == pytest.approx(89 / 72)


def test_stage3_aux_weight_zero_drops_the_global_and_local_terms():
    loss = GLSLoss("stage3", l1, CROP, heatmap_loss=l1, heatmap_weight=2.0, aux_weight=0.0)
    # 0.5 + 2 * 0.125
    assert loss(working_pred(), targets()).item() == pytest.approx(0.75)


def test_stage3_heatmap_weight_zero_drops_the_heatmap_term():
    loss = GLSLoss("stage3", l1, CROP, heatmap_loss=l1, heatmap_weight=0.0, aux_weight=0.5)
    # 0.5 + 0.5 * (0.25 + 13/18) = 0.5 + 35/72 = 71/72
    assert loss(working_pred(), targets()).item() == pytest.approx(71 / 72)


def test_stage3_in_original_space_scores_the_fused_windows():
    pred = original_space_pred(IDENTITY)
    loss = GLSLoss("stage3", l1, CROP, heatmap_loss=l1, heatmap_weight=2.0, aux_weight=0.5)
    # fused |0 - WINDOWS| = 5/18, heatmap 0.125, global |0 - LABEL| = 0.25, local |1 - WINDOWS| = 13/18:
    # 5/18 + 2 * 0.125 + 0.5 * (0.25 + 13/18) = 20/72 + 18/72 + 35/72 = 73/72
    value = loss(pred, {**targets(), "source_label": LABEL}).item()
    assert value == pytest.approx(73 / 72)


def test_loss_is_differentiable_in_the_trained_output():
    pred = working_pred()
    pred["local"].requires_grad_(True)
    GLSLoss("stage2", l1, CROP)(pred, targets()).backward()
    # d/dx mean|x - t| = sign(x - t) / 18: +1/18 where the window label is 0, 0 where it is 1 (x = t)
    expected = (1 - WINDOWS) / 18
    torch.testing.assert_close(pred["local"].grad, expected)
