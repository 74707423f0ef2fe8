"""A model folder: its settings file, its stage checkpoints, and loading a trained network from it."""

from __future__ import annotations

import re

import pytest
import torch

from glsmonai.model_folder import (
    MODEL_INFO_FILE,
    ModelFolder,
    NetworkArgs,
    RecordedPredict,
    load_trained,
    network_from_args,
    read_model_info,
    stage_checkpoint,
    trained_stage,
    write_model_info,
)
from glsmonai.networks import GLSNet, SegmentationOnly
from glsmonai.stages import STAGES
from glsmonai.transforms.pipeline import DEFAULT_INTENSITY_PERCENTILES


def tiny_net() -> GLSNet:
    return GLSNet(crop_size=(8, 8), channels=(2, 4, 4, 8, 8))


def same_architecture(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)


def test_settings_round_trip_with_the_network_build_args(tmp_path):
    net = tiny_net()
    path = write_model_info(tmp_path, net, {"image_size": [64, 72], "sigma": 3.0, "label_value": None})
    assert path == tmp_path / MODEL_INFO_FILE
    assert read_model_info(tmp_path) == {
        "image_size": [64, 72], "sigma": 3.0, "label_value": None, "network": net.build_args(),
    }


def test_settings_are_written_atomically_leaving_no_temporary_file(tmp_path):
    write_model_info(tmp_path, tiny_net(), {"image_size": [64, 64]})
    write_model_info(tmp_path, tiny_net(), {"image_size": [32, 32]})  # overwrites in place
    assert [p.name for p in tmp_path.iterdir()] == [MODEL_INFO_FILE]  # iterdir lists hidden files too
    assert read_model_info(tmp_path)["image_size"] == [32, 32]


def test_reading_a_folder_without_settings_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / MODEL_INFO_FILE))) as err:
        read_model_info(tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[1, 2]",
        '{"image_size": [64, 64]}',  # no network
        '{"network": {"crop_size": [8, 8]}}',  # no image_size
        '{"network": "GLSNet", "image_size": [64, 64]}',  # network not a mapping
    ],
)
def test_reading_a_broken_settings_file_names_the_file_in_one_line(tmp_path, text):
    (tmp_path / MODEL_INFO_FILE).write_text(text)
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / MODEL_INFO_FILE))) as err:
        read_model_info(tmp_path)
    assert "\n" not in str(err.value)


def test_network_from_args_rebuilds_a_gls_net(tmp_path):
    net = GLSNet(num_keypoints=3, crop_size=(8, 6), channels=(2, 4, 4, 8, 8), fusion_features=4)
    rebuilt = network_from_args(net.build_args())
    assert type(rebuilt) is GLSNet
    assert rebuilt.build_args() == net.build_args()
    assert same_architecture(rebuilt, net)


def test_network_from_args_rebuilds_a_baseline_through_the_settings_file(tmp_path):
    net = SegmentationOnly("unet", features=(4, 4, 8, 8, 16, 4))
    write_model_info(tmp_path, net, {"image_size": [32, 32]})
    rebuilt = network_from_args(read_model_info(tmp_path)["network"])  # JSON turned the tuple into a list
    assert type(rebuilt) is SegmentationOnly
    assert same_architecture(rebuilt, net)


def test_network_from_args_rebuilds_a_gls_net_through_the_settings_file(tmp_path):
    net = tiny_net()
    write_model_info(tmp_path, net, {"image_size": [32, 32]})
    assert same_architecture(network_from_args(read_model_info(tmp_path)["network"]), net)


def test_stage_checkpoint_names(tmp_path):
    assert stage_checkpoint(tmp_path, "stage1") == tmp_path / "stage1_best.pt"
    assert stage_checkpoint(tmp_path, 2, "best") == tmp_path / "stage2_best.pt"
    assert stage_checkpoint(tmp_path, STAGES["stage3"], "final") == tmp_path / "stage3_final.pt"


