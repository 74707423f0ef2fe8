"""The Ignite handlers of a stage (running loss, final validation, progress bar, start checkpoint, resumable
checkpoint saver) on dummy engines."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
import torch
from ignite.engine import Engine, Events
from monai.handlers import CheckpointSaver

from glsmonai.engines.handlers import (
    FinalValidation,
    ProgressHandler,
    ResumableCheckpointSaver,
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
    assert handler_count(engine) == before + 1  # no loader: only the clean-up of an earlier run's files
    assert engine.has_event_handler(start.clear_earlier_run, Events.STARTED)


def test_stage2_without_the_stage1_checkpoint_says_to_train_stage1_first(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"stage1_best\.pt.*train stage1 first"):
        StageStart(tmp_path, "stage2", tiny_net()).attach(loss_engine())


def test_stage2_from_a_truncated_stage1_checkpoint_fails_with_one_line_naming_it(tmp_path):
    path = tmp_path / "stage1_best.pt"
    torch.save(tiny_net().state_dict(), path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ValueError) as err:
        StageStart(tmp_path, "stage2", tiny_net()).attach(loss_engine())
    assert str(err.value).startswith(f"{path}: stage2 cannot start from it: unreadable, truncated or corrupt (RuntimeError: ")
    assert "\n" not in str(err.value)


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


def write_epoch_checkpoint(path, epoch: int, trainer: bool = True) -> None:
    """A small stand-in for an epoch checkpoint: a network entry and, unless told not to, the trainer's state."""
    state = {"network": {"w": torch.zeros(1)}}
    if trainer:
        state["trainer"] = {"epoch_length": 2, "iteration": 2 * epoch, "max_epochs": 10}
    torch.save(state, path)


@pytest.mark.parametrize("resume", [True, "true"])
def test_resume_prefers_the_newest_epoch_checkpoint_restored_whole(tmp_path, resume):
    (tmp_path / "stage1_best.pt").touch()
    for epoch in (9, 10):
        write_epoch_checkpoint(tmp_path / f"stage2_checkpoint_epoch={epoch}.pt", epoch)
    start = StageStart(tmp_path, "stage2", tiny_net(), resume=resume)
    assert start.checkpoint() == (tmp_path / "stage2_checkpoint_epoch=10.pt", True)
    assert start.epoch == 10


def test_resume_without_an_epoch_checkpoint_starts_from_the_previous_stage(tmp_path):
    torch.save(tiny_net().state_dict(), tmp_path / "stage1_best.pt")
    start = StageStart(tmp_path, "stage2", tiny_net(), resume=True)
    assert start.checkpoint() == (tmp_path / "stage1_best.pt", False)


def test_without_resume_epoch_checkpoints_are_ignored(tmp_path):
    torch.save(tiny_net().state_dict(), tmp_path / "stage1_best.pt")
    (tmp_path / "stage2_checkpoint_epoch=3.pt").touch()
    start = StageStart(tmp_path, "stage2", tiny_net(), resume=False)
    assert start.checkpoint() == (tmp_path / "stage1_best.pt", False)


# --- resuming an interrupted stage: ResumableCheckpointSaver + StageStart on dummy engines ---


def stage_objects() -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    return net, opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)


def stage_trainer(folder, net, opt, sched, resume=False) -> tuple[Engine, list[int]]:
    """A stand-in stage trainer wired as train.json wires one: StageStart, a scheduler stepped every epoch, the
    epoch CheckpointSaver with ``save_engine_as="trainer"``. Every iteration adds 1 to the weights."""

    def step(engine, batch):
        opt.step()  # no gradients: changes nothing, but keeps the optimizer-before-scheduler order torch expects
        with torch.no_grad():
            net.weight.add_(1.0)
        return {"loss": torch.tensor(float(batch))}

    engine = Engine(step)
    epochs: list[int] = []
    StageStart(folder, "stage1", net, opt, sched, resume=resume).attach(engine)
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: (sched.step(), epochs.append(e.state.epoch)))
    ResumableCheckpointSaver(
        str(folder), {"network": net, "optimizer": opt, "lr_scheduler": sched}, save_engine_as="trainer",
        resume=resume, file_prefix="stage1", save_interval=1, n_saved=1, save_final=True, final_filename="stage1_final.pt",
    ).attach(engine)
    return engine, epochs


def names(folder, pattern="*") -> list[str]:
    return sorted(p.name for p in folder.glob(pattern))


