"""Window jitter in training: the local windows move off the keypoints, and the image crop, the pasted local
prediction and the label crop all move together."""

from __future__ import annotations

import torch

from glsmonai.engines.loss import local_target
from glsmonai.networks import GLSKeys, GLSNet
from glsmonai.networks.windows import WorkingWindows
from glsmonai.transforms.crop import paste_at_points

SMALL = (4, 8, 8, 16, 16)


def coordinate_image(h: int = 64, w: int = 64) -> torch.Tensor:
    """``(1, 1, h, w)`` whose pixel value is its own index ``row * w + col``: a crop's middle names its centre."""
    return torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w)


def test_working_windows_jitter_only_in_training_and_within_reach():
    image, points = coordinate_image(), torch.tensor([[[32.0, 32.0], [20.0, 40.0]]])
    windows = WorkingWindows((16, 12), jitter=0.25)
    torch.manual_seed(0)

    crops, placed = windows.crop(image, points, training=False)
    assert placed == {}
    assert crops[:, 0, 8, 6].tolist() == [32 * 64 + 32, 20 * 64 + 40]  # the window's middle is the keypoint

    moved = torch.stack([windows.crop(image, points, training=True)[1][GLSKeys.KEYPOINTS.value] for _ in range(200)])
    shift = (moved - points).abs()
    assert shift[..., 0].max() <= 16 * 0.25 and shift[..., 1].max() <= 12 * 0.25
    assert shift[..., 0].max() > 3 and shift[..., 1].max() > 2  # it does reach out, on both axes

    crops, placed = windows.crop(image, points, training=True)
    centres = placed[GLSKeys.KEYPOINTS.value].round()
    assert crops[:, 0, 8, 6].tolist() == (centres[0, :, 0] * 64 + centres[0, :, 1]).tolist()


def test_no_jitter_keeps_windows_on_the_keypoints_in_training():
    crops, placed = WorkingWindows((16, 16)).crop(coordinate_image(), torch.tensor([[[30.0, 30.0]]]), training=True)
    assert placed == {} and crops[0, 0, 8, 8] == 30 * 64 + 30


def test_gls_training_crops_image_and_label_at_the_same_jittered_windows():
    torch.manual_seed(0)
    net = GLSNet(num_keypoints=2, crop_size=(16, 16), channels=SMALL, keypoint_jitter=0.3)
    image = coordinate_image() / 4096
    net.train()
    out = net(image)
    net.eval()
    found = net(image)[GLSKeys.KEYPOINTS.value]
    assert not torch.allclose(out[GLSKeys.KEYPOINTS.value], found)  # the windows moved in training only
    assert ((out[GLSKeys.KEYPOINTS.value] - found).abs() <= 16 * 0.3 + 1e-4).all()

    # the label is cut where the image was: with the image itself as the label, the two crops are equal
    label_crops = local_target(out, {"label": image}, (16, 16))
    image_crops = WorkingWindows((16, 16)).crop(image, out[GLSKeys.KEYPOINTS.value])[0]
    assert torch.equal(label_crops, image_crops)
    # and the local prediction is pasted back there, not at the keypoints found
    ones = torch.ones_like(out[GLSKeys.LOCAL.value])
    assert torch.equal(out[GLSKeys.WINDOWS.value], paste_at_points(ones, out[GLSKeys.KEYPOINTS.value], (64, 64)))
    assert not torch.equal(out[GLSKeys.WINDOWS.value], paste_at_points(ones, found, (64, 64)))