def test_trained_stage_is_the_latest_stage_with_a_best_checkpoint(tmp_path):
    for name in ("stage1_best.pt", "stage2_best.pt", "stage3_final.pt", "stage3_checkpoint_epoch=4.pt"):
        (tmp_path / name).touch()
    assert trained_stage(tmp_path) is STAGES["stage2"]  # stage 3 has no best checkpoint


def test_trained_stage_without_any_best_checkpoint_is_an_error(tmp_path):
    (tmp_path / "stage1_final.pt").touch()
    with pytest.raises(FileNotFoundError, match="stage1_best.pt / stage2_best.pt / stage3_best.pt"):
        trained_stage(tmp_path)


def perturbed(net: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    return net


@pytest.mark.parametrize("wrapped", [False, True], ids=["flat", "network-key"])
def test_load_trained_loads_the_latest_stage_and_sets_the_network_up_for_it(tmp_path, wrapped):
    trained = perturbed(tiny_net())
    state = trained.state_dict()
    # CheckpointSaver writes a lone network flat; {"network": ...} is read too
    torch.save({"network": state} if wrapped else state, tmp_path / "stage2_best.pt")
    (tmp_path / "stage1_best.pt").touch()  # older stage: not read

    net = tiny_net()
    assert load_trained(net, tmp_path) is STAGES["stage2"]
    loaded = net.state_dict()
    assert loaded.keys() == state.keys()
    for key in state:
        torch.testing.assert_close(loaded[key], state[key], rtol=0, atol=0, msg=key)
    assert net.output == "local"
    assert net.frozen == {"global_net", "fusion"}


def test_load_trained_of_a_named_stage(tmp_path):
    trained = perturbed(tiny_net())
    torch.save(trained.state_dict(), tmp_path / "stage1_best.pt")
    torch.save(tiny_net().state_dict(), tmp_path / "stage2_best.pt")
    net = tiny_net()
    assert load_trained(net, tmp_path, stage=1) is STAGES["stage1"]
    torch.testing.assert_close(net.state_dict(), trained.state_dict(), rtol=0, atol=0)
    assert net.output == "global"
    assert net.frozen == {"local_net", "fusion"}


def test_load_trained_of_a_missing_stage_names_the_checkpoint(tmp_path):
    torch.save(tiny_net().state_dict(), tmp_path / "stage2_best.pt")
    with pytest.raises(FileNotFoundError, match="stage3_best.pt"):
        load_trained(tiny_net(), tmp_path, stage="stage3")


@pytest.mark.parametrize("content", [None, b"", b"not a checkpoint"], ids=["truncated", "empty", "garbage"])
def test_load_trained_of_an_unreadable_checkpoint_is_one_value_error_naming_the_file(tmp_path, content):
    path = stage_checkpoint(tmp_path, "stage1")
    torch.save(tiny_net().state_dict(), path)
    path.write_bytes(path.read_bytes()[:1000] if content is None else content)
    with pytest.raises(ValueError) as err:
        load_trained(tiny_net(), tmp_path)
    message = str(err.value)
    assert message.startswith(f"{path}: not a readable checkpoint, truncated or corrupt (")
    assert "\n" not in message and len(message) < 300


def test_load_trained_baseline(tmp_path):
    trained = perturbed(SegmentationOnly("unet", features=(4, 4, 8, 8, 16, 4)))
    torch.save(trained.state_dict(), tmp_path / "stage1_best.pt")
    net = SegmentationOnly("unet", features=(4, 4, 8, 8, 16, 4))
    assert load_trained(net, tmp_path) is STAGES["stage1"]
    torch.testing.assert_close(net.state_dict(), trained.state_dict(), rtol=0, atol=0)


def test_a_checkpoint_of_another_network_is_refused_in_one_line(tmp_path):
    write_model_info(tmp_path, tiny_net(), {"image_size": [32, 32]})
    other = GLSNet(crop_size=(8, 8), channels=(4, 8, 16, 32))  # one level more than the settings file says
    torch.save(other.state_dict(), stage_checkpoint(tmp_path, "stage1"))
    with pytest.raises(ValueError, match=r"stage1_best.pt: does not fit the network gls_model.json describes"):
        load_trained(network_from_args(read_model_info(tmp_path)["network"]), tmp_path)


# --- the typed reader ------------------------------------------------------------------------------------


def test_model_folder_reads_the_settings_typed(tmp_path, caplog):
    net = tiny_net()
    write_model_info(tmp_path, net, {
        "image_size": [64, 72], "intensity_percentiles": [1, 99], "keypoint_rule": "iris_roots", "label_value": 2,
        "keypoint_names": ["left", "right"], "sigma": 3.0, "crop_window": [20, 24], "crop_window_mm": None,
        "flip_swap": [[0, 1]], "num_components": 2, "predict": {"tta": True, "components": "task", "speed": 1},
    })
    torch.save(net.state_dict(), stage_checkpoint(tmp_path, "stage2"))
    folder = ModelFolder.open(tmp_path)
    settings = folder.settings
    assert (settings.image_size, settings.intensity_percentiles, settings.crop_window, settings.crop_window_mm) == (
        (64, 72), (1.0, 99.0), (20.0, 24.0), None)
    assert (settings.keypoint_rule, settings.keypoint_names, settings.label_value, settings.sigma) == (
        "iris_roots", ("left", "right"), 2, 3.0)
    assert (settings.flip_swap, settings.num_components) == (((0, 1),), 2)
    assert settings.predict == RecordedPredict(tta=True, components="task")
    assert "unknown prediction option(s) ['speed']" in caplog.text  # named, not used
    assert settings.network == NetworkArgs(net.build_args()) and settings.network.crop_size == (8, 8)
    assert settings.network.crop_space == "working" and settings.network.baseline is None
    assert settings.to_dict() == read_model_info(tmp_path)  # every key, as the file holds it
    assert folder.trained_stage().name == "stage2" and folder.checkpoint("stage2") == stage_checkpoint(tmp_path, 2)
    network = folder.build_network()
    assert same_architecture(network, net) and folder.load(network).name == "stage2"


def test_an_old_model_folder_reads_with_the_defaults_it_was_made_with(tmp_path):
    # a folder from before the recorded percentiles, keypoint pairs, component count and prediction options
    write_model_info(tmp_path, SegmentationOnly("unet", features=(4, 4, 8, 8, 16, 4)), {"image_size": [32, 32]})
    settings = ModelFolder.open(tmp_path).settings
    assert settings.intensity_percentiles == DEFAULT_INTENSITY_PERCENTILES == (0.5, 99.5)
    assert (settings.flip_swap, settings.num_components, settings.predict) == ((), None, RecordedPredict())
    assert settings.network.baseline == "unet" and settings.network.crop_space is None
    chain = settings.prediction_transforms()  # a baseline works on the working grid alone
    assert [type(t).__name__ for t in chain.transforms] == ["ScaleIntensityRangePercentilesd", "ToWorkingSized"]


@pytest.mark.parametrize("extra", [{"image_size": ["a", 2]}, {"flip_swap": [[0]]}, {"predict": [1]},
                                   {"intensity_percentiles": 5}])
def test_a_setting_of_the_wrong_kind_is_one_line_naming_the_file(tmp_path, extra):
    write_model_info(tmp_path, tiny_net(), {"image_size": [32, 32], **extra})
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / MODEL_INFO_FILE))) as err:
        ModelFolder.open(tmp_path)
    assert "\n" not in str(err.value)


def test_model_dir_is_the_parameter_name(tmp_path):
    net = tiny_net()
    write_model_info(model_dir=tmp_path, network=net, settings={"image_size": [32, 32]})
    torch.save(net.state_dict(), stage_checkpoint(model_dir=tmp_path, stage="stage1"))
    assert trained_stage(model_dir=tmp_path).name == "stage1"
    assert load_trained(network_from_args(read_model_info(model_dir=tmp_path)["network"]), model_dir=tmp_path).name == "stage1"
