"""``--resume true`` as a user meets it: a stage killed in the middle of an epoch, then resumed with the bundle.

The interruption is a real ``kill -9`` of the training process, made deterministic: an override of
``stage1#run`` adds one handler to the trainer that sends SIGKILL to its own process after the first
iteration of epoch 3 of 3, i.e. after epoch 2's checkpoints were written and in the middle of epoch 3.
(Killing the process from the test once ``stage1_checkpoint_epoch=2.pt`` appears would race with the
tiny epoch 3, which can finish before the test sees the file; deleting files from a finished run would
not show what a killed process leaves behind.)
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch

from glsmonai.model_folder import load_trained, network_from_args, read_model_info
from tests.test_bundle import TINY, bundle, check

EPOCHS = [*TINY[: TINY.index("--epochs")], *TINY[TINY.index("--epochs") + 2 :], "--epochs", "3"]

# SIGKILL to the training process itself after the first iteration of epoch 3 (2 iterations an epoch: 6 images, batch 3)
KILL_IN_EPOCH_3 = (
    "--stage1#run#1",
    "$(@stage1#trainer.add_event_handler(glsmonai.engines.handlers.Events.ITERATION_COMPLETED("
    "once=2 * len(@train#dataloader) + 1), lambda engine: os.kill(os.getpid(), 9)), "
    "glsmonai.engines.run_stage('stage1', @stage1#trainer, @stage1#evaluator, @model_dir, @resume))",
)

# the resumed epoch wrecks the network instead of training it (all parameters 0: every logit 0, sigmoid 0.5, which the
# 0.5 threshold reads as background), so its validation Dice is 0, certainly worse than the best before the kill
WRECK_THE_NETWORK = (
    "--stage1#trainer#iteration_update",
    "$lambda engine, batch: ([p.data.zero_() for p in @network.parameters()], {'loss': torch.tensor(0.0)})[1]",
)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def log_of(proc) -> str:
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def killed(tiny_iris, tmp_path_factory):
    """The output folder of a 3-epoch stage 1 killed (SIGKILL) in the middle of epoch 3."""
    out = tmp_path_factory.mktemp("killed")
    proc = bundle("stage1", ["train.json"], "--dataset_dir", str(tiny_iris), "--output_dir", str(out), *EPOCHS,
                  *KILL_IN_EPOCH_3)
    assert proc.returncode == -9, log_of(proc)[-3000:]
    models = out / "models"
    # what the kill left: epoch 2's checkpoint and the best so far, no final checkpoint (the stage did not finish)
    assert sorted(p.name for p in models.iterdir()) == [
        "gls_model.json", "stage1_best.json", "stage1_best.pt", "stage1_checkpoint_epoch=2.pt",
    ]
    return out


def copy_of(run, tmp_path):
    return shutil.copytree(run, tmp_path / "run")


def test_a_killed_stage_resumes_with_its_next_epoch_and_keeps_its_better_best_checkpoint(killed, tiny_iris, tmp_path):
    run = copy_of(killed, tmp_path)
    models = run / "models"
    best_before = sha256(models / "stage1_best.pt")
    record = json.loads((models / "stage1_best.json").read_text())
    assert record["best_metric"] > 0.05 and record["best_metric_epoch"] in (1, 2)

    proc = bundle("stage1", ["train.json"], "--dataset_dir", str(tiny_iris), "--output_dir", str(run), *EPOCHS,
                  "--resume", "true", *WRECK_THE_NETWORK)
    check(proc)
    log = log_of(proc)
    assert f"stage1 resumes from {models / 'stage1_checkpoint_epoch=2.pt'}: epoch 2 of 3 done, continuing with epoch 3" in log
    assert "Epoch[1] Metrics" not in log and "Epoch[2] Metrics" not in log  # epochs 1 and 2 are not trained again
    assert "Epoch[3] Metrics -- val_mean_dice: 0.0000" in log  # the resumed epoch validated, worse
    best = record["best_metric"]
    assert f"stage1 finished: best validation Dice {best:.4f} (epoch {record['best_metric_epoch']})" in log

    # the worse epoch 3 did not replace the best checkpoint, which is still the network's plain state dict
    assert sha256(models / "stage1_best.pt") == best_before
    assert json.loads((models / "stage1_best.json").read_text()) == record
    state = torch.load(models / "stage1_best.pt", weights_only=True)
    network = network_from_args(read_model_info(models)["network"])
    assert set(state) == set(network.state_dict())
    # the stage finished at epoch 3, with the scheduler where an uninterrupted run leaves it
    final = torch.load(models / "stage1_final.pt", weights_only=True)
    assert final["trainer"]["iteration"] // final["trainer"]["epoch_length"] == 3
    assert final["lr_scheduler"]["last_epoch"] == 3
    assert sorted(p.name for p in models.glob("stage1_checkpoint_epoch=*.pt")) == ["stage1_checkpoint_epoch=3.pt"]

    # a second --resume finds the stage finished
    proc = bundle("stage1", ["train.json"], "--dataset_dir", str(tiny_iris), "--output_dir", str(run), *EPOCHS,
                  "--resume", "true")
    check(proc)
    assert "stage1 already finished" in log_of(proc)


def test_resumed_training_goes_on_through_the_next_stages_to_a_model_the_predictor_loads(killed, tiny_iris, tmp_path):
    run = copy_of(killed, tmp_path)
    models = run / "models"
    proc = bundle("training", ["train.json"], "--dataset_dir", str(tiny_iris), "--output_dir", str(run), *EPOCHS,
                  "--stage2_epochs", "1", "--stage3_epochs", "1", "--resume", "true")
    check(proc)
    log = log_of(proc)
    assert "epoch 2 of 3 done, continuing with epoch 3" in log and "Epoch[3] Metrics -- val_mean_dice" in log
    assert f"stage2 starts from {models / 'stage1_best.pt'} (network)" in log  # stage chaining reads the plain state dict
    for stage in ("stage1", "stage2", "stage3"):
        assert (models / f"{stage}_best.pt").is_file() and (models / f"{stage}_final.pt").is_file()
    network = network_from_args(read_model_info(models)["network"])
    assert load_trained(network, models).name == "stage3"


def test_resume_from_a_truncated_epoch_checkpoint_fails_with_one_line_naming_it(killed, tiny_iris, tmp_path):
    run = copy_of(killed, tmp_path)
    path = run / "models" / "stage1_checkpoint_epoch=2.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # as a kill in the middle of a plain write leaves it
    proc = bundle("stage1", ["train.json"], "--dataset_dir", str(tiny_iris), "--output_dir", str(run), *EPOCHS,
                  "--resume", "true")
    assert proc.returncode != 0
    lines = [line for line in log_of(proc).splitlines() if "cannot resume" in line]
    assert lines == [
        f"error: {path}: cannot resume stage1 from it: unreadable, truncated or corrupt (RuntimeError: "
        "PytorchStreamReader failed reading zip archive: failed finding central directory); move it away to start "
        "stage1 again, or run without --resume"
    ]
    assert "Traceback" not in log_of(proc)
    assert not (run / "models" / "stage1_final.pt").exists()
