"""One line for glsmonai's input errors in bundle runs: installed by the bundle, not by an import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from glsmonai.engines import errors


def test_importing_changes_no_hook_and_install_is_explicit():
    code = ("import sys; import glsmonai.engines, glsmonai.engines.errors as e; "
            "assert sys.excepthook is sys.__excepthook__; e.install(); e.install(); "
            "assert sys.excepthook is e._hook and e._previous is sys.__excepthook__; "
            "raise ValueError('not from glsmonai')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ValueError: not from glsmonai" in proc.stderr  # the previous hook's


def test_the_innermost_input_error_raised_by_glsmonai_is_found_through_the_parser_wrapping():
    from glsmonai.utils import as_bool

    try:
        try:
            as_bool("maybe")
        except ValueError as err:
            raise RuntimeError("Failed to evaluate ConfigExpression") from err  # as MONAI's parser wraps it
    except RuntimeError as wrapped:
        found = errors.input_error(wrapped)
    assert isinstance(found, ValueError) and "got 'maybe'" in str(found)
    with pytest.raises(ValueError) as elsewhere:
        int("x")  # raised outside glsmonai: the full traceback stays
    assert errors.input_error(elsewhere.value) is None




def test_an_error_raised_from_none_is_found_itself_not_its_hidden_context():
    import numpy as np

    from glsmonai.transforms.loading import Keypointsd

    empty = {"label": np.zeros((1, 16, 16), np.float32), "label_path": "/data/case7_gt.nii.gz"}
    with pytest.raises(ValueError) as raised:  # "<file>: keypoint rule failed: ..." from None over the rule's error
        Keypointsd("label", num_keypoints=2, rule="iris_roots")(empty)
    found = errors.input_error(raised.value)
    assert found is raised.value and "/data/case7_gt.nii.gz" in str(found)