def test_an_interrupted_trainer_resumes_with_the_next_epoch_and_its_scheduler_position(tmp_path):
    net, opt, sched = stage_objects()
    engine, epochs = stage_trainer(tmp_path, net, opt, sched)

    @engine.on(Events.ITERATION_COMPLETED(once=5))  # the first iteration of epoch 3 of 3
    def interrupt(_):
        raise KeyboardInterrupt  # Ctrl-C

    with pytest.raises(KeyboardInterrupt):
        engine.run([1.0, 2.0], max_epochs=3)
    assert epochs == [1, 2]
    # the epoch checkpoint holds the trainer; an exception (Ctrl-C too) writes no final file, which marks a finished stage
    assert names(tmp_path) == ["stage1_checkpoint_epoch=2.pt"]
    saved = torch.load(tmp_path / "stage1_checkpoint_epoch=2.pt", weights_only=True)
    assert set(saved) == {"network", "optimizer", "lr_scheduler", "trainer"}
    assert (saved["trainer"]["iteration"], saved["trainer"]["epoch_length"]) == (4, 2)

    net2, opt2, sched2 = stage_objects()
    engine2, epochs2 = stage_trainer(tmp_path, net2, opt2, sched2, resume=True)
    engine2.run([1.0, 2.0], max_epochs=3)
    assert epochs2 == [3]  # epochs 1 and 2 are not run again
    assert (engine2.state.epoch, engine2.state.iteration) == (3, 6)
    assert sched2.last_epoch == 3 and opt2.param_groups[0]["lr"] == pytest.approx(0.5**3)
    torch.testing.assert_close(net2.weight, saved["network"]["weight"] + 2)  # the saved weights, trained 2 more iterations
    # the interrupted run's epoch checkpoint was adopted and replaced (n_saved=1); the final file holds epoch 3
    assert names(tmp_path) == ["stage1_checkpoint_epoch=3.pt", "stage1_final.pt"]
    final = torch.load(tmp_path / "stage1_final.pt", weights_only=True)
    assert final["trainer"]["iteration"] == 6 and final["lr_scheduler"]["last_epoch"] == 3


def test_a_replaced_epoch_checkpoint_is_removed_only_after_its_successor_is_complete(tmp_path, monkeypatch):
    real_save = torch.save
    seen: list[list[str]] = []

    def save(obj, f, *args, **kwargs):
        seen.append(names(tmp_path, "stage1_checkpoint_epoch=*.pt"))
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    engine, _ = stage_trainer(tmp_path, *stage_objects())
    engine.run([1.0], max_epochs=2)
    # while epoch 2 is written, epoch 1's file is still there; the final file is written after that
    assert seen[:2] == [[], ["stage1_checkpoint_epoch=1.pt"]]
    assert names(tmp_path, "stage1_checkpoint_epoch=*.pt") == ["stage1_checkpoint_epoch=2.pt"]


def test_a_checkpoint_write_that_dies_half_way_leaves_the_previous_epoch_whole(tmp_path, monkeypatch):
    real_save = torch.save
    calls = []

    def dying_save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # epoch 2: half a file, then the write fails (a full disk; a kill stops here too)
            f.write(b"PK\x03\x04 half a zip")
            raise OSError("No space left on device")
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", dying_save)
    engine, _ = stage_trainer(tmp_path, *stage_objects())
    with pytest.raises(OSError, match="No space left"):
        engine.run([1.0], max_epochs=3)
    monkeypatch.setattr(torch, "save", real_save)
    assert names(tmp_path) == ["stage1_checkpoint_epoch=1.pt"]  # no half-written epoch 2, no temporary file
    assert torch.load(tmp_path / "stage1_checkpoint_epoch=1.pt", weights_only=True)["trainer"]["iteration"] == 1


def scored_evaluator(net: torch.nn.Module, scores: list[float]) -> Engine:
    """A stand-in evaluator: each run is one epoch scoring the next of ``scores`` as ``val_mean_dice``; the
    network's weight is set to that score, so a checkpoint tells which run it was saved from."""

    def score(engine, batch):
        engine.state.metrics["val_mean_dice"] = value = scores.pop(0)
        with torch.no_grad():
            net.weight.fill_(value)

    return Engine(score)


def best_saver(folder, net: torch.nn.Module, resume=False) -> ResumableCheckpointSaver:
    """The evaluator's best-checkpoint saver as train.json wires it."""
    return ResumableCheckpointSaver(str(folder), {"network": net}, save_key_metric=True, key_metric_name="val_mean_dice",
                                    key_metric_filename="stage1_best.pt", resume=resume)


def run_validations(folder, scores: list[float], resume=False) -> Engine:
    net = torch.nn.Linear(2, 1)
    engine = scored_evaluator(net, scores)
    best_saver(folder, net, resume).attach(engine)
    for _ in range(len(scores)):
        engine.state.max_epochs = None  # every validation is a new one-epoch run, as MONAI's evaluator runs
        engine.run([0], max_epochs=1)
    return engine


def best_weight(folder) -> float:
    return float(torch.load(folder / "stage1_best.pt", weights_only=True)["weight"][0, 0])


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_best_score_is_recorded_beside_a_plain_best_checkpoint(tmp_path):
    run_validations(tmp_path, [0.5, 0.7, 0.6])
    best = torch.load(tmp_path / "stage1_best.pt", weights_only=True)
    assert set(best) == {"weight", "bias"}  # the network's plain state dict, as stage 2 and the predictor load it
    assert best_weight(tmp_path) == pytest.approx(0.7)
    record = json.loads((tmp_path / "stage1_best.json").read_text())
    assert record["file"] == "stage1_best.pt" and record["best_metric"] == pytest.approx(0.7)
    assert names(tmp_path) == ["stage1_best.json", "stage1_best.pt"]


