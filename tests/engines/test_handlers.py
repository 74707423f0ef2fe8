"""The Ignite handlers of a stage (running loss, final validation, progress bar, start checkpoint) on dummy engines."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine
from monai.handlers import CheckpointSaver

from glsmonai.engines.handlers import (
    FinalValidation,
    ProgressHandler,
    RunningLoss,
    StageStart,
    latest_epoch_checkpoint,
    loss_value,
)
from glsmonai.networks import GLSNet


def loss_engine() -> Engine:
    """A stand-in trainer whose output for batch ``b`` is ``{"loss": b}``."""
    return Engine(lambda engine, batch: {"loss": torch.tensor(float(batch))})


def handler_count(engine: Engine) -> int:
    return sum(len(handlers) for handlers in engine._event_handlers.values())


class RecordingValidator:
    """Records the epochs it is asked to validate."""

    def __init__(self) -> None:
        self.epochs: list[int] = []

    def run(self, epoch: int) -> None:
        self.epochs.append(epoch)


def tiny_net() -> GLSNet:
    return GLSNet(crop_size=(8, 8), channels=(2, 4, 4, 8, 8))


def test_loss_value_reads_the_loss_as_a_float():
    value = loss_value({"loss": torch.tensor(2.5), "pred": None})
    assert value == 2.5
    assert type(value) is float


def test_running_loss_is_ignites_running_average_as_train_loss():
    engine = loss_engine()
    RunningLoss().attach(engine)
    engine.run([1.0, 2.0, 3.0], max_epochs=1)
    # alpha 0.98, starting at the first loss: 1 -> 0.98 * 1 + 0.02 * 2 = 1.02 -> 0.98 * 1.02 + 0.02 * 3 = 1.0596
    assert engine.state.metrics["train_loss"] == pytest.approx(1.0596)


def test_running_loss_after_one_iteration_is_that_loss():
    engine = loss_engine()
    RunningLoss().attach(engine)
    engine.run([4.0], max_epochs=1)
    assert engine.state.metrics["train_loss"] == pytest.approx(4.0)


def test_final_validation_runs_after_the_last_epoch_when_the_interval_skipped_it():
    validator = RecordingValidator()
    engine = loss_engine()
    FinalValidation(validator, interval=2).attach(engine)
    engine.run([1.0], max_epochs=3)  # ValidationHandler ran after epoch 2 only; 3 % 2 != 0
    assert validator.epochs == [3]


@pytest.mark.parametrize("interval", [1, 3, 0])  # 0 is read as 1
def test_final_validation_does_nothing_when_the_interval_reached_the_last_epoch(interval):
    validator = RecordingValidator()
    engine = loss_engine()
    FinalValidation(validator, interval=interval).attach(engine)
    engine.run([1.0], max_epochs=3)
    assert validator.epochs == []


@pytest.mark.parametrize("enabled", [False, "false", "0", "no"])
def test_disabled_progress_handler_attaches_nothing(enabled):
    engine = loss_engine()
    before = handler_count(engine)
    handler = ProgressHandler("stage1", enabled=enabled)
    handler.attach(engine)
    assert handler.enabled is False
    assert handler_count(engine) == before


@pytest.mark.parametrize("enabled", [True, "true"])
def test_enabled_progress_handler_attaches_a_progress_bar(enabled):
    engine = loss_engine()
    before = handler_count(engine)
    ProgressHandler("stage1", enabled=enabled).attach(engine)
    assert handler_count(engine) > before


def test_progress_handler_rejects_a_word_that_is_not_yes_or_no():
    with pytest.raises(ValueError, match="expected true or false"):
        ProgressHandler("stage1", enabled="sometimes")


def test_stage1_starts_from_scratch(tmp_path):
    engine = loss_engine()
    before = handler_count(engine)
    start = StageStart(tmp_path, "stage1", tiny_net())
    start.attach(engine)
    assert start.path is None
    assert handler_count(engine) == before


def test_stage2_without_the_stage1_checkpoint_says_to_train_stage1_first(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"stage1_best\.pt.*train stage1 first"):
        StageStart(tmp_path, "stage2", tiny_net()).attach(loss_engine())


def save_best_checkpoint(net: torch.nn.Module, folder, name: str) -> None:
    """Write ``name`` as the evaluator's CheckpointSaver does: ``save_dict={"network": net}``, which Ignite
    stores flat (one object: its state dict itself, not ``{"network": ...}``)."""
    engine = loss_engine()
    CheckpointSaver(str(folder), {"network": net}, save_final=True, final_filename=name).attach(engine)
    engine.run([0.0], max_epochs=1)


def test_checkpoint_saver_writes_a_single_network_flat(tmp_path):
    net = tiny_net()
    save_best_checkpoint(net, tmp_path, "stage1_best.pt")
    saved = torch.load(tmp_path / "stage1_best.pt", weights_only=True)
    assert set(saved) == set(net.state_dict())


@pytest.mark.parametrize("wrapped", [False, True], ids=["flat", "network-key"])
def test_stage2_loads_the_stage1_network_when_the_trainer_starts(tmp_path, wrapped):
    trained = tiny_net()
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(1.0)
    if wrapped:
        torch.save({"network": trained.state_dict()}, tmp_path / "stage1_best.pt")
    else:
        save_best_checkpoint(trained, tmp_path, "stage1_best.pt")

    fresh = tiny_net()
    assert not torch.equal(next(fresh.parameters()), next(trained.parameters()))  # nothing loaded yet
    engine = loss_engine()
    engine.state.device = torch.device("cpu")  # MONAI's engines carry their device; CheckpointLoader maps to it
    start = StageStart(tmp_path, "stage2", fresh)
    start.attach(engine)
    assert start.path == tmp_path / "stage1_best.pt"
    engine.run([0.0], max_epochs=1)

    expected = trained.state_dict()
    loaded = fresh.state_dict()
    assert loaded.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(loaded[key], expected[key], rtol=0, atol=0, msg=key)


def test_latest_epoch_checkpoint_orders_epochs_by_number(tmp_path):
    for epoch in (9, 10, 2):
        (tmp_path / f"stage2_checkpoint_epoch={epoch}.pt").touch()
    (tmp_path / "stage1_checkpoint_epoch=99.pt").touch()  # another stage's
    assert latest_epoch_checkpoint(tmp_path, "stage2") == tmp_path / "stage2_checkpoint_epoch=10.pt"


def test_latest_epoch_checkpoint_is_none_without_one(tmp_path):
    (tmp_path / "stage2_best.pt").touch()
    assert latest_epoch_checkpoint(tmp_path, "stage2") is None


@pytest.mark.parametrize("resume", [True, "true"])
def test_resume_prefers_the_newest_epoch_checkpoint_restored_whole(tmp_path, resume):
    for name in ("stage1_best.pt", "stage2_checkpoint_epoch=9.pt", "stage2_checkpoint_epoch=10.pt"):
        (tmp_path / name).touch()
    start = StageStart(tmp_path, "stage2", tiny_net(), resume=resume)
    assert start.checkpoint() == (tmp_path / "stage2_checkpoint_epoch=10.pt", True)


def test_resume_without_an_epoch_checkpoint_starts_from_the_previous_stage(tmp_path):
    (tmp_path / "stage1_best.pt").touch()
    start = StageStart(tmp_path, "stage2", tiny_net(), resume=True)
    assert start.checkpoint() == (tmp_path / "stage1_best.pt", False)


def test_without_resume_epoch_checkpoints_are_ignored(tmp_path):
    for name in ("stage1_best.pt", "stage2_checkpoint_epoch=3.pt"):
        (tmp_path / name).touch()
    start = StageStart(tmp_path, "stage2", tiny_net(), resume=False)
    assert start.checkpoint() == (tmp_path / "stage1_best.pt", False)
