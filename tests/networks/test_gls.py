"""GLSNet and its parts: output shapes on odd sizes, the named outputs (working and original crop space), freezing, stages."""

from __future__ import annotations

import pytest
import torch

from glsmonai.networks import FusionNet, GLSKeys, GLSNet, SharedEncoderNet
from glsmonai.stages import enter_stage
from glsmonai.transforms import WorkingGrid

SMALL = (4, 8, 8, 16, 16)


@pytest.mark.parametrize("shape", [(64, 64), (37, 53), (100, 100), (17, 90)])
def test_shared_encoder_any_size(shape):
    net = SharedEncoderNet(2, 1, (1, 3), channels=SMALL)
    seg, heat = net(torch.rand(2, 1, *shape))
    assert seg.shape == (2, 1, *shape) and heat.shape == (2, 3, *shape)


def test_table1_widths_by_default():
    net = SharedEncoderNet(2, 1, (1, 2))
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].out_channels == 16 and max(c.out_channels for c in convs) == 256
    assert FusionNet().body[0].out_channels == 16 and FusionNet(in_channels=2).body[0].in_channels == 2


@pytest.mark.parametrize("shape", [(48, 48), (45, 61)])
def test_gls_outputs_up_to_the_requested_one(shape):
    net = GLSNet(num_keypoints=3, crop_size=(20, 16), channels=SMALL)
    x = torch.rand(2, 1, *shape)
    net.output = "global"
    out = net(x)
    assert set(out) == {GLSKeys.GLOBAL.value, GLSKeys.HEATMAP.value}
    assert out["heatmap"].shape == (2, 3, *shape)
    net.output = "local"
    assert "fused" not in net(x) and net(x)["local"].shape == (6, 1, 20, 16)
    net.output = "fused"
    out = net(x)
    assert out["keypoints"].shape == (2, 3, 2) and out["scores"].shape == (2, 3)
    assert out["local"].shape == (6, 1, 20, 16)
    assert out["fused"].shape == out["global"].shape == out["local_pasted"].shape == (2, 1, *shape)
    assert out["windows"].amax() == 1


def trainable(module):
    return {p.requires_grad for p in module.parameters()}


def test_freeze_keeps_a_part_out_of_training_mode():
    net = GLSNet(crop_size=(16, 16), channels=SMALL)
    net.freeze("global_net")
    net.train()
    assert trainable(net.global_net) == {False} and not net.global_net.training
    assert trainable(net.local_net) == {True} and net.local_net.training
    assert net.frozen == {"global_net"}
    net.unfreeze()
    net.train()
    assert trainable(net) == {True} and net.global_net.training and net.frozen == frozenset()
    with pytest.raises(ValueError, match="unknown part 'encoder'"):
        net.freeze("encoder")


def test_stage2_gradients_reach_only_the_local_net():
    net = GLSNet(crop_size=(16, 16), channels=SMALL)
    enter_stage(net, "stage2")
    out = net(torch.rand(1, 1, 32, 32))
    out["local"].mean().backward()
    assert all(p.grad is None for p in net.global_net.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.local_net.parameters())


def test_stage3_gradients_reach_the_global_net_through_fusion():
    net = GLSNet(crop_size=(16, 16), channels=SMALL)
    net(torch.rand(1, 1, 32, 32))["fused"].mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.global_net.parameters())


def test_network_original_space_outputs():
    net = GLSNet(num_keypoints=2, crop_size=(8, 8), channels=(4, 8, 8, 16, 16), crop_space="original",
                 local_size=(16, 16), keypoint_band=2).eval()
    grid = WorkingGrid((120, 90), (32, 32))
    image, source = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 120, 90)
    to_source = torch.from_numpy(grid.to_original_affine())[None].repeat(2, 1, 1)  # (2, 2, 3)
    window = torch.tensor([[30.0, 30.0], [24.0, 20.0]])
    with torch.no_grad():
        out = net(image, source=source, to_source=to_source, window=window)
    assert out["local"].shape == out["fused"].shape == out["global_windows"].shape == (4, 1, 16, 16)
    assert out["centres"].shape == (2, 2, 2) and out["confidence"].shape == (2, 2)
    centres = torch.tensor(grid.to_original(out["keypoints"][0].numpy()), dtype=torch.float32)
    assert torch.allclose(out["centres"][0], centres, atol=1e-3)
    # the fusion starts as "the local prediction": the same decision wherever the local one is clear
    local = torch.sigmoid(out["local"])
    clear = (local - 0.5).abs() > 0.05
    assert clear.sum() > 100
    assert ((out["fused"] > 0) == (local > 0.5))[clear].float().mean() > 0.98
    with pytest.raises(ValueError, match="needs source"):
        net(image)


def fusion_inputs(windowed: bool = True) -> tuple[torch.Tensor, ...]:
    """Global and local probabilities and (``windowed``) the window mask: a window over the left half."""
    g, loc = torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8)
    if not windowed:
        return g, loc
    w = torch.zeros(1, 1, 8, 8)
    w[..., :4] = 1
    return g, loc * w, w


