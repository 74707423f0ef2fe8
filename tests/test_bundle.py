"""One-epoch smoke runs of every bundle config and of the command line, on tiny phantoms."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from glsmonai.cli import main as cli_main
from glsmonai.networks import FusionNet

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "gls" / "configs"  # the folder with train.json
TINY = [
    "--image_size", "[64,64]", "--crop_size", "[24,24]", "--channels", "[4,8,8,16,16]", "--sigma", "2.0",
    "--epochs", "1", "--num_workers", "0", "--progress", "false", "--batch_size", "3",
]


def bundle(run_id: str, configs: list[str], *args: str) -> subprocess.CompletedProcess:
    files = [str(BUNDLE / c) for c in configs]
    config_file = files[0] if len(files) == 1 else repr(files)
    cmd = [sys.executable, "-m", "monai.bundle", "run", run_id, "--config_file", config_file, *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def check(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def typed(*args: str) -> subprocess.CompletedProcess:
    """``python -m monai.bundle ARGS`` run from the repository root, paths as a user types them."""
    return subprocess.run([sys.executable, "-m", "monai.bundle", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def trained(tiny_iris, tmp_path_factory):
    # the command as first promised, with the config path from before the model-zoo layout (a link to configs/)
    out = tmp_path_factory.mktemp("run")
    proc = typed("run", "training", "--config_file", "bundles/gls/train.json", "--dataset_dir", str(tiny_iris),
                 "--output_dir", str(out), *TINY)
    check(proc)
    (out / "train.log").write_text(proc.stdout + proc.stderr)
    return out


def test_training_writes_every_stage(trained):
    models = trained / "models"
    for stage in ("stage1", "stage2", "stage3"):
        assert (models / f"{stage}_best.pt").is_file() and (models / f"{stage}_final.pt").is_file()
    info = json.loads((models / "gls_model.json").read_text())
    assert info["image_size"] == [64, 64] and info["network"]["crop_size"] == [24, 24]
    assert info["network"]["channels"] == [4, 8, 8, 16, 16] and info["network"]["num_keypoints"] == 2
    assert any((trained / "tensorboard" / "stage1").iterdir())
    # each stage's minutes, which a run taking the stage from this folder adds to its own
    seconds = json.loads((models / "stage_seconds.json").read_text())
    assert sorted(seconds) == ["stage1", "stage2", "stage3"]
    assert all(e["seconds"] > 0 and e["epochs"] == 1 and "resumed" not in e for e in seconds.values())
    log = (trained / "train.log").read_text()
    # bundles/gls/train.json finds logging.conf and metadata.json beside it, as configs/train.json does
    assert "based on config: bundles/gls/logging.conf" in log and "Cannot find the metadata" not in log


def test_validation_overlays_go_to_tensorboard(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for stage, tags in (("stage1", {"input_0_HW_0", "input_1_HW_0", "output_HW_0"}), ("stage2", {"output_HW_0"}),
                        ("stage3", {"output_HW_0"})):
        events = EventAccumulator(str(trained / "tensorboard" / stage), size_guidance={"images": 0}).Reload()
        assert tags <= set(events.Tags()["images"]), stage
        target_and_prediction = events.Images("output_HW_0")[-1]
        assert target_and_prediction.width == 2 * target_and_prediction.height, stage  # target | prediction


def test_resume_skips_finished_stages_through_the_run_alias(trained, tiny_iris):
    # "run" is the model-zoo name of the "training" run id
    proc = bundle("run", ["train.json"], "--dataset_dir", str(tiny_iris), "--output_dir", str(trained), "--resume", "true", *TINY)
    check(proc)
    assert proc.stdout.count("already finished") == 3


def test_single_stage_run_ids_and_thesis_overlay(tiny_iris, tmp_path, trained):
    # stage 2 alone starts from stage 1's best checkpoint; without it, a clear error
    proc = bundle("stage2", ["train.json"], "--dataset_dir", str(tiny_iris), "--output_dir", str(tmp_path), *TINY)
    assert proc.returncode != 0 and "stage1_best.pt, which does not exist" in proc.stdout + proc.stderr
    proc = bundle("stage1", ["train.json", "thesis.json"], "--dataset_dir", str(tiny_iris), "--output_dir", str(tmp_path), *TINY)
    check(proc)
    assert (tmp_path / "models" / "stage1_best.pt").is_file() and not (tmp_path / "models" / "stage2_best.pt").exists()
    assert "lr 5e-05" in proc.stdout + proc.stderr


def test_amp_trains_in_bfloat16_on_a_cpu(tiny_iris, tmp_path):
    # MONAI's engines autocast on CUDA only; the bundle's inferer does it on a CPU with bf16 instructions
    from glsmonai.precision import cpu_bf16_supported

    proc = bundle("stage1", ["train.json"], "--dataset_dir", str(tiny_iris), "--output_dir", str(tmp_path), "--amp", "true",
                  *TINY)
    check(proc)
    said = "runs in bfloat16" if cpu_bf16_supported() else "no bfloat16 instructions"
    assert said in proc.stdout + proc.stderr
    assert (tmp_path / "models" / "stage1_best.pt").is_file()


def test_training_refuses_a_bad_datalist_in_one_message_without_a_traceback(tiny_iris, tmp_path):
    content = json.loads((tiny_iris / "datalist.json").read_text())
    content["training"][0]["image"] = "images/missing.nii.gz"
    content["validation"][0]["keypoints"] = [[5.0, 5.0], [-40.0, 3.0]]
    (tmp_path / "bad.json").write_text(json.dumps(content))
    proc = bundle("training", ["train.json"], "--dataset_dir", str(tiny_iris), "--datalist", str(tmp_path / "bad.json"),
                  "--output_dir", str(tmp_path / "out"), *TINY)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"error: {tmp_path / 'bad.json'}: training[0] image file not found" in proc.stderr
    assert not (tmp_path / "out" / "models" / "stage1_best.pt").exists()


def test_evaluate_overlay_scores_like_the_evaluate_command(trained, tiny_iris, tmp_path):
    proc = bundle("evaluating", ["train.json", "evaluate.json"], "--dataset_dir", str(tiny_iris), "--output_dir", str(trained),
                  *TINY)
    check(proc)
    bundle_table = pd.read_csv(trained / "eval" / "metrics.csv")
    datalist = str(tiny_iris / "datalist.json")
    assert cli_main(["predict", "-i", datalist, "--split", "testing", "-o", str(tmp_path / "p"), "-m", str(trained / "models"),
                     "--no-overlays"]) == 0
    assert cli_main(["evaluate", "--pred", str(tmp_path / "p"), "--labels", datalist, "--split", "testing",
                     "--csv", str(tmp_path / "r.csv")]) == 0
    cli_table = pd.read_csv(tmp_path / "r.csv")
    assert len(bundle_table) == 2 and bundle_table["image"].str.endswith(".nii.gz").all()
    pd.testing.assert_frame_equal(bundle_table, cli_table)


def test_one_stage_is_changed_from_the_command_line(tiny_iris, tmp_path):
    # the engines are config objects: stage 2 trains 2 epochs, the others 1, without touching Python; stage 3
    # keeps the global branch frozen (keep_frozen) and trains the local branch and the fusion only
    proc = bundle("training", ["train.json"], "--dataset_dir", str(tiny_iris), "--output_dir", str(tmp_path), *TINY,
                  "--stage2#trainer#max_epochs", "2", "--stage3#train_handlers#1#print_lr", "True",
                  "--keep_frozen", "{'stage3': ['global_net']}")
    check(proc)
    log = proc.stdout + proc.stderr
    assert "stage1: 1 epoch(s)" in log and "stage2: 2 epoch(s)" in log and "stage3: 1 epoch(s)" in log
    trained = {int(s): int(n) for s, n in re.findall(r"stage(\d): \d+ epoch\(s\), lr \S+, (\d+) trainable", log)}
    assert trained[3] - trained[2] == sum(p.numel() for p in FusionNet(2, 3, 16).parameters())
    models = tmp_path / "models"
    assert (models / "stage2_checkpoint_epoch=2.pt").is_file() and (models / "stage1_checkpoint_epoch=1.pt").is_file()
    assert "Current learning rate" in log  # stage 3's LrScheduleHandler now logs its rate


def _networks(run: Path, stage: str = "stage1") -> dict:
    import torch

    return torch.load(run / "models" / f"{stage}_best.pt", map_location="cpu", weights_only=True)  # a bare state dict


def test_stage1_taken_from_a_run_of_the_same_seed_is_the_one_training_would_write(trained, tiny_iris, tmp_path):
    # stage_from: stages 2 and 3 train on another run's stage 1 instead of training their own
    taken = f"{{'stage1': '{trained / 'models'}'}}"
    proc = bundle("training", ["train.json"], "--dataset_dir", str(tiny_iris), "--output_dir", str(tmp_path), *TINY,
                  "--stage_from", taken)
    check(proc)
    log = proc.stdout + proc.stderr
    assert "stage1 taken from" in log and "stage1: 1 epoch(s)" not in log
    assert "stage2: 1 epoch(s)" in log and "stage3: 1 epoch(s)" in log
    mine, theirs = _networks(tmp_path), _networks(trained)
    assert mine.keys() == theirs.keys() and all(mine[k].equal(theirs[k]) for k in mine)
    info = json.loads((tmp_path / "models" / "gls_model.json").read_text())
    assert info["stage_from"] == {"stage1": str(trained / "models")}
    # the taken stage's minutes are those it cost there; the stages trained here are this run's own
    theirs = json.loads((trained / "models" / "stage_seconds.json").read_text())
    mine = json.loads((tmp_path / "models" / "stage_seconds.json").read_text())
    assert mine["stage1"] == {**theirs["stage1"], "taken_from": str(trained / "models")}
    assert "taken_from" not in mine["stage2"] and mine["stage2"]["seconds"] > 0


def test_a_taken_stage1_keeps_this_runs_own_fusion(trained, tiny_iris, tmp_path):
    # the parts stage 1 does not train are this run's: here a fusion that starts from the branches' mean
    proc = bundle("stage2", ["train.json"], "--dataset_dir", str(tiny_iris), "--output_dir", str(tmp_path), *TINY,
                  "--fusion_init", "mean", "--stage_from", f"{{'stage1': '{trained / 'models'}'}}")
    check(proc)
    mine, theirs = _networks(tmp_path), _networks(trained)
    assert all(mine[k].equal(theirs[k]) for k in mine if k.startswith("global_net."))
    assert not all(mine[k].equal(theirs[k]) for k in mine if k.startswith("fusion."))
    assert (tmp_path / "models" / "stage2_best.pt").is_file()


def test_a_stage_from_a_folder_that_prepares_scans_otherwise_is_refused_in_one_line(trained, tiny_iris, tmp_path):
    proc = bundle("stage2", ["train.json"], "--dataset_dir", str(tiny_iris), "--output_dir", str(tmp_path),
                  *TINY, "--image_size", "[48,48]", "--stage_from", f"{{'stage1': '{trained / 'models'}'}}")
    assert proc.returncode != 0
    message = proc.stderr.strip().splitlines()[-1]
    assert "gls_model.json: stage1 cannot be taken from it: image_size [64, 64] there, [48, 48] here" in message
    assert "Traceback" not in proc.stderr


STAGE_HEAD = ("name", "epochs", "lr", "overlay_batch")  # what a stage block says about its stage


def test_the_three_stages_are_one_block_with_its_own_head():
    # the engines refer to their own stage with relative ids (@##optimizer), so the blocks are the same text
    # except their head; a % macro copy cannot replace them (MONAI 1.6 copies relative ids unresolved, and
    # --stageN#trainer#... overrides are set before macros are expanded)
    config = json.loads((BUNDLE / "train.json").read_text())
    blocks = [config[f"stage{n}"] for n in (1, 2, 3)]
    bodies = [{k: v for k, v in b.items() if k not in STAGE_HEAD} for b in blocks]
    assert bodies[0] == bodies[1] == bodies[2]
    assert [b["name"] for b in blocks] == ["stage1", "stage2", "stage3"]
    assert [b["epochs"] for b in blocks] == ["@stage1_epochs", "@stage2_epochs", "@stage3_epochs"]
    # stage 2's local crops are not the scan's size: its TensorBoard overlay shows target | prediction alone
    assert blocks[0]["overlay_batch"] == blocks[2]["overlay_batch"] != blocks[1]["overlay_batch"]
    assert not re.search(r"@stage\d#|'stage\d'", json.dumps(bodies[0]))


def test_a_stage_override_reaches_that_stage_only():
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "train.json"), str(BUNDLE / "multi_gpu_train.json")])
    parser.update({"stage2#trainer#max_epochs": 2, "stage3#train_handlers#1#print_lr": True})
    parser.resolve_macro_and_relative_ids()
    for n in (1, 2, 3):
        stage = parser[f"stage{n}"]
        assert stage["trainer"]["optimizer"] == f"@stage{n}::optimizer"
        assert stage["train_handlers"][0]["stage"] == f"@stage{n}::name"
        assert stage["train_handlers"][5]["save_dict"]["lr_scheduler"] == f"@stage{n}::lr_scheduler"
        assert stage["run"][1].startswith(f"$glsmonai.engines.run_stage(@stage{n}::name, @stage{n}::trainer")
        assert stage["trainer"]["max_epochs"] == (2 if n == 2 else f"@stage{n}::epochs")
        assert stage["train_handlers"][1]["print_lr"] is (n == 3)
        assert stage["trainer"]["train_handlers"] == f"$glsmonai.engines.on_this_rank(@stage{n}::train_handlers)"


def test_inference_bundle_matches_predict_cli(trained, tiny_iris, tmp_path):
    proc = bundle("inference", ["inference.json"], "--input_dir", str(tiny_iris / "images"),
                  "--output_dir", str(tmp_path / "bundle"), "--model_dir", str(trained / "models"))
    check(proc)
    # ckpt_dir is model_dir's alias: set alone it would be ignored, so the run stops before predicting
    proc = bundle("inference", ["inference.json"], "--input_dir", str(tiny_iris / "images"),
                  "--output_dir", str(tmp_path / "alias"), "--ckpt_dir", str(trained / "models"))
    assert proc.returncode != 0 and "ckpt_dir is an alias of model_dir" in proc.stderr
    assert not (tmp_path / "alias").exists()
    rc = cli_main(["predict", "-i", str(tiny_iris / "images"), "-o", str(tmp_path / "cli"), "-m", str(trained / "models"),
                   "--labels", str(tiny_iris / "labels"), "--device", "cpu"])
    assert rc == 0
    names = sorted(p.name for p in (tmp_path / "cli").glob("*_seg.nii.gz"))
    assert len(names) == 10 and names == sorted(p.name for p in (tmp_path / "bundle").glob("*_seg.nii.gz"))
    for name in names:
        a = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "cli" / name)))
        b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "bundle" / name)))
        assert np.array_equal(a, b)
    kp = pd.read_csv(tmp_path / "cli" / "keypoints.csv")
    assert list(kp.columns) == ["image", "k", "row", "col", "score", "confidence", "flag", "source"] and len(kp) == 20
    assert (kp["flag"] == "ok").all()  # no --min-confidence: every window used
    assert kp["confidence"].between(0, 1).all()
    assert len(list((tmp_path / "cli" / "overlays").glob("*.png"))) == 10


def test_predict_keeps_geometry_goes_past_bad_files_and_exits_1(trained, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    img = sitk.GetImageFromArray((np.random.rand(50, 70) * 255).astype(np.uint8))
    img.SetSpacing((0.3, 0.7))
    img.SetOrigin((5.0, 6.0))
    sitk.WriteImage(img, str(src / "good.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray((np.random.rand(40, 30) * 255).astype(np.uint8)), str(src / "other.png"))
    (src / "broken.nii.gz").write_bytes(b"garbage")
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((3, 8, 8), np.uint8)), str(src / "volume.nii.gz"))
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    rc = cli_main(["predict", "-i", str(src), "-o", str(tmp_path / "out"), "-m", str(trained / "models")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "broken.nii.gz" in err and "volume.nii.gz" in err and "2 file(s) failed" in err
    seg = sitk.ReadImage(str(tmp_path / "out" / "good_seg.nii.gz"))
    assert seg.GetSize() == (70, 50)
    assert seg.GetSpacing() == pytest.approx((0.3, 0.7)) and seg.GetOrigin() == pytest.approx((5.0, 6.0))
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "other_seg.png"))).shape == (40, 30)
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before, "inputs changed"
    assert cli_main(["predict", "-i", str(src), "-o", str(src), "-m", str(trained / "models")]) == 2


def test_evaluate_cli(trained, tiny_iris, tmp_path, capsys):
    predicted = tmp_path / "p"
    assert cli_main(["predict", "-i", str(tiny_iris / "images"), "-o", str(predicted), "-m", str(trained / "models"),
                     "--no-overlays"]) == 0
    assert cli_main(["evaluate", "--pred", str(predicted), "--labels", str(tiny_iris / "labels"), "--csv",
                     str(tmp_path / "r.csv")]) == 0
    table = pd.read_csv(tmp_path / "r.csv")
    assert list(table.columns) == ["image", "dice", "iou", "hd95"] and len(table) == 10
    assert table["dice"].between(0, 1).all()
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("mean Dice ")


@pytest.mark.parametrize("ext", [".nii.gz", ".mha", ".mhd", ".nrrd", ".dcm", ".png", ".jpg"])
def test_predict_round_trip_of_geometry(trained, tmp_path, ext):
    src = tmp_path / "in"
    src.mkdir()
    img = sitk.GetImageFromArray((np.random.rand(45, 83) * 255).astype(np.uint8))
    if ext not in (".png", ".jpg"):
        img.SetSpacing((0.4, 0.9))
        img.SetOrigin((-3.0, 12.5))
        if ext != ".dcm":
            img.SetDirection((0.0, -1.0, 1.0, 0.0))
    sitk.WriteImage(img, str(src / f"scan{ext}"))
    assert cli_main(["predict", "-i", str(src), "-o", str(tmp_path / "out"), "-m", str(trained / "models"), "--no-overlays"]) == 0
    out_ext = ".png" if ext == ".jpg" else ext
    seg = sitk.ReadImage(str(tmp_path / "out" / f"scan_seg{out_ext}"))
    ref = sitk.ReadImage(str(src / f"scan{ext}"))
    assert seg.GetSize() == ref.GetSize()
    assert seg.GetSpacing() == pytest.approx(ref.GetSpacing())
    assert seg.GetOrigin() == pytest.approx(ref.GetOrigin())
    assert seg.GetDirection() == pytest.approx(ref.GetDirection())
    kp = pd.read_csv(tmp_path / "out" / "keypoints.csv")
    assert kp["row"].between(-0.5, 44.5).all() and kp["col"].between(-0.5, 82.5).all()


def test_echo_phantoms_train_with_three_keypoints_from_the_task_block(tmp_path):
    from glsmonai.data.synth import write_phantom_dataset

    write_phantom_dataset("echo", tmp_path / "echo", n=6, seed=0, size=(64, 64), val_fraction=0.34, test_fraction=0.0)
    proc = bundle("stage1", ["train.json"], "--dataset_dir", str(tmp_path / "echo"), "--output_dir", str(tmp_path / "run"), *TINY)
    check(proc)
    info = json.loads((tmp_path / "run" / "models" / "gls_model.json").read_text())
    assert info["network"]["num_keypoints"] == 3 and info["label_value"] == 1
    assert info["keypoint_names"][0] == "LV apex"


def test_predict_and_evaluate_a_datalist_split(trained, tiny_iris, tmp_path):
    datalist = str(tiny_iris / "datalist.json")
    assert cli_main(["predict", "-i", datalist, "--split", "testing", "-o", str(tmp_path / "p"), "-m",
                     str(trained / "models")]) == 0
    assert len(list((tmp_path / "p").glob("*_seg.nii.gz"))) == 2 and len(list((tmp_path / "p" / "overlays").glob("*.png"))) == 2
    assert cli_main(["evaluate", "--pred", str(tmp_path / "p"), "--labels", datalist, "--split", "testing", "--csv",
                     str(tmp_path / "r.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "r.csv")) == 2


@pytest.mark.parametrize(
    "overlay, extra",
    [
        ("unet", ["--network_def#features", "[4,8,8,16,16,4]"]),
        ("cenet", ["--network_def#channels", "[4,8,8,16]", "--network_def#blocks", "[1,1,1,1]"]),
        ("gs", []),
    ],
)
def test_baseline_overlays_train_and_predict(tiny_iris, tmp_path, overlay, extra):
    configs = ["train.json", f"baselines/{overlay}.json"]
    proc = bundle("training", configs, "--dataset_dir", str(tiny_iris), "--output_dir", str(tmp_path / "run"), *TINY, *extra)
    check(proc)
    models = tmp_path / "run" / "models"
    assert (models / "stage1_best.pt").is_file() and not (models / "stage2_best.pt").exists()
    info = json.loads((models / "gls_model.json").read_text())
    assert info["network"].get("baseline") == (None if overlay == "gs" else overlay)
    out = tmp_path / "pred"
    assert cli_main(["predict", "-i", str(tiny_iris / "images"), "-o", str(out), "-m", str(models), "--no-overlays"]) == 0
    assert len(list(out.glob("*_seg.nii.gz"))) == 10
    assert len(pd.read_csv(out / "keypoints.csv")) == (20 if overlay == "gs" else 0)


def test_compare_end_to_end(tiny_iris, tmp_path):
    rc = cli_main(["compare", "--datalist", str(tiny_iris / "datalist.json"), "--dataset_dir", str(tiny_iris),
                   "--models", "unet", "gls", "--epochs", "1", "--out", str(tmp_path),
                   "--set", "image_size=[64,64]", "crop_size=[24,24]", "num_workers=0", "batch_size=3", "sigma=2.0",
                   "--folds", "0"])
    assert rc == 0
    table = pd.read_csv(tmp_path / "table.csv").set_index("model")
    assert list(table.index) == ["unet", "gls"]
    assert table["dice"].between(0, 1).all() and table["params_M"].gt(0).all() and table["gflops"].gt(0).all()
    assert np.isnan(table.loc["unet", "kp_err_mean"]) and table.loc["gls", "kp_err_mean"] >= 0
    assert "| model |" in (tmp_path / "table.md").read_text()
    assert len(list((tmp_path / "panels").glob("*.png"))) == 2
    # a second call with the same overrides reuses the trained models (an interrupted comparison resumes)
    logs = {m: (tmp_path / m / "train.log").stat().st_mtime_ns for m in ("unet", "gls")}
    rc = cli_main(["compare", "--datalist", str(tiny_iris / "datalist.json"), "--dataset_dir", str(tiny_iris),
                   "--models", "unet", "gls", "--epochs", "1", "--out", str(tmp_path),
                   "--set", "image_size=[64,64]", "crop_size=[24,24]", "num_workers=0", "batch_size=3", "sigma=2.0",
                   "--folds", "0"])
    assert rc == 0
    assert {m: (tmp_path / m / "train.log").stat().st_mtime_ns for m in ("unet", "gls")} == logs
    again = pd.read_csv(tmp_path / "table.csv").set_index("model")
    assert again.loc["unet", "train_min"] == table.loc["unet", "train_min"]


def test_the_model_folder_records_how_to_predict(trained, tmp_path):
    from monai.bundle import ConfigParser

    from glsmonai.inference import Predictor

    # the CPU preset records the measured winners (mirror TTA, components) in the model folder
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "train.json"), str(BUNDLE / "cpu.json")])
    parser.update({"dataset_dir": str(trained)})  # any folder: the task block is read from a missing datalist
    assert parser.get("predict") == {"tta": True, "components": "task"}
    assert parser.get("model_info#predict") == "@predict"
    # a folder records options: the predictor takes them unless the caller sets them, 0 / False switch off
    folder = tmp_path / "models"
    shutil.copytree(trained / "models", folder)
    info = json.loads((folder / "gls_model.json").read_text())
    assert info["predict"] == {}  # train.json alone records nothing: every option off
    info["predict"] = {"blend": 0.25, "tta": True}
    (folder / "gls_model.json").write_text(json.dumps(info))
    recorded = Predictor(folder, "cpu")
    assert (recorded.blend, recorded.tta, recorded.min_confidence, recorded.postprocess) == (0.25, True, 0.0, None)
    chosen = Predictor(folder, "cpu", blend=0.0, tta=False, components=1)
    assert (chosen.blend, chosen.tta) == (0.0, False) and chosen.postprocess is not None
    plain = Predictor(trained / "models", "cpu")
    assert (plain.blend, plain.tta, plain.postprocess) == (0.0, False, None)
