"""Export of the whole GLS forward (global branch, keypoints, windows, local U-Net, fusion) to TorchScript and
ONNX, ``monai.bundle ckpt_export``, and ``predict --engine torchscript|onnx``.

Tolerances on the outputs (logits, probabilities, keypoints in pixels):

* TorchScript replays PyTorch's own kernels on the same device: the outputs are expected to be equal; 1e-5
  leaves room for a kernel chosen by input shape. Measured: 0.
* ONNX Runtime has its own kernels (other convolution algorithms and summation orders): float32 rounding,
  accumulated over some thirty layers, measured up to 1e-4 on logits (9.5e-5 on a one-epoch tiny bundle model,
  6e-5 on these untrained ones). 1e-3 moves a probability by at most 2.5e-4 and a keypoint by a thousandth of
  a pixel, while an export that froze positions, cut the wrong windows or mixed up outputs is off by pixels or
  whole logits.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import torch

from glsmonai.cli import main as cli_main
from glsmonai.data.io import read_image, split_ext
from glsmonai.data.pairs import prediction_path
from glsmonai.export import check_inputs, export_model, exportable_network, max_abs_diff, output_names
from glsmonai.inference import Predictor, run_inference
from glsmonai.inference.exported_networks import load_exported
from glsmonai.model_folder import MODEL_INFO_FILE, network_from_args, read_model_info, stage_checkpoint
from tests.helpers import random_scans, untrained_model_folder
from tests.test_bundle import BUNDLE, ROOT

TOLERANCE = {"torchscript": 1e-5, "onnx": 1e-3}

logger = logging.getLogger(__name__)


def model_folder(path, crop_space: str):
    """:func:`untrained_model_folder` with the global head's bias moved so that about half of each mask is
    foreground (the untrained global branch says "foreground" almost everywhere, which would leave a mask
    comparison without a boundary to disagree on)."""
    untrained_model_folder(path, crop_space=crop_space)
    net = exportable_network(path)
    with torch.no_grad():
        median = float(net(*check_inputs(net, seed=7))[0].median())
    state = torch.load(stage_checkpoint(path, "stage3"), weights_only=True)
    state["global_net.decoders.0.head.bias"] -= median
    for stage in ("stage1", "stage2", "stage3"):
        torch.save(state, stage_checkpoint(path, stage))
    return path


@pytest.fixture(scope="module", params=["working", "original"])
def exported(request, tmp_path_factory):
    """A model folder of the crop space and its export (both formats) into a folder of its own."""
    root = tmp_path_factory.mktemp(f"export_{request.param}")
    folder = model_folder(root / "model", request.param)
    record = export_model(folder, root / "export")
    return folder, root / "export", record


def test_export_writes_the_files_and_records_them(exported):
    folder, out, record = exported
    assert {p.name for p in out.iterdir()} == {"model.ts", "model.onnx", "export.json", MODEL_INFO_FILE}
    written = json.loads((out / "export.json").read_text())
    assert written == json.loads(json.dumps(record))
    assert written["outputs"] == list(output_names(written["crop_space"])) and written["stage"] == "stage3"
    assert written["torch"] == torch.__version__ and written["onnx"] and written["onnxruntime"]
    for fmt, entry in written["files"].items():
        assert 0 <= entry["max_abs_diff_all"] <= TOLERANCE[fmt]
        assert set(entry["max_abs_diff"]) == set(written["outputs"])
    # the export folder is a model folder for the exported engines: the same settings
    assert read_model_info(out) == read_model_info(folder)


@pytest.mark.parametrize("engine", ["torchscript", "onnx"])
def test_exported_outputs_match_pytorch_on_two_images(exported, engine):
    folder, out, _ = exported
    net = exportable_network(folder)
    model = load_exported(out / ("model.ts" if engine == "torchscript" else "model.onnx"), engine)
    # two scans, each alone (the trace saw a batch of two), of other sizes than the trace's
    first = check_inputs(net, shapes=[(45, 70)], seed=21)
    second = check_inputs(net, shapes=[(90, 41)], seed=22)
    names = output_names(net.crop_space)
    worst = 0.0
    keypoints = []
    for inputs in (first, second):
        with torch.no_grad():
            want = net(*inputs)
        got = model.run(inputs)
        diffs = max_abs_diff(want, got, names)
        worst = max(worst, *diffs.values())
        assert max(diffs.values()) <= TOLERANCE[engine], diffs
        keypoints.append(got["keypoints"])
    # the keypoints (and so the windows) follow the image: they were not frozen into the file
    assert (keypoints[0] - keypoints[1]).abs().max() > 1.0
    logger.info("%s (%s): largest difference from PyTorch %.3g", engine, net.crop_space, worst)
    if engine == "onnx" and net.crop_space == "working":
        # ONNX takes other working sizes that the global network needs no padding for (multiples of 4 here)
        image = torch.rand(1, 1, 48, 64, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            want = net(image)
        assert max(max_abs_diff(want, model.run([image]), names).values()) <= TOLERANCE[engine]


def test_predict_with_exported_engines_writes_the_same_masks(exported, tmp_path):
    folder, out, _ = exported
    scans = tmp_path / "scans"
    paths = random_scans(scans, [(40, 50), (64, 48), (30, 90)], seed=4)
    options = {"device": "cpu", "tta": True, "components": 0, "num_workers": 0, "overlays": False}
    written = {}
    for engine in ("torch", "torchscript", "onnx"):
        model = folder if engine == "torch" else out  # the export folder holds the settings and the files
        assert run_inference(scans, tmp_path / engine, model, engine=engine, **options) == []
        written[engine] = {p.name: read_image(prediction_path(tmp_path / engine, *split_ext(p)))[0] for p in paths}
        written[engine + " csv"] = np.loadtxt(tmp_path / engine / "keypoints.csv", delimiter=",", skiprows=1,
                                              usecols=(1, 2, 3, 4, 5))
    predictor = Predictor(folder, "cpu", tta=True, components=0)
    for path in paths:
        mask = written["torch"][path.name]
        assert 0.1 < mask.mean() < 0.9  # a mask with a boundary to disagree on
        assert np.array_equal(written["torchscript"][path.name], mask)
        # ONNX: equal, but where PyTorch's probability lies within the output tolerance of the threshold
        near = np.abs(predictor.predict(path).probability - 0.5) < TOLERANCE["onnx"]
        assert np.array_equal(written["onnx"][path.name][~near], mask[~near])
    assert np.array_equal(written["torchscript csv"], written["torch csv"])
    assert np.allclose(written["onnx csv"], written["torch csv"], rtol=0, atol=2e-3)  # rows rounded to 1e-3


def test_export_command_line(tmp_path):
    folder = untrained_model_folder(tmp_path / "model")
    assert cli_main(["export", "-m", str(folder), "-o", str(tmp_path / "out"), "--format", "torchscript"]) == 0
    record = json.loads((tmp_path / "out" / "export.json").read_text())
    assert set(record["files"]) == {"torchscript"} and record["files"]["torchscript"]["max_abs_diff_all"] <= 1e-5
    assert not (tmp_path / "out" / "model.onnx").exists()
    assert cli_main(["export", "-m", str(tmp_path / "nothing"), "-o", str(tmp_path / "out2")]) == 2


def test_monai_ckpt_export_builds_the_network_from_the_model_folder(tmp_path):
    """``python -m monai.bundle ckpt_export network_def`` with the bundle's inference.json: the architecture
    from ``--model_dir``, the weights from ``--ckpt_file`` (here other weights than the folder's)."""
    folder = untrained_model_folder(tmp_path / "model", crop_space="original")
    other = network_from_args(read_model_info(folder)["network"])  # a fresh initialisation, unlike the folder's
    torch.save(other.state_dict(), tmp_path / "other.pt")
    out = tmp_path / "models"
    out.mkdir()  # ckpt_export writes into an existing folder
    cmd = [sys.executable, "-m", "monai.bundle", "ckpt_export", "network_def", "--filepath", str(out / "model.ts"),
           "--ckpt_file", str(tmp_path / "other.pt"), "--config_file", str(BUNDLE / "inference.json"),
           "--model_dir", str(folder)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = load_exported(out / "model.ts", "torchscript")
    assert model.crop_space == "original" and model.stage.name == "stage3"
    net = exportable_network(folder, load=False)
    net.load_state_dict(torch.load(tmp_path / "other.pt", weights_only=True))
    inputs = check_inputs(net, seed=30)
    with torch.no_grad():
        want = net.eval()(*inputs)
    assert max(max_abs_diff(want, model.run(inputs), output_names("original")).values()) <= TOLERANCE["torchscript"]


def test_bad_exported_files_are_one_clear_line(tmp_path, caplog):
    folder = untrained_model_folder(tmp_path / "model")
    scans = tmp_path / "scans"
    random_scans(scans, [(40, 50)])

    def predict(*extra: str) -> str:
        caplog.clear()
        assert cli_main(["predict", "-i", str(scans), "-o", str(tmp_path / "out"), "-m", str(folder), "--num-workers",
                         "0", *extra]) == 2
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "\n" not in errors[0] and "Traceback" not in caplog.text
        return errors[0]

    assert "model.onnx: no exported model" in predict("--engine", "onnx")
    (folder / "model.onnx").write_bytes(b"not a model")
    assert f"{folder / 'model.onnx'}: not a readable ONNX model" in predict("--engine", "onnx")
    (folder / "model.ts").write_bytes(b"\x00" * 100)
    assert f"{folder / 'model.ts'}: not a readable TorchScript model" in predict("--engine", "torchscript")
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(tmp_path / "other.ts"))
    assert "without glsmonai's export information" in predict("--engine", "torchscript", "--exported",
                                                              str(tmp_path / "other.ts"))
    export_model(folder, folder, ["torchscript"])
    assert "exported with keypoint band 2" in predict("--engine", "torchscript", "--keypoint-band", "5")
