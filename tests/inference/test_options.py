"""PredictOptions: written once, resolved once against the model folder, and compare's variants as values of it."""

from __future__ import annotations

import dataclasses

import pytest

from glsmonai.cli import _predict_options, build_parser
from glsmonai.inference import (
    ENGINES,
    EXPORTED_FILES,
    PLAIN,
    PLAIN_OPTIONS,
    VARIANT_NAMES,
    VARIANTS,
    PredictOptions,
    variant_options,
)
from glsmonai.model_folder import ModelSettings, NetworkArgs, RecordedPredict


def settings(predict: dict | None = None, num_components: int | None = 2) -> ModelSettings:
    return ModelSettings((32, 32), NetworkArgs({"crop_size": [8, 8]}), predict=RecordedPredict(**(predict or {})),
                         num_components=num_components)


def test_unset_options_take_what_the_folder_records_else_off():
    recorded = settings({"tta": True, "components": "task", "blend": 0.25, "amp": True})
    resolved = PredictOptions().resolve(recorded)
    assert (resolved.tta, resolved.components, resolved.blend, resolved.min_confidence, resolved.amp) == (
        True, 2, 0.25, 0.0, True)
    # set options win, False / 0 switch a recorded option off
    chosen = PredictOptions(tta=False, components=0, blend=0.0, amp=False, min_confidence=0.5).resolve(recorded)
    assert (chosen.tta, chosen.components, chosen.blend, chosen.min_confidence, chosen.amp) == (False, 0, 0.0, 0.5, False)
    nothing = PredictOptions().resolve(settings())
    assert (nothing.tta, nothing.components, nothing.blend, nothing.min_confidence, nothing.amp) == (
        False, 0, 0.0, 0.0, False)
    # the other options pass through as given
    other = PredictOptions(fusion=False, keypoint_band=0, stage="stage2", threshold=0.4).resolve(settings())
    assert (other.fusion, other.keypoint_band, other.stage, other.threshold) == (False, 0, "stage2", 0.4)


def test_components_task_needs_the_task_number():
    assert PredictOptions(components="task").resolve(settings(num_components=1)).components == 1
    with pytest.raises(ValueError, match="records no num_components"):
        PredictOptions(components="task").resolve(settings(num_components=None), "models")


@pytest.mark.parametrize(("changes", "message"), [
    ({"engine": "tensorrt"}, "engine must be one of"),
    ({"blend": 0.6}, r"blend must be in \[0, 0.5\]"),
    ({"components": "all"}, "a number"),
])
def test_bad_options_are_refused_when_made(changes, message):
    with pytest.raises(ValueError, match=message):
        PredictOptions(**changes)
    with pytest.raises(ValueError, match=message):  # replace makes a new value, checked the same way
        dataclasses.replace(PLAIN, **changes)
    if "blend" in changes:  # a recorded value out of range, too
        with pytest.raises(ValueError, match=message):
            PredictOptions().resolve(settings({"blend": 0.6}))


def test_options_are_frozen_values():
    assert PredictOptions(tta=True) == PredictOptions(tta=True) and PLAIN.replace(tta=True) == PredictOptions(
        tta=True, components=0, blend=0.0, min_confidence=0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        PLAIN.tta = True  # type: ignore[misc]
    assert PLAIN == PredictOptions(**PLAIN_OPTIONS)


def test_compares_variants_are_options():
    assert VARIANT_NAMES == ("stage1", "recorded", "tta", "components", "tta+components", "tta+components+blend",
                             "blend", "gate")
    expected = {
        "stage1": PLAIN.replace(stage="stage1"),
        "recorded": PredictOptions(),
        "tta": PLAIN.replace(tta=True),
        "components": PLAIN.replace(components="task"),
        "tta+components": PLAIN.replace(tta=True, components="task"),
        "tta+components+blend": PLAIN.replace(tta=True, components="task", blend=0.25),
        "blend": PLAIN.replace(blend=0.25),
        "gate": PLAIN.replace(min_confidence=0.5),
    }
    assert {name: variant_options(name) for name in VARIANT_NAMES} == expected
    # the same as the keyword arguments compare passed to run_inference: PLAIN_OPTIONS, then the variant's
    assert all(variant_options(name) == PredictOptions(**{**PLAIN_OPTIONS, **VARIANTS[name]}) for name in VARIANTS)
    with pytest.raises(ValueError, match="unknown variant 'mirror'"):
        variant_options("mirror")


def test_the_command_line_makes_one_options_value():
    assert ENGINES == ("torch", *EXPORTED_FILES)
    parser = build_parser()
    unset = parser.parse_args(["predict", "-i", "a", "-o", "b", "-m", "c"])
    assert _predict_options(unset) == PredictOptions()
    args = parser.parse_args(["predict", "-i", "a", "-o", "b", "-m", "c", "--no-tta", "--components", "task",
                              "--blend", "0.25", "--min-confidence", "0.5", "--amp", "--no-fusion", "--keypoint-band",
                              "0", "--stage", "stage2", "--engine", "onnx", "--exported", "x.onnx"])
    assert _predict_options(args) == PredictOptions(tta=False, components="task", blend=0.25, min_confidence=0.5, amp=True,
                                                    fusion=False, keypoint_band=0, stage="stage2", engine="onnx",
                                                    exported="x.onnx")
    engine = next(a for a in parser._subparsers._group_actions[0].choices["predict"]._actions if a.dest == "engine")
    assert tuple(engine.choices) == ENGINES


def test_the_inference_bundle_builds_one_options_value():
    from monai.bundle import ConfigParser

    from tests.test_bundle import BUNDLE

    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "inference.json"))
    assert parser.get_parsed_content("predict_options") == PredictOptions()
    assert "@predict_options" in parser.get("inference")[0]
    parser.update({"predict_options#tta": True, "predict_options#components": "task", "engine": "onnx"})
    assert parser.get_parsed_content("predict_options", lazy=False) == PredictOptions(tta=True, components="task",
                                                                                    engine="onnx")
