"""The small Ignite handlers a GLS stage adds to MONAI's: running loss, progress bar, last-epoch
validation, the checkpoint a stage starts from, and a checkpoint saver a stage can be resumed from.
Each is wired in ``bundles/gls/configs/train.json``."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver, ProgressBar
from ignite.metrics import RunningAverage
from monai.handlers import CheckpointLoader, CheckpointSaver

from glsmonai.model_folder import stage_checkpoint
from glsmonai.stages import get_stage
from glsmonai.utils import as_bool, atomic_write, error_line

logger = logging.getLogger(__name__)

__all__ = [
    "FinalValidation", "ProgressHandler", "ResumableCheckpointSaver", "RunningLoss", "StageStart", "best_record",
    "epoch_checkpoints", "latest_epoch_checkpoint", "loss_value",
]


def loss_value(output: Mapping) -> float:
    """The iteration loss from a trainer's (not decollated) output dict."""
    return float(output["loss"])


class RunningLoss:
    """Ignite's running average of the loss as the trainer metric ``train_loss`` (logged every epoch)."""

    def attach(self, engine: Engine) -> None:
        RunningAverage(output_transform=loss_value).attach(engine, "train_loss")


class FinalValidation:
    """Validate after the last epoch when ``interval`` skipped it (MONAI's ``ValidationHandler`` runs
    every ``interval`` epochs only)."""

    def __init__(self, validator: Engine, interval: int) -> None:
        self.validator, self.interval = validator, max(1, int(interval))

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if engine.state.epoch % self.interval:
            self.validator.run(engine.state.epoch)


class ProgressHandler:
    """Ignite's tqdm progress bar with the running loss; ``enabled=False`` attaches nothing."""

    def __init__(self, desc: str, enabled: bool | str = True) -> None:
        self.desc, self.enabled = desc, as_bool(enabled)

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            ProgressBar(persist=False, desc=self.desc).attach(engine, output_transform=lambda out: {"loss": loss_value(out)})


def epoch_checkpoints(model_dir: str | os.PathLike, stage: str) -> list[Path]:
    """The ``<stage>_checkpoint_epoch=E.pt`` files in ``model_dir``, oldest epoch first."""
    found = [p for p in Path(model_dir).glob(f"{stage}_checkpoint_epoch=*.pt") if p.stem.split("=")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.stem.split("=")[-1]))


def latest_epoch_checkpoint(model_dir: str | os.PathLike, stage: str) -> Path | None:
    """The newest ``<stage>_checkpoint_epoch=E.pt`` in ``model_dir``, or ``None``."""
    found = epoch_checkpoints(model_dir, stage)
    return found[-1] if found else None


def best_record(model_dir: str | os.PathLike, stage: str) -> Path:
    """``<stage>_best.json``: the best score so far, recorded beside ``<stage>_best.pt`` by
    :class:`ResumableCheckpointSaver`."""
    return stage_checkpoint(model_dir, stage, "best").with_suffix(".json")