@pytest.mark.parametrize("windowed", [True, False])
def test_fusion_mean_init_starts_from_the_branches_mean_in_the_windows(windowed):
    fusion = FusionNet(in_channels=3 if windowed else 2)
    fusion.init_mean(gain=10.0, noise=0.0)
    inputs = fusion_inputs(windowed)
    logits = fusion(torch.cat(inputs, dim=1)) / 10.0 + 0.5  # the head maps p to 10 * (p - 0.5)
    g, loc = inputs[:2]
    expected = (g + loc) / 2 if not windowed else torch.where(inputs[2] > 0, (g + loc) / 2, g)
    # exact but for the LeakyReLU's 0.1 slope on the channel that is negative inside a window: at most 0.01
    assert torch.allclose(logits, expected, atol=0.011)


def test_fusion_init_is_recorded_and_checked():
    net = GLSNet(crop_size=(8, 8), channels=SMALL, fusion_init="mean")
    assert net.build_args()["fusion_init"] == "mean"
    g, loc, w = fusion_inputs()
    assert torch.allclose(net.fusion(torch.cat([g, loc, w], dim=1)) / 12 + 0.5,
                          torch.where(w > 0, (g + loc) / 2, g), atol=0.05)  # with the default small noise
    with pytest.raises(ValueError, match="fusion_init must be one of"):
        GLSNet(crop_size=(8, 8), channels=SMALL, fusion_init="average")


def count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("shared", [1, 3, 4])
def test_shared_levels_are_the_segmentation_decoders_own_deep_up_convolutions(shared):
    # a decoder sharing the deepest `shared` up-convolutions computes what a separate decoder with those weights does
    net = SharedEncoderNet(2, 1, (1, 3), channels=SMALL, coord_heads=(False, True), shared_levels=shared)
    separate = SharedEncoderNet(2, 1, (1, 3), channels=SMALL, coord_heads=(False, True))
    seg_decoder, heat_decoder = net.decoders
    assert len(seg_decoder.ups) == 4 and len(heat_decoder.ups) == 4 - shared
    # what sharing saves is exactly the shared up-convolutions of the keypoint decoder
    assert count(separate) - count(net) == count(separate.decoders[1].ups[:shared])
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("decoders.1.ups.")}
    for i in range(4):
        source = f"decoders.0.ups.{i}." if i < shared else f"decoders.1.ups.{i - shared}."
        state |= {k.replace(source, f"decoders.1.ups.{i}."): v for k, v in net.state_dict().items() if k.startswith(source)}
    separate.load_state_dict(state)  # strict: every tensor of the separate network is set
    net.eval(), separate.eval()
    x = torch.rand(2, 1, 37, 53)
    for a, b in zip(net(x), separate(x)):
        assert a.shape[2:] == (37, 53) and torch.allclose(a, b, atol=1e-6)


def test_a_fully_shared_decoder_gives_the_heatmaps_a_1x1_head_with_coordinates():
    net = SharedEncoderNet(2, 1, (1, 3), channels=SMALL, coord_heads=(False, True), shared_levels=4)
    assert net.decoders[1].head.in_channels == SMALL[0] + 2
    x = torch.rand(2, 1, 37, 53)
    seg, heat = net(x)
    with torch.no_grad():
        net.decoders[0].head.weight.zero_()  # the segmentation head alone: the heatmaps do not move
    assert torch.equal(net(x)[1], heat) and not torch.equal(net(x)[0], seg)
    with pytest.raises(ValueError, match=r"shared_levels must be in \[0, 4\]"):
        SharedEncoderNet(2, 1, (1, 3), channels=SMALL, shared_levels=5)


def test_separate_decoders_keep_the_checkpoint_keys_of_earlier_model_folders():
    keys = SharedEncoderNet(2, 1, (1, 3), channels=SMALL, coord_heads=(False, True)).state_dict()
    assert "decoders.1.head.weight" in keys and not any(k.startswith("heads.") for k in keys)


@pytest.mark.parametrize(("name", "shared"), [("separate", 0), ("shared", 4), ("shared_deep", 3)])
def test_heatmap_decoder_is_recorded_rebuilt_and_checked(name, shared):
    net = GLSNet(num_keypoints=3, crop_size=(8, 8), channels=SMALL, heatmap_decoder=name)
    assert net.build_args()["heatmap_decoder"] == name and net.global_net.shared_levels == shared
    rebuilt = GLSNet(**net.build_args())
    rebuilt.load_state_dict(net.state_dict())  # strict: the same parts
    net.eval(), rebuilt.eval()
    x = torch.rand(1, 1, 32, 32)
    assert torch.equal(net(x)["fused"], rebuilt(x)["fused"])
    assert GLSNet(crop_size=(8, 8), channels=SMALL).build_args()["heatmap_decoder"] == "separate"
    with pytest.raises(ValueError, match="heatmap_decoder must be one of"):
        GLSNet(crop_size=(8, 8), channels=SMALL, heatmap_decoder="joint")
