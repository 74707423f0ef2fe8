"""The small Ignite handlers a GLS stage adds to MONAI's: running loss, progress bar, last-epoch
validation and the checkpoint a stage starts from. Each is wired in ``bundles/gls/train.json``."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from ignite.engine import Engine, Events
from ignite.handlers import ProgressBar
from ignite.metrics import RunningAverage
from monai.handlers import CheckpointLoader

from glsmonai.model_folder import stage_checkpoint
from glsmonai.stages import get_stage
from glsmonai.utils import as_bool

logger = logging.getLogger(__name__)

__all__ = ["FinalValidation", "ProgressHandler", "RunningLoss", "StageStart", "latest_epoch_checkpoint", "loss_value"]


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


def latest_epoch_checkpoint(ckpt_dir: str | os.PathLike, stage: str) -> Path | None:
    """The newest ``<stage>_checkpoint_epoch=E.pt`` in ``ckpt_dir``, or ``None``."""
    found = sorted(Path(ckpt_dir).glob(f"{stage}_checkpoint_epoch=*.pt"), key=lambda p: int(p.stem.split("=")[-1]))
    return found[-1] if found else None


class StageStart:
    """Load what a stage starts from, as the stage table says, when the trainer starts.

    Stage 1 starts from scratch, the others from the previous stage's best checkpoint; with ``resume``,
    an interrupted stage continues from its last epoch checkpoint (network, optimizer, scheduler and
    trainer). Uses MONAI's ``CheckpointLoader``; the choice of file is what this handler adds.

    Args:
        ckpt_dir: the model folder.
        stage: ``"stage1"`` ...
        network, optimizer, lr_scheduler: what an epoch checkpoint restores.
        resume: continue from the last epoch checkpoint when there is one.

    Raises:
        FileNotFoundError: (on attach) the checkpoint of the previous stage does not exist.
    """

    def __init__(
        self,
        ckpt_dir: str | os.PathLike,
        stage: str,
        network: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        lr_scheduler: object | None = None,
        resume: bool | str = False,
    ) -> None:
        self.ckpt_dir, self.stage = Path(ckpt_dir), get_stage(stage)
        self.network, self.optimizer, self.lr_scheduler = network, optimizer, lr_scheduler
        self.resume = as_bool(resume)
        self.path: Path | None = None

    def checkpoint(self) -> tuple[Path | None, bool]:
        """``(file, whole_state)``: the file to start from (``None``: scratch), and whether it is an epoch
        checkpoint to restore whole rather than the previous stage's network."""
        if self.resume:
            latest = latest_epoch_checkpoint(self.ckpt_dir, self.stage.name)
            if latest is not None:
                return latest, True
        if self.stage.starts_from is None:
            return None, False
        previous = stage_checkpoint(self.ckpt_dir, self.stage.starts_from, "best")
        if not previous.is_file():
            raise FileNotFoundError(
                f"{self.stage.name} starts from {previous}, which does not exist: train {self.stage.starts_from} first"
            )
        return previous, False

    def attach(self, engine: Engine) -> None:
        self.path, whole = self.checkpoint()
        if self.path is None:
            return
        load = {"network": self.network}
        if whole:
            load.update({"optimizer": self.optimizer, "lr_scheduler": self.lr_scheduler, "trainer": engine})
        load = {k: v for k, v in load.items() if v is not None}
        logger.info("%s starts from %s (%s)", self.stage.name, self.path, ", ".join(load))
        CheckpointLoader(str(self.path), load, map_location=getattr(engine.state, "device", None)).attach(engine)