class StageStart:
    """Load what a stage starts from, as the stage table says, when the trainer starts.

    Stage 1 starts from scratch, the others from the previous stage's best checkpoint. With ``resume``,
    an interrupted stage continues from its newest readable epoch checkpoint (network, optimizer,
    scheduler and trainer, so the trainer goes on with the next epoch); a newest one that is truncated
    or corrupt is skipped with a warning for an older one, and when none is usable attaching fails
    with one line naming the file. Without ``resume`` the stage starts afresh, and when the trainer
    starts the files an earlier run of this stage left for resuming (``<stage>_final.pt``, its epoch
    checkpoints, ``<stage>_best.json``) are removed, so that resuming this run later cannot pick up
    the earlier one. Uses MONAI's ``CheckpointLoader``; the choice of file is what this handler adds.

    Args:
        model_dir: the model folder.
        stage: ``"stage1"`` ...
        network, optimizer, lr_scheduler: what an epoch checkpoint restores.
        resume: continue from the last epoch checkpoint when there is one.
        start_from: a checkpoint to start from instead of the previous stage's best (fine-tuning a trained model:
            ``bundles/gls/configs/finetune.json`` starts stage 3 from another model folder's best checkpoint).
        taken: ``{stage name: model folder}``, stages the run takes from other model folders (``train.json``'s
            ``stage_from``): an earlier one the run does not hold yet is taken on attach, before the previous
            stage's best checkpoint is looked for (:func:`~glsmonai.engines.adopt.take_earlier_stages`).
        settings: the run's recorded settings (``train.json``'s ``model_info``), which a taken stage's folder must
            prepare scans as (on attach the model folder may not hold them yet).

    Raises:
        FileNotFoundError: (on attach) the checkpoint of the previous stage does not exist.
        ValueError: (on attach) the checkpoint of the previous stage cannot be read, or (with ``resume``) no
            epoch checkpoint of the stage can be resumed from.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike,
        stage: str,
        network: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        lr_scheduler: object | None = None,
        resume: bool | str = False,
        start_from: str | os.PathLike | None = None,
        taken: Mapping[str, str | os.PathLike] | None = None,
        settings: Mapping | None = None,
    ) -> None:
        self.model_dir, self.stage = Path(model_dir), get_stage(stage)
        self.taken, self.settings = dict(taken or {}), settings
        self.start_from = Path(start_from) if start_from else None
        self.network, self.optimizer, self.lr_scheduler = network, optimizer, lr_scheduler
        self.resume = as_bool(resume)
        self.path: Path | None = None
        self.epoch: int | None = None  # the epochs the resumed checkpoint had done

    def _whole(self) -> dict:
        load = {"network": self.network, "optimizer": self.optimizer, "lr_scheduler": self.lr_scheduler}
        return {k: v for k, v in load.items() if v is not None}

    def unusable(self, path: Path) -> str | None:
        """Why an epoch checkpoint cannot be resumed from, or ``None`` (then :attr:`epoch` is its epoch)."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a truncated or corrupt file: torch raises RuntimeError, EOFError, pickle errors...
            return f"unreadable, truncated or corrupt ({error_line(err)})"
        if not isinstance(state, Mapping):
            return "not a checkpoint of named objects"
        if "trainer" not in state:
            return "written without the trainer's state (by a version before resuming worked), so its epoch is unknown"
        missing = [k for k in self._whole() if k not in state]
        if missing:
            return f"it lacks {', '.join(missing)}"
        trainer = state["trainer"]
        self.epoch = int(trainer["iteration"]) // max(1, int(trainer["epoch_length"]))
        return None

    def checkpoint(self) -> tuple[Path | None, bool]:
        """``(file, whole_state)``: the file to start from (``None``: scratch), and whether it is an epoch
        checkpoint to restore whole rather than the previous stage's network."""
        if self.resume:
            skipped: list[tuple[Path, str]] = []
            for path in reversed(epoch_checkpoints(self.model_dir, self.stage.name)):
                problem = self.unusable(path)
                if problem is None:
                    for bad, why in skipped:
                        logger.warning("%s: %s: skipped, %s resumes from %s", bad, why, self.stage.name, path.name)
                    return path, True
                skipped.append((path, problem))
            if skipped:
                bad, why = skipped[0]
                raise ValueError(
                    f"{bad}: cannot resume {self.stage.name} from it: {why}; move it away to start "
                    f"{self.stage.name} again, or run without --resume"
                )
        if self.stage.starts_from is None and self.start_from is None:
            return None, False
        previous = self.start_from or stage_checkpoint(self.model_dir, self.stage.starts_from, "best")
        if self.start_from is not None and not previous.is_file():
            raise FileNotFoundError(f"{self.stage.name} starts from {previous}, which does not exist")
        if not previous.is_file():
            raise FileNotFoundError(
                f"{self.stage.name} starts from {previous}, which does not exist: train {self.stage.starts_from} first"
            )
        try:
            torch.load(previous, map_location="cpu", weights_only=True)
        except Exception as err:  # as in unusable(): fail here, in one line, rather than in the loader's traceback
            raise ValueError(
                f"{previous}: {self.stage.name} cannot start from it: unreadable, truncated or corrupt ({error_line(err)})"
            ) from None
        return previous, False

    def attach(self, engine: Engine) -> None:
        from glsmonai.engines.adopt import take_earlier_stages  # here: adopt -> distributed -> this module

        take_earlier_stages(self.stage, self.network, self.model_dir, self.taken, self.settings)
        self.path, whole = self.checkpoint()
        if not self.resume:
            engine.add_event_handler(Events.STARTED, self.clear_earlier_run)
        if self.path is None:
            return
        load = {"network": self.network}
        if whole:
            load = {**self._whole(), "trainer": engine}
            logger.info(
                "%s resumes from %s: epoch %d of %s done, continuing with epoch %d (%s)", self.stage.name, self.path,
                self.epoch, engine.state.max_epochs, self.epoch + 1, ", ".join(load),
            )
        else:
            logger.info("%s starts from %s (%s)", self.stage.name, self.path, ", ".join(load))
        CheckpointLoader(str(self.path), load, map_location=getattr(engine.state, "device", None)).attach(engine)

    def clear_earlier_run(self, engine: Engine | None = None) -> None:
        """Remove what an earlier run of this stage left for resuming: its final and epoch checkpoints and
        its best-score record (``<stage>_best.pt`` itself stays until this run's first validation)."""
        if idist.get_rank() != 0:
            return
        name = self.stage.name
        stale = [stage_checkpoint(self.model_dir, name, "final"), *epoch_checkpoints(self.model_dir, name),
                 best_record(self.model_dir, name)]
        removed = [p.name for p in stale if p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        if removed:
            logger.info("%s starts afresh: removed %s of an earlier run", name, ", ".join(removed))


class _SafeDiskSaver(DiskSaver):
    """Ignite's ``DiskSaver`` with ``atomic=True`` (a temporary file in the folder, renamed once complete),
    MONAI's fixed file name, and the file it replaces removed only after the new one is complete.

    Ignite's ``Checkpoint`` calls ``remove(old)`` before saving the new file; removing at once (as MONAI's
    saver does, and it writes in place with ``atomic=False``) leaves nothing whole when the process is
    killed in between. Here ``remove`` only notes the file, and the next save removes it afterwards.
    """

    def __init__(self, dirname: str | os.PathLike, filename: str | None = None) -> None:
        super().__init__(dirname=dirname, atomic=True, create_dir=True, require_empty=False)
        self.filename = filename
        self._replaced: list[str] = []

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        filename = self.filename or filename
        super().__call__(checkpoint, filename, metadata)
        replaced, self._replaced = self._replaced, []
        for old in replaced:
            if old != filename and (self.dirname / old).is_file():
                super().remove(old)

    def remove(self, filename: str) -> None:
        self._replaced.append(self.filename or filename)


class ResumableCheckpointSaver(CheckpointSaver):
    """MONAI's ``CheckpointSaver`` made safe to resume a stage from.

    - Every file is written atomically (ignite's ``DiskSaver(atomic=True)``), and a file it replaces (the
      previous epoch's checkpoint, the previous best) is removed only after the new one is complete, so a
      kill at any moment leaves a whole checkpoint under each name.
    - An exception (Ctrl-C included) does not write the final file, which marks a finished stage.
    - ``save_engine_as="trainer"``: the files also hold the state (epoch, iteration) of the engine the
      saver is attached to, which a config cannot name from inside that engine's own handler list;
      MONAI's ``CheckpointLoader`` restores it when the stage resumes (:class:`StageStart`).
    - With ``resume``, the newest epoch checkpoints an interrupted run left are adopted into ignite's
      list of saved files, so that ``n_saved`` still holds: the resumed run replaces them in turn.
    - With ``save_key_metric`` and a ``key_metric_filename`` (``stage1_best.pt``), the best score so far
      is recorded beside that file (``stage1_best.json``: the metric, its epoch, and ignite's list of
      saved scores), written atomically right after it. The checkpoint itself stays the network's plain
      state dict, which later stages and the predictor load (MONAI's ``key_metric_save_state`` would add a
      ``checkpointer`` entry to it). With ``resume``, the record is read back when the saver is attached:
      into the saver, so that only a better score replaces the file, and into the engine's
      ``best_metric`` / ``best_metric_epoch`` (MONAI's evaluator compares new scores with these).

    Args:
        save_dir, save_dict, **kwargs: as MONAI's ``CheckpointSaver``.
        save_engine_as: key under which the engine's own state is saved too (``"trainer"``), or ``None``.
        resume: on attach, adopt the interrupted run's epoch checkpoints and restore its best-score record.
    """

    def __init__(
        self, save_dir: str, save_dict: dict, save_engine_as: str | None = None, resume: bool | str = False, **kwargs
    ) -> None:
        super().__init__(save_dir, save_dict, **kwargs)
        self.save_engine_as, self.resume = save_engine_as, as_bool(resume)
        self.negative_sign = bool(kwargs.get("key_metric_negative_sign", False))
        for checkpoint in self._checkpoints():
            checkpoint.save_handler = _SafeDiskSaver(save_dir, getattr(checkpoint.save_handler, "filename", None))
        best_name = kwargs.get("key_metric_filename")
        self.best_file = Path(save_dir) / best_name if best_name and self._key_metric_checkpoint else None
        self.record_path = self.best_file.with_suffix(".json") if self.best_file else None

    def _checkpoints(self) -> list[Checkpoint]:
        # MONAI keeps the ignite Checkpoints it configured in these (private) attributes, None when unused
        found = (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint)
        return [c for c in found if c is not None]

    def attach(self, engine: Engine) -> None:
        if self.save_engine_as:
            if self.save_engine_as in self.save_dict:
                raise ValueError(f"save_dict already has {self.save_engine_as!r}")
            self.save_dict = {**self.save_dict, self.save_engine_as: engine}
            for checkpoint in self._checkpoints():
                checkpoint.to_save = self.save_dict
        if self.resume:
            self.adopt_interval_files()
            if self.record_path is not None and self.record_path.is_file():
                self.restore_record(engine)
        super().attach(engine)

    def adopt_interval_files(self) -> None:
        """Hand the newest ``n_saved`` epoch (or iteration) checkpoints an interrupted run left to ignite's
        list of saved files, so that they are replaced in turn as the resumed run saves its own."""
        checkpoint = self._interval_checkpoint
        if checkpoint is None:
            return
        name = "checkpoint" if len(self.save_dict) > 1 else next(iter(self.save_dict))
        prefix = f"{checkpoint.filename_prefix}_" if checkpoint.filename_prefix else ""
        head = f"{prefix}{name}_{checkpoint.score_name}="
        found = sorted((int(p.name[len(head):-3]), p.name) for p in Path(self.save_dir).glob(f"{head}*.pt")
                       if p.name[len(head):-3].isdigit())
        checkpoint.load_state_dict({"_saved": found[-checkpoint.n_saved:] if checkpoint.n_saved else found})

    def exception_raised(self, engine: Engine, e: BaseException) -> None:
        """Re-raise without writing the final file: it marks a finished stage, which ``--resume`` skips
        (MONAI's saver writes it on any exception, Ctrl-C included, when its handler runs first)."""
        raise e

    def metrics_completed(self, engine: Engine) -> None:
        before = self._key_metric_checkpoint.state_dict()
        super().metrics_completed(engine)
        after = self._key_metric_checkpoint.state_dict()
        if self.record_path is not None and after != before and idist.get_rank() == 0:
            saved = [[float(p), str(f)] for p, f in after["_saved"]]
            best = saved[-1][0]  # ignite keeps them sorted by priority, best last
            record = {
                "file": self.best_file.name,
                "best_metric": -best if self.negative_sign else best,
                "best_metric_epoch": int(engine.state.epoch),
                "checkpointer": saved,
            }
            atomic_write(self.record_path, lambda tmp: tmp.write_text(json.dumps(record, indent=1)))

    def restore_record(self, engine: Engine) -> None:
        """Read ``<best>.json`` back into the saver and into ``engine.state.best_metric`` / ``best_metric_epoch``;
        a record that is unreadable, or whose checkpoint is gone, is ignored with a warning."""
        path = self.record_path
        try:
            record = json.loads(path.read_text())
            saved = [(float(p), str(f)) for p, f in record["checkpointer"]]
            best, epoch = float(record["best_metric"]), int(record["best_metric_epoch"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            logger.warning("%s: unreadable best-score record (%s): ignored, the next validation replaces %s",
                           path, error_line(err), self.best_file.name)
            return
        if not self.best_file.is_file():
            logger.warning("%s: %s is gone: record ignored", path, self.best_file.name)
            return
        self.load_state_dict({"_saved": saved})
        engine.state.best_metric, engine.state.best_metric_epoch = best, epoch
        logger.info("%s holds the best score so far, %.4f (epoch %d): only a better epoch replaces it",
                    self.best_file, best, epoch)
