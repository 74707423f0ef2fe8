"""A misspelt override stops the bundle run with a suggestion, instead of being silently ignored."""

from __future__ import annotations

import pytest

from glsmonai.engines import check_ckpt_dir, check_overrides
from tests.test_bundle import BUNDLE

TRAIN, CPU = str(BUNDLE / "train.json"), str(BUNDLE / "cpu.json")


def test_known_keys_paths_and_new_arguments_pass():
    check_overrides(["run", "training", "--config_file", f"['{TRAIN}','{CPU}']", "--epochs", "1", "--progress", "false",
                     "--stage2#trainer#max_epochs", "2", "--stage1#run#1", "$x", "--network_def#return_key", "fused",
                     "--resume", "--image_size=[64,64]", "--meta_file", "m.json"])


def test_a_misspelt_key_is_named_with_the_closest_known_one():
    with pytest.raises(ValueError, match=r"--epoch matches no key of the bundle's configs; did you mean --epochs\?"):
        check_overrides(["run", "training", "--config_file", TRAIN, "--epoch", "1"])
    with pytest.raises(ValueError, match=r"--stage1#trainr#max_epochs matches no key"):
        check_overrides(["run", "training", "--config_file", TRAIN, "--stage1#trainr#max_epochs", "1"])


def test_keys_of_an_overlay_count_and_a_python_driven_bundle_is_not_checked():
    check_overrides(["run", "evaluating", "--config_file", f"['{TRAIN}','{BUNDLE / 'evaluate.json'}']",
                     "--eval_split", "validation"])
    check_overrides(["something", "--anything", "1"])  # not a ``monai.bundle run`` command line


def test_ckpt_dir_set_alone_is_refused_as_the_alias_of_model_dir():
    check_ckpt_dir("runs/a/models", "runs/a/models/")  # the alias unset: the same folder
    with pytest.raises(ValueError, match=r"ckpt_dir runs/b is not model_dir runs/a/models: .*\(--model_dir runs/b\)"):
        check_ckpt_dir("runs/a/models", "runs/b")
