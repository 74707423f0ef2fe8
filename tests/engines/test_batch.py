"""prepare_gls_batch (batch -> network input and targets) and StageOutputd (output and label as binary masks)."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from glsmonai.engines.batch import SOURCE_KEYS, StageOutputd, prepare_gls_batch


def working_batch() -> dict:
    """A collated batch of two working-size scans, as the training data loader yields it."""
    return {
        "image": torch.rand(2, 1, 6, 6),
        "label": torch.zeros(2, 1, 6, 6),
        "heatmap": torch.zeros(2, 2, 6, 6),
        "keypoints": torch.zeros(2, 2, 2),
        "image_path": ["a.png", "b.png"],
    }


def original_batch() -> dict:
    """The same batch with the original-resolution scans (``crop_space original``), in the dtypes collation gives."""
    return {
        **working_batch(),
        "source": torch.zeros(2, 1, 12, 12, dtype=torch.uint8),
        "source_label": torch.zeros(2, 1, 12, 12),
        "to_source": torch.tensor([[[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]] * 2, dtype=torch.float64),
        "window": torch.tensor([[6, 6], [6, 6]]),
    }


def test_working_batch_gives_image_and_label_heatmap_targets():
    batch = working_batch()
    image, targets = prepare_gls_batch(batch)
    assert torch.equal(image, batch["image"])
    assert set(targets) == {"label", "heatmap"}  # keypoints and paths are not targets
    assert torch.equal(targets["label"], batch["label"])
    assert torch.equal(targets["heatmap"], batch["heatmap"])


def test_original_space_batch_gives_float_network_kwargs_and_the_source_label():
    batch = original_batch()
    prepared = prepare_gls_batch(batch)
    assert len(prepared) == 4
    image, targets, args, kwargs = prepared
    assert args == ()
    assert set(targets) == {"label", "heatmap", "source_label"}
    assert set(kwargs) == set(SOURCE_KEYS) == {"source", "to_source", "window"}
    assert all(value.dtype == torch.float32 for value in kwargs.values())
    assert torch.equal(kwargs["window"], torch.tensor([[6.0, 6.0], [6.0, 6.0]]))


def test_meta_tensors_come_out_as_plain_tensors():
    batch = working_batch()
    batch["image"] = MetaTensor(batch["image"])
    batch["label"] = MetaTensor(batch["label"])
    image, targets = prepare_gls_batch(batch)
    assert type(image) is torch.Tensor
    assert type(targets["label"]) is torch.Tensor
    assert torch.equal(image, batch["image"].as_tensor())


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_device_argument_is_honoured(device):
    image, targets, _, kwargs = prepare_gls_batch(original_batch(), device=device)
    assert {t.device.type for t in (image, *targets.values(), *kwargs.values())} == {"cpu"}


def test_stage1_output_is_the_global_logits_thresholded_against_the_label():
    # sigmoid(x) > 0.5 <=> x > 0: logits [[2, -1], [0, 0.3]] -> [[1, 0], [0, 1]] (sigmoid(0) = 0.5 is not above)
    data = {
        "pred": {"global": torch.tensor([[[[2.0, -1.0], [0.0, 0.3]]]])},
        "label": {"label": torch.tensor([[[[0.2, 0.6], [0.5, 1.0]]]])},  # > 0.5 -> [[0, 1], [0, 1]]
    }
    out = StageOutputd("stage1", crop_size=(2, 2))(data)
    assert torch.equal(out["pred"], torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]]))
    assert torch.equal(out["label"], torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]]))


def test_threshold_applies_to_the_sigmoid():
    # sigmoid(2) = 0.88 and sigmoid(3) = 0.95: only the second is above 0.9
    data = {"pred": {"global": torch.tensor([[[[2.0, 3.0]]]])}, "label": {"label": torch.ones(1, 1, 1, 2)}}
    out = StageOutputd(1, crop_size=(1, 1), threshold=0.9)(data)
    assert torch.equal(out["pred"], torch.tensor([[[[0.0, 1.0]]]]))


def test_stage2_output_is_the_local_crops_against_the_label_cut_at_the_keypoints():
    label = torch.zeros(1, 1, 4, 4)
    label[0, 0, 0, 0] = 1.0  # one pixel, inside the first window only
    # 2 x 2 windows at (1, 1) and (3, 3) cover rows/cols [0, 2) and [2, 4)
    pred = {
        "local": torch.tensor([-1.0, 1.0]).view(2, 1, 1, 1).expand(2, 1, 2, 2),  # window 1 all < 0, window 2 all > 0
        "keypoints": torch.tensor([[[1.0, 1.0], [3.0, 3.0]]]),
    }
    out = StageOutputd("stage2", crop_size=(2, 2))({"pred": pred, "label": {"label": label}})
    assert out["pred"].shape == out["label"].shape == (2, 1, 2, 2)  # (B * K, 1, h, w)
    assert torch.equal(out["pred"], torch.tensor([0.0, 1.0]).view(2, 1, 1, 1).expand(2, 1, 2, 2))
    assert torch.equal(out["label"], torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[0.0, 0.0], [0.0, 0.0]]]]))


def test_stage3_output_is_the_fused_logits_against_the_working_label():
    label = torch.zeros(1, 1, 4, 4)
    label[0, 0, 1:3, 1:3] = 1.0
    pred = {
        "global": torch.full((1, 1, 4, 4), -5.0),  # not scored in stage 3
        "local": torch.full((2, 1, 2, 2), 5.0),
        "keypoints": torch.tensor([[[1.0, 1.0], [3.0, 3.0]]]),
        "fused": label * 10 - 5,  # logit +5 on the block, -5 elsewhere
    }
    out = StageOutputd("stage3", crop_size=(2, 2))({"pred": pred, "label": {"label": label}})
    assert torch.equal(out["pred"], label)
    assert torch.equal(out["label"], label)


def test_other_entries_pass_through():
    data = {
        "pred": {"global": torch.zeros(1, 1, 1, 1)},
        "label": {"label": torch.zeros(1, 1, 1, 1)},
        "image_path": ["a.png"],
    }
    assert StageOutputd("stage1", crop_size=(1, 1))(data)["image_path"] == ["a.png"]
