"""The stage table: what each of the three GLS stages trains, outputs, adds to the loss and starts from."""

from __future__ import annotations

import pytest

from glsmonai.networks import GLSNet, SegmentationOnly
from glsmonai.stages import STAGE_NAMES, STAGES, Stage, enter_stage, get_stage, later_output, network_for_stage, stage_of_output


def test_three_stages_in_training_order():
    assert STAGE_NAMES == ("stage1", "stage2", "stage3")
    assert [s.number for s in STAGES.values()] == [1, 2, 3]


def test_stage1_trains_the_global_net_from_scratch_with_the_heatmap_term():
    assert STAGES["stage1"] == Stage(
        name="stage1", number=1, trains=("global_net",), output="global", heatmap_loss=True, aux_loss=False,
        starts_from=None,
    )


def test_stage2_trains_the_local_net_from_stage1_on_segmentation_alone():
    assert STAGES["stage2"] == Stage(
        name="stage2", number=2, trains=("local_net",), output="local", heatmap_loss=False, aux_loss=False,
        starts_from="stage1",
    )


def test_stage3_trains_all_three_parts_from_stage2_with_heatmap_and_aux_terms():
    assert STAGES["stage3"] == Stage(
        name="stage3", number=3, trains=("global_net", "local_net", "fusion"), output="fused", heatmap_loss=True,
        aux_loss=True, starts_from="stage2",
    )


@pytest.mark.parametrize("spelling", ["stage2", 2, "2", STAGES["stage2"]])
def test_get_stage_accepts_name_number_digit_string_and_stage(spelling):
    assert get_stage(spelling) is STAGES["stage2"]


@pytest.mark.parametrize("spelling", ["stage4", 0, "Stage2", "two", "", 2.0])
def test_get_stage_rejects_others_listing_the_stages(spelling):
    with pytest.raises(ValueError, match=r"unknown stage .*\['stage1', 'stage2', 'stage3'\]"):
        get_stage(spelling)


@pytest.mark.parametrize(("output", "stage"), [("global", "stage1"), ("local", "stage2"), ("fused", "stage3")])
def test_stage_of_output_is_the_stage_that_trains_it(output, stage):
    assert stage_of_output(output) is STAGES[stage]


def test_stage_of_an_unknown_output_is_a_value_error():
    with pytest.raises(ValueError, match="no stage trains the output 'heatmap'"):
        stage_of_output("heatmap")


@pytest.mark.parametrize(
    ("a", "b", "later"),
    [
        ("global", "local", "local"),
        ("fused", "global", "fused"),
        ("local", "fused", "fused"),
        ("local", "local", "local"),
    ],
)
def test_later_output_is_the_one_computed_later(a, b, later):
    assert later_output(a, b) == later
    assert later_output(b, a) == later


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_enter_stage_freezes_every_part_the_stage_does_not_train(stage):
    net = GLSNet(crop_size=(8, 8), channels=(2, 4, 4, 8, 8))
    trainable = enter_stage(net, stage)
    row = STAGES[stage]
    assert net.output == row.output
    assert net.frozen == set(net.parts) - set(row.trains)
    expected = [p for name in row.trains for p in net.part(name).parameters()]
    assert {id(p) for p in trainable} == {id(p) for p in expected}


def test_enter_stage_unfreezes_what_an_earlier_stage_froze():
    net = GLSNet(crop_size=(8, 8), channels=(2, 4, 4, 8, 8))
    enter_stage(net, "stage2")
    enter_stage(net, "stage3")
    assert net.frozen == set()
    assert all(p.requires_grad for p in net.parameters())


def test_the_stage_network_gives_the_optimizer_what_enter_stage_returns_in_the_same_order():
    # train.json's optimizers take filter(requires_grad, network_for_stage(...).parameters()): the stages in
    # training order must give the very list enter_stage returns, order included (the optimizer's state follows it)
    net = GLSNet(crop_size=(8, 8), channels=(2, 4, 4, 8, 8))
    for stage in STAGE_NAMES:
        staged = network_for_stage(net, stage)
        assert staged is net
        taken = [id(p) for p in filter(lambda p: p.requires_grad, staged.parameters())]
        assert taken == [id(p) for p in enter_stage(net, stage)]


def test_a_baseline_has_stage1_only():
    net = SegmentationOnly("unet", features=(4, 4, 8, 8, 16, 4))
    assert len(enter_stage(net, "stage1")) == len(list(net.parameters()))
    with pytest.raises(ValueError, match="one-stage baseline"):
        enter_stage(net, "stage2")


def test_a_stage_may_keep_a_part_frozen_that_its_row_trains():
    # train.json's keep_frozen {"stage3": ["global_net"]}: stage 3 fine-tunes the local branch and the fusion only
    net = GLSNet(crop_size=(8, 8), channels=(2, 4, 4, 8, 8))
    trainable = enter_stage(net, "stage3", frozen=["global_net"])
    assert net.frozen == {"global_net"} and net.output == "fused"
    expected = [p for name in ("local_net", "fusion") for p in net.part(name).parameters()]
    assert [id(p) for p in trainable] == [id(p) for p in expected]
    assert not any(p.requires_grad for p in net.global_net.parameters())
    enter_stage(net, "stage3")  # without it, stage 3 trains all three parts again
    assert net.frozen == set()


@pytest.mark.parametrize(("stage", "frozen", "message"), [
    ("stage3", ["encoder"], r"cannot keep \['encoder'\] frozen; the network's parts are"),
    ("stage2", ["local_net"], r"stage2: keeping \['local_net'\] frozen leaves nothing"),
])
def test_keeping_an_unknown_part_or_every_part_frozen_is_refused(stage, frozen, message):
    with pytest.raises(ValueError, match=message):
        enter_stage(GLSNet(crop_size=(8, 8), channels=(2, 4, 4, 8, 8)), stage, frozen=frozen)