def test_a_resumed_evaluator_replaces_the_best_checkpoint_only_with_a_better_score(tmp_path):
    run_validations(tmp_path, [0.5, 0.7])
    before = sha(tmp_path / "stage1_best.pt")
    net = torch.nn.Linear(2, 1)
    engine = scored_evaluator(net, [0.6, 0.8])
    best_saver(tmp_path, net, resume=True).attach(engine)
    # the record's epoch is the evaluator's epoch when it scored 0.7 (the dummy counts its own runs: 1)
    assert (engine.state.best_metric, engine.state.best_metric_epoch) == (pytest.approx(0.7), 1)
    engine.run([0], max_epochs=1)  # 0.6 < 0.7: kept
    assert sha(tmp_path / "stage1_best.pt") == before
    engine.state.max_epochs = None
    engine.run([0], max_epochs=1)  # 0.8: replaced
    assert best_weight(tmp_path) == pytest.approx(0.8)
    assert json.loads((tmp_path / "stage1_best.json").read_text())["best_metric"] == pytest.approx(0.8)


def test_without_resume_the_first_validation_replaces_the_best_checkpoint(tmp_path):
    run_validations(tmp_path, [0.5, 0.7])
    run_validations(tmp_path, [0.6])
    assert best_weight(tmp_path) == pytest.approx(0.6)


def test_a_best_score_record_without_its_checkpoint_is_ignored(tmp_path, caplog):
    run_validations(tmp_path, [0.7])
    (tmp_path / "stage1_best.pt").unlink()
    with caplog.at_level(logging.WARNING, logger="glsmonai.engines.handlers"):
        run_validations(tmp_path, [0.2], resume=True)
    assert "stage1_best.pt is gone" in caplog.text
    assert best_weight(tmp_path) == pytest.approx(0.2)


def test_resume_skips_a_corrupt_newest_epoch_checkpoint_for_the_previous_one(tmp_path, caplog):
    write_epoch_checkpoint(tmp_path / "stage1_checkpoint_epoch=2.pt", 2)
    (tmp_path / "stage1_checkpoint_epoch=3.pt").write_bytes(b"PK\x03\x04 truncated")
    start = StageStart(tmp_path, "stage1", tiny_net(), resume=True)
    with caplog.at_level(logging.WARNING, logger="glsmonai.engines.handlers"):
        assert start.checkpoint() == (tmp_path / "stage1_checkpoint_epoch=2.pt", True)
    assert "stage1_checkpoint_epoch=3.pt: unreadable, truncated or corrupt" in caplog.text
    assert "stage1 resumes from stage1_checkpoint_epoch=2.pt" in caplog.text
    assert start.epoch == 2


def test_resume_from_a_lone_corrupt_epoch_checkpoint_fails_with_one_line_naming_it(tmp_path):
    path = tmp_path / "stage1_checkpoint_epoch=2.pt"
    write_epoch_checkpoint(path, 2)
    path.write_bytes(path.read_bytes()[:200])  # truncated
    with pytest.raises(ValueError) as err:
        StageStart(tmp_path, "stage1", tiny_net(), resume=True).checkpoint()
    message = str(err.value)
    assert message.startswith(f"{path}: cannot resume stage1 from it: unreadable, truncated or corrupt (")
    assert "\n" not in message and len(message) < 400


def test_resume_from_an_epoch_checkpoint_without_the_trainer_says_so(tmp_path):
    write_epoch_checkpoint(tmp_path / "stage1_checkpoint_epoch=2.pt", 2, trainer=False)  # as written before resuming worked
    with pytest.raises(ValueError, match=r"epoch=2\.pt: cannot resume stage1 from it: written without the trainer's state"):
        StageStart(tmp_path, "stage1", tiny_net(), resume=True).checkpoint()


def test_a_fresh_start_removes_what_an_earlier_run_left_for_resuming(tmp_path):
    earlier = ["stage2_final.pt", "stage2_checkpoint_epoch=40.pt", "stage2_best.json"]
    kept = ["stage1_best.pt", "stage2_best.pt", "stage3_checkpoint_epoch=2.pt", "stage1_final.pt"]
    for name in earlier + kept:
        (tmp_path / name).touch()
    torch.save(tiny_net().state_dict(), tmp_path / "stage1_best.pt")
    engine = loss_engine()
    StageStart(tmp_path, "stage2", tiny_net(), resume=False).attach(engine)
    assert names(tmp_path) == sorted(earlier + kept)  # nothing is removed before the trainer starts
    engine.run([0.0], max_epochs=1)
    assert names(tmp_path) == sorted(kept)
